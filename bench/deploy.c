/* The deploy mode: what a model exported with its BatchNorms folded offline runs, the best
 * any fusion can do.  For each foldable pair, the BN is folded into the conv on the host
 * once, in fp32 (per output channel k: s = gamma / sqrt(var + eps); W' = W * s * alphas;
 * b' = alpha_bn * (beta + s * (conv_bias - mean))), and the pair is replayed as one
 * cudnnConvolutionBiasActivationForward (identity activation, IMPLICIT_PRECOMP_GEMM)
 * writing the BN's output.  Independent of the shim's fold code.  Owns the folded weights,
 * biases and descriptors of each pair and the identity activation descriptor. */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

/* Copies count elements of type from device memory into a new float array; NULL on failure. */
static float *read_floats(const void *dev, enum trace_type type, size_t count)
{
    size_t bytes = count * trace_type_size(type);
    void *raw = malloc(bytes ? bytes : 1);
    float *out = malloc((count ? count : 1) * sizeof *out);
    if (raw && out && cudaMemcpy(raw, dev, bytes, cudaMemcpyDeviceToHost) == cudaSuccess) {
        for (size_t i = 0; i < count; i++)
            out[i] = (float)data_get(raw, type, i);
        free(raw);
        return out;
    }
    free(raw);
    free(out);
    return NULL;
}

/* Stores count floats as type into new device memory at *dev. */
static int upload(const float *values, enum trace_type type, size_t count, void **dev)
{
    size_t bytes = count * trace_type_size(type);
    void *raw = malloc(bytes);
    int ok = raw && cudaMalloc(dev, bytes) == cudaSuccess;
    for (size_t i = 0; ok && i < count; i++)
        data_put(raw, type, i, values[i]);
    ok = ok && cudaMemcpy(*dev, raw, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
    free(raw);
    return ok ? 0 : -1;
}

struct fold_inputs {
    float *w, *gamma, *beta, *mean, *var, *conv_bias; /* conv_bias NULL without one */
};

static void free_inputs(struct fold_inputs *in)
{
    free(in->w);
    free(in->gamma);
    free(in->beta);
    free(in->mean);
    free(in->var);
    free(in->conv_bias);
}

static int read_inputs(struct bench_replay *r, const struct trace_op *conv,
                       const struct trace_op *bn, size_t k, struct fold_inputs *in)
{
    size_t w_count = trace_filter_bytes(&conv->w) / trace_type_size(conv->w.type);
    enum trace_type pt = bn->t[TRACE_AUX].type;
    in->w = read_floats(replay_ptr(r, conv->w.buf), conv->w.type, w_count);
    in->gamma = read_floats(replay_ptr(r, bn->bn_buf[TRACE_BN_SCALE]), pt, k);
    in->beta = read_floats(replay_ptr(r, bn->bn_buf[TRACE_BN_BIAS]), pt, k);
    in->mean = read_floats(replay_ptr(r, bn->bn_buf[TRACE_BN_MEAN]), pt, k);
    in->var = read_floats(replay_ptr(r, bn->bn_buf[TRACE_BN_VAR]), pt, k);
    const struct trace_tensor *bias = &conv->t[TRACE_AUX];
    if (conv->kind == TRACE_CONV_BIAS_ACT)
        in->conv_bias = read_floats(replay_ptr(r, bias->buf), bias->type, k);
    if (!in->w || !in->gamma || !in->beta || !in->mean || !in->var ||
        (conv->kind == TRACE_CONV_BIAS_ACT && !in->conv_bias))
        return replay_fail(r, bn, "cannot read the weights and BN parameters to fold");
    return 0;
}

/* Folds in place: in->w becomes W' and in->beta becomes b'. */
static void fold(const struct trace_op *conv, const struct trace_op *bn, size_t k,
                 struct fold_inputs *in)
{
    size_t per_k = trace_filter_bytes(&conv->w) / trace_type_size(conv->w.type) / k;
    float eps = (float)bn->eps, alpha_bn = (float)bn->alpha, alpha_conv = (float)conv->alpha;
    for (size_t c = 0; c < k; c++) {
        float s = in->gamma[c] / sqrtf(in->var[c] + eps);
        float scale = alpha_bn * alpha_conv * s, bias = in->conv_bias ? in->conv_bias[c] : 0.0f;
        for (size_t i = 0; i < per_k; i++)
            in->w[c * per_k + i] *= scale;
        in->beta[c] = alpha_bn * (in->beta[c] + s * (bias - in->mean[c]));
    }
}

/* The bias descriptor (1 x K x 1 x ..., y's type) and the conv descriptor of the deploy
 * call (the recorded one; half compute becomes float, the configuration cuDNN's
 * bias-activation convolution supports for half data). */
static int make_descs(struct bench_replay *r, const struct trace_op *conv,
                      const struct trace_op *bn, struct bench_pair *p)
{
    const struct trace_tensor *y = &conv->t[TRACE_OUT];
    const struct trace_conv *c = &conv->conv;
    const struct op_descs *cd = &r->descs[p->conv];
    int dims[TRACE_MAX_DIMS], strides[TRACE_MAX_DIMS], k = conv->w.dims[0];
    for (int i = 0; i < y->nb_dims; i++) {
        dims[i] = i == 1 ? k : 1;
        strides[i] = i == 0 ? k : 1;
    }
    enum trace_type compute = c->compute == TRACE_HALF ? TRACE_FLOAT : c->compute;
    cudnnMathType_t math;
    CUDNN_TRY(r, bn, cudnnCreateTensorDescriptor, &p->bias_desc);
    CUDNN_TRY(r, bn, cudnnSetTensorNdDescriptor, p->bias_desc, descs_type(y->type), y->nb_dims,
              dims, strides);
    CUDNN_TRY(r, bn, cudnnCreateConvolutionDescriptor, &p->conv_desc);
    CUDNN_TRY(r, bn, cudnnSetConvolutionNdDescriptor, p->conv_desc, c->nb_spatial, c->pad,
              c->stride, c->dilation,
              c->mode == TRACE_CONVOLUTION ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
              descs_type(compute));
    CUDNN_TRY(r, bn, cudnnSetConvolutionGroupCount, p->conv_desc, c->groups);
    CUDNN_TRY(r, bn, cudnnGetConvolutionMathType, cd->conv, &math);
    CUDNN_TRY(r, bn, cudnnSetConvolutionMathType, p->conv_desc, math);
    CUDNN_TRY(r, bn, cudnnGetConvolutionForwardWorkspaceSize, r->handle, cd->t[TRACE_IN], cd->w,
              p->conv_desc, r->descs[p->bn].t[TRACE_OUT],
              CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &p->workspace);
    if (p->workspace > r->workspace_bytes)
        r->workspace_bytes = p->workspace;
    return 0;
}

static int fold_pair(struct bench_replay *r, struct bench_pair *p)
{
    const struct trace_op *conv = &r->trace->ops[p->conv], *bn = &r->trace->ops[p->bn];
    size_t k = (size_t)conv->w.dims[0];
    size_t w_count = trace_filter_bytes(&conv->w) / trace_type_size(conv->w.type);
    struct fold_inputs in = {0};
    int rc = read_inputs(r, conv, bn, k, &in);
    if (rc == 0) {
        fold(conv, bn, k, &in);
        if (upload(in.w, conv->w.type, w_count, &p->w_folded) ||
            upload(in.beta, conv->t[TRACE_OUT].type, k, &p->b_folded))
            rc = replay_fail(r, bn, "cannot upload the folded weights");
    }
    free_inputs(&in);
    return rc ? rc : make_descs(r, conv, bn, p);
}

int deploy_open(struct bench_replay *r)
{
    CUDNN_TRY(r, NULL, cudnnCreateActivationDescriptor, &r->identity);
    CUDNN_TRY(r, NULL, cudnnSetActivationDescriptor, r->identity, CUDNN_ACTIVATION_IDENTITY,
              CUDNN_NOT_PROPAGATE_NAN, 0.0);
    for (size_t i = 0; i < r->n_pairs; i++)
        if (r->pairs[i].foldable && fold_pair(r, &r->pairs[i]))
            return -1;
    return 0;
}

cudnnStatus_t deploy_issue(struct bench_replay *r, size_t p)
{
    const struct bench_pair *pair = &r->pairs[p];
    const struct trace_op *conv = &r->trace->ops[pair->conv], *bn = &r->trace->ops[pair->bn];
    const struct op_descs *cd = &r->descs[pair->conv], *bd = &r->descs[pair->bn];
    void *out = replay_ptr(r, bn->t[TRACE_OUT].buf);
    const float one = 1.0f, zero = 0.0f;
    return cudnnConvolutionBiasActivationForward(
        r->handle, &one, cd->t[TRACE_IN], replay_ptr(r, conv->t[TRACE_IN].buf), cd->w,
        pair->w_folded, pair->conv_desc, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        r->workspace, pair->workspace, &zero, bd->t[TRACE_OUT], out, pair->bias_desc,
        pair->b_folded, r->identity, bd->t[TRACE_OUT], out);
}

void deploy_close(struct bench_replay *r)
{
    for (size_t i = 0; r->pairs && i < r->n_pairs; i++) {
        struct bench_pair *p = &r->pairs[i];
        if (p->w_folded)
            cudaFree(p->w_folded);
        if (p->b_folded)
            cudaFree(p->b_folded);
        if (p->bias_desc)
            cudnnDestroyTensorDescriptor(p->bias_desc);
        if (p->conv_desc)
            cudnnDestroyConvolutionDescriptor(p->conv_desc);
    }
    if (r->identity)
        cudnnDestroyActivationDescriptor(r->identity);
    r->identity = NULL;
}
