/* The cuDNN descriptors of every operation of a trace, built once before any replay (so
 * that descriptor calls are not timed), and each convolution's workspace size.  A
 * descriptor cuDNN refuses is an error naming the operation's file:line.  Owns the
 * descriptors in r->descs. */
#include <stdlib.h>

#include "bench.h"

cudnnDataType_t descs_type(enum trace_type type)
{
    static const cudnnDataType_t types[TRACE_OTHER] = {
        CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, CUDNN_DATA_BFLOAT16, CUDNN_DATA_DOUBLE,
        CUDNN_DATA_INT8,  CUDNN_DATA_UINT8, CUDNN_DATA_INT32};
    return types[type];
}

/* An operation with a type the recorder could not name ("other") cannot be replayed. */
static int replayable(struct bench_replay *r, const struct trace_op *op)
{
    int other = op->w.nb_dims && op->w.type == TRACE_OTHER;
    for (int s = 0; s < TRACE_SLOTS; s++)
        other |= op->t[s].nb_dims && op->t[s].type == TRACE_OTHER;
    if (bench_is_conv(op->kind) || op->kind == TRACE_OP_TENSOR)
        other |= op->conv.compute == TRACE_OTHER;
    return other ? replay_fail(r, op, "%s with a data type of \"other\" cannot be replayed",
                               trace_kind_name(op->kind))
                 : 0;
}

static int make_tensor(struct bench_replay *r, const struct trace_op *op,
                       const struct trace_tensor *t, cudnnTensorDescriptor_t *d)
{
    CUDNN_TRY(r, op, cudnnCreateTensorDescriptor, d);
    CUDNN_TRY(r, op, cudnnSetTensorNdDescriptor, *d, descs_type(t->type), t->nb_dims, t->dims,
              t->strides);
    return 0;
}

static int make_filter(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    const struct trace_filter *w = &op->w;
    CUDNN_TRY(r, op, cudnnCreateFilterDescriptor, &d->w);
    static const cudnnTensorFormat_t formats[] = {CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC,
                                                  CUDNN_TENSOR_NCHW_VECT_C};
    CUDNN_TRY(r, op, cudnnSetFilterNdDescriptor, d->w, descs_type(w->type), formats[w->format],
              w->nb_dims, w->dims);
    return 0;
}

static int make_conv(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    static const cudnnMathType_t math[] = {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH,
                                           CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_FMA_MATH};
    const struct trace_conv *c = &op->conv;
    cudnnConvolutionMode_t mode =
        c->mode == TRACE_CONVOLUTION ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION;
    CUDNN_TRY(r, op, cudnnCreateConvolutionDescriptor, &d->conv);
    CUDNN_TRY(r, op, cudnnSetConvolutionNdDescriptor, d->conv, c->nb_spatial, c->pad, c->stride,
              c->dilation, mode, descs_type(c->compute));
    CUDNN_TRY(r, op, cudnnSetConvolutionGroupCount, d->conv, c->groups);
    CUDNN_TRY(r, op, cudnnSetConvolutionMathType, d->conv, math[c->math]);
    return 0;
}

static int make_activation(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    static const cudnnActivationMode_t modes[] = {
        CUDNN_ACTIVATION_IDENTITY, CUDNN_ACTIVATION_RELU, CUDNN_ACTIVATION_SIGMOID,
        CUDNN_ACTIVATION_TANH, CUDNN_ACTIVATION_CLIPPED_RELU, CUDNN_ACTIVATION_ELU,
        CUDNN_ACTIVATION_SWISH};
    double coef = op->mode == TRACE_ACT_CLIPPED_RELU ? 6.0 : op->mode == TRACE_ACT_ELU ? 1.0 : 0.0;
    CUDNN_TRY(r, op, cudnnCreateActivationDescriptor, &d->act);
    CUDNN_TRY(r, op, cudnnSetActivationDescriptor, d->act, modes[op->mode],
              CUDNN_NOT_PROPAGATE_NAN, coef);
    return 0;
}

static int make_op_tensor(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    static const cudnnOpTensorOp_t ops[] = {CUDNN_OP_TENSOR_ADD, CUDNN_OP_TENSOR_MUL,
                                            CUDNN_OP_TENSOR_MIN, CUDNN_OP_TENSOR_MAX,
                                            CUDNN_OP_TENSOR_SQRT, CUDNN_OP_TENSOR_NOT};
    CUDNN_TRY(r, op, cudnnCreateOpTensorDescriptor, &d->op);
    CUDNN_TRY(r, op, cudnnSetOpTensorDescriptor, d->op, ops[op->mode],
              descs_type(op->conv.compute), CUDNN_NOT_PROPAGATE_NAN);
    return 0;
}

/* The workspace the operation's convolution needs with its recorded algorithm. */
static int query_workspace(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    switch (op->kind) {
    case TRACE_CONV_FWD:
    case TRACE_CONV_BIAS_ACT:
        CUDNN_TRY(r, op, cudnnGetConvolutionForwardWorkspaceSize, r->handle, d->t[TRACE_IN], d->w,
                  d->conv, d->t[TRACE_OUT], (cudnnConvolutionFwdAlgo_t)op->algo, &d->workspace);
        break;
    case TRACE_CONV_BWD_DATA:
        CUDNN_TRY(r, op, cudnnGetConvolutionBackwardDataWorkspaceSize, r->handle, d->w,
                  d->t[TRACE_IN], d->conv, d->t[TRACE_OUT], (cudnnConvolutionBwdDataAlgo_t)op->algo,
                  &d->workspace);
        break;
    case TRACE_CONV_BWD_FILTER:
        CUDNN_TRY(r, op, cudnnGetConvolutionBackwardFilterWorkspaceSize, r->handle,
                  d->t[TRACE_IN], d->t[TRACE_AUX], d->conv, d->w,
                  (cudnnConvolutionBwdFilterAlgo_t)op->algo, &d->workspace);
        break;
    default:
        break;
    }
    if (d->workspace > r->workspace_bytes)
        r->workspace_bytes = d->workspace;
    return 0;
}

static int make_descs(struct bench_replay *r, const struct trace_op *op, struct op_descs *d)
{
    int conv = bench_is_conv(op->kind);
    if (replayable(r, op))
        return -1;
    for (int s = 0; s < TRACE_SLOTS; s++)
        if (op->t[s].nb_dims && make_tensor(r, op, &op->t[s], &d->t[s]))
            return -1;
    if (conv && (make_filter(r, op, d) || make_conv(r, op, d) || query_workspace(r, op, d)))
        return -1;
    if (op->kind == TRACE_CONV_BIAS_ACT && make_activation(r, op, d))
        return -1;
    if (op->kind == TRACE_OP_TENSOR && make_op_tensor(r, op, d))
        return -1;
    return 0;
}

int descs_open(struct bench_replay *r)
{
    const struct trace *t = r->trace;
    if (!(r->descs = calloc(t->n_ops ? t->n_ops : 1, sizeof *r->descs)))
        return replay_fail(r, NULL, "out of memory for %zu operations' descriptors", t->n_ops);
    for (size_t i = 0; i < t->n_ops; i++)
        if (make_descs(r, &t->ops[i], &r->descs[i]))
            return -1;
    return 0;
}

static void destroy_descs(struct op_descs *d)
{
    for (int s = 0; s < TRACE_SLOTS; s++)
        if (d->t[s])
            cudnnDestroyTensorDescriptor(d->t[s]);
    if (d->w)
        cudnnDestroyFilterDescriptor(d->w);
    if (d->conv)
        cudnnDestroyConvolutionDescriptor(d->conv);
    if (d->act)
        cudnnDestroyActivationDescriptor(d->act);
    if (d->op)
        cudnnDestroyOpTensorDescriptor(d->op);
}

void descs_close(struct bench_replay *r)
{
    for (size_t i = 0; r->descs && i < r->trace->n_ops; i++)
        destroy_descs(&r->descs[i]);
    free(r->descs);
    r->descs = NULL;
}
