/* A ResNet-like inference pass as PyTorch 2.x issues it: every convolution through cuDNN's
 * backend (graph) API (tensors with uids 'x', 'w', 'y', a convolution descriptor, one
 * OPERATION_CONVOLUTION_FORWARD in an OPERATIONGRAPH, ENGINEHEUR -> ENGINECFG, an
 * EXECUTION_PLAN cached per geometry, a new VARIANT_PACK per call, cudnnBackendExecute),
 * each followed by the legacy cudnnBatchNormalizationForwardInference.  The descriptors
 * behind a cached plan are destroyed once the plan is built; the last layer builds its plan,
 * executes it and destroys the plan and every descriptor right away.  Every BN output is
 * appended to --out so runs with and without the shim can be compared byte for byte.
 *
 * usage: backend_seq [--type float|half] [--layout nchw|nhwc] [--out FILE] [--hazard 0|1]
 *                    [--expect-pairs N] [--expect-fused N]
 * --hazard 1 copies each conv output to the host before its BN (a reader of y: no fusion).
 *                    (checked against the shim's counters when it is preloaded)
 * Exit status 0 on success, 1 on a failed expectation, 2 on a cuDNN/CUDA error. */
#include <math.h>
#include <stdbool.h>

#include "e2e_util.h"

#define BATCH 2
#define MAX_PLANS 8
#define GRAPH_DESCS 8 /* x, w, y, conv, op, graph, heuristic, engine config */

struct net {
    cudnnHandle_t handle;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    FILE *out;
    void *workspace;
    int64_t workspace_size;
    int hazard; /* --hazard 1: copy y to the host between each conv and its BN */
};

struct layer {
    int k, r, stride, groups, one_shot; /* one_shot: plan destroyed right after execute */
};

struct cached_plan {
    int c, h, w;
    struct layer l;
    cudnnBackendDescriptor_t plan;
};

static struct cached_plan plans[MAX_PLANS];
static int nb_plans;

/* An activation tensor on the device. */
struct act {
    void *data;
    int c, h, w;
};

static cudnnBackendDescriptor_t bk_create(cudnnBackendDescriptorType_t type)
{
    cudnnBackendDescriptor_t d;
    CUDNN_OK(cudnnBackendCreateDescriptor(type, &d));
    return d;
}

static void bk_set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                   cudnnBackendAttributeType_t type, int64_t n, const void *values)
{
    CUDNN_OK(cudnnBackendSetAttribute(d, name, type, n, values));
}

static void bk_set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                        cudnnBackendDescriptor_t value)
{
    bk_set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

/* A finalized 4-d tensor n x c x h x w, packed in the net's layout. */
static cudnnBackendDescriptor_t bk_tensor(const struct net *net, int64_t uid, int n, int c,
                                          int h, int w)
{
    int64_t dims[4] = {n, c, h, w}, strides[4];
    if (net->format == CUDNN_TENSOR_NHWC) {
        int64_t nhwc[4] = {(int64_t)h * w * c, 1, (int64_t)w * c, c};
        memcpy(strides, nhwc, sizeof strides);
    } else {
        int64_t nchw[4] = {(int64_t)c * h * w, (int64_t)h * w, w, 1};
        memcpy(strides, nchw, sizeof strides);
    }
    int64_t alignment = 16;
    bool is_virtual = false;
    cudnnBackendDescriptor_t t = bk_create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    bk_set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &net->type);
    bk_set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    bk_set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    bk_set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    bk_set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    bk_set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    CUDNN_OK(cudnnBackendFinalize(t));
    return t;
}

static cudnnBackendDescriptor_t bk_convolution(const struct layer *l)
{
    cudnnBackendDescriptor_t c = bk_create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    int64_t spatial = 2, pad[2] = {l->r / 2, l->r / 2}, stride[2] = {l->stride, l->stride};
    int64_t dilation[2] = {1, 1};
    bk_set(c, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
    bk_set(c, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation);
    CUDNN_OK(cudnnBackendFinalize(c));
    return c;
}

static int out_extent(const struct layer *l, int in)
{
    return (in + 2 * (l->r / 2) - l->r) / l->stride + 1;
}

/* Builds the plan of layer l on in (descriptors listed in d[GRAPH_DESCS] for the caller to
 * destroy): graph, heuristics (mode instant), first engine config, plan. */
static cudnnBackendDescriptor_t build_plan(struct net *net, const struct act *in,
                                           const struct layer *l, cudnnBackendDescriptor_t *d)
{
    float alpha = 1.0f, beta = 0.0f;
    d[0] = bk_tensor(net, 'x', BATCH, in->c, in->h, in->w);
    d[1] = bk_tensor(net, 'w', l->k, in->c / l->groups, l->r, l->r);
    d[2] = bk_tensor(net, 'y', BATCH, l->k, out_extent(l, in->h), out_extent(l, in->w));
    d[3] = bk_convolution(l);
    d[4] = bk_create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, d[0]);
    bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, d[1]);
    bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, d[2]);
    bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, d[3]);
    bk_set(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    bk_set(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    CUDNN_OK(cudnnBackendFinalize(d[4]));
    d[5] = bk_create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    bk_set(d[5], CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    bk_set_desc(d[5], CUDNN_ATTR_OPERATIONGRAPH_OPS, d[4]);
    CUDNN_OK(cudnnBackendFinalize(d[5]));
    d[6] = bk_create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_INSTANT;
    bk_set_desc(d[6], CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, d[5]);
    bk_set(d[6], CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    CUDNN_OK(cudnnBackendFinalize(d[6]));
    d[7] = bk_create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t n = 0;
    CUDNN_OK(cudnnBackendGetAttribute(d[6], CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &d[7]));
    cudnnBackendDescriptor_t plan = bk_create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    bk_set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    bk_set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, d[7]);
    CUDNN_OK(cudnnBackendFinalize(plan));
    return plan;
}

static void destroy_all(cudnnBackendDescriptor_t *d, int n)
{
    for (int i = 0; i < n; i++)
        CUDNN_OK(cudnnBackendDestroyDescriptor(d[i]));
}

/* The plan cached for (in, l), built (its graph descriptors destroyed) on first use. */
static cudnnBackendDescriptor_t cached_plan(struct net *net, const struct act *in,
                                            const struct layer *l)
{
    for (int i = 0; i < nb_plans; i++)
        if (plans[i].c == in->c && plans[i].h == in->h && plans[i].w == in->w &&
            !memcmp(&plans[i].l, l, sizeof *l))
            return plans[i].plan;
    if (nb_plans == MAX_PLANS)
        exit(2);
    cudnnBackendDescriptor_t d[GRAPH_DESCS];
    struct cached_plan *p = &plans[nb_plans++];
    *p = (struct cached_plan){in->c, in->h, in->w, *l, build_plan(net, in, l, d)};
    destroy_all(d, GRAPH_DESCS);
    return p->plan;
}

static void ensure_workspace(struct net *net, cudnnBackendDescriptor_t plan)
{
    int64_t size = 0, n = 0;
    CUDNN_OK(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                      CUDNN_TYPE_INT64, 1, &n, &size));
    if (size <= net->workspace_size)
        return;
    CUDA_OK(cudaFree(net->workspace));
    CUDA_OK(cudaMalloc(&net->workspace, (size_t)size));
    net->workspace_size = size;
}

/* y = conv(x, w) through plan, with a new variant pack destroyed right after. */
static void execute(struct net *net, cudnnBackendDescriptor_t plan, void *x, void *w, void *y)
{
    ensure_workspace(net, plan);
    int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {x, w, y};
    cudnnBackendDescriptor_t pack = bk_create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    bk_set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
    bk_set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
    bk_set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &net->workspace);
    CUDNN_OK(cudnnBackendFinalize(pack));
    CUDNN_OK(cudnnBackendExecute(net->handle, plan, pack));
    CUDNN_OK(cudnnBackendDestroyDescriptor(pack));
}

static size_t act_bytes(const struct net *net, const struct act *a)
{
    return (size_t)BATCH * (size_t)a->c * (size_t)a->h * (size_t)a->w * e2e_type_size(net->type);
}

static void dump(struct net *net, const struct act *a)
{
    size_t bytes = act_bytes(net, a);
    void *host = malloc(bytes);
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, a->data, bytes, cudaMemcpyDeviceToHost));
    if (net->out && fwrite(host, 1, bytes, net->out) != bytes)
        exit(2);
    free(host);
}

/* BN parameters of c channels: gamma, beta, mean, var (float, on the device). */
static void bn_params(int c, void *p[4])
{
    p[0] = e2e_random_buffer((size_t)c, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    p[1] = e2e_random_buffer((size_t)c, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    p[2] = e2e_random_buffer((size_t)c, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    p[3] = e2e_random_buffer((size_t)c, CUDNN_DATA_FLOAT, 0.5f, 2.0f);
}

/* The legacy inference BN of y into z, as PyTorch (through 2.10) runs it: its descriptors
 * are made between the conv and the BN. */
static void batch_norm(struct net *net, const struct act *y, struct act *z, void *const p[4])
{
    cudnnTensorDescriptor_t yd = e2e_tensor(net->format, net->type, BATCH, y->c, y->h, y->w);
    cudnnTensorDescriptor_t pd;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnCreateTensorDescriptor(&pd));
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(pd, yd, CUDNN_BATCHNORM_SPATIAL));
    CUDNN_OK(cudnnBatchNormalizationForwardInference(net->handle, CUDNN_BATCHNORM_SPATIAL, &one,
                                                     &zero, yd, y->data, yd, z->data, pd, p[0],
                                                     p[1], p[2], p[3], 1e-5));
    CUDNN_OK(cudnnDestroyTensorDescriptor(pd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(yd));
}

/* conv (backend) then BN (legacy) of one layer; returns the BN output. */
static struct act conv_bn(struct net *net, const struct act *in, const struct layer *l)
{
    struct act y = {NULL, l->k, out_extent(l, in->h), out_extent(l, in->w)};
    size_t w_count = (size_t)l->k * (size_t)(in->c / l->groups) * (size_t)(l->r * l->r);
    float bound = 1.0f / sqrtf((float)(w_count / (size_t)l->k)); /* activations stay O(1) */
    void *w = e2e_random_buffer(w_count, net->type, -bound, bound), *params[4];
    struct act z = y;
    bn_params(l->k, params);
    CUDA_OK(cudaMalloc(&y.data, act_bytes(net, &y)));
    CUDA_OK(cudaMalloc(&z.data, act_bytes(net, &z)));
    if (l->one_shot) {
        cudnnBackendDescriptor_t d[GRAPH_DESCS + 1];
        d[GRAPH_DESCS] = build_plan(net, in, l, d);
        execute(net, d[GRAPH_DESCS], in->data, w, y.data);
        destroy_all(d, GRAPH_DESCS + 1);
    } else {
        execute(net, cached_plan(net, in, l), in->data, w, y.data);
    }
    if (net->hazard) { /* the program reads y between the conv and the BN */
        size_t bytes = act_bytes(net, &y);
        void *host = malloc(bytes);
        if (!host)
            exit(2);
        CUDA_OK(cudaMemcpy(host, y.data, bytes, cudaMemcpyDeviceToHost));
        free(host);
    }
    batch_norm(net, &y, &z, params);
    dump(net, &z);
    CUDA_OK(cudaFree(y.data));
    CUDA_OK(cudaFree(w));
    for (int i = 0; i < 4; i++)
        CUDA_OK(cudaFree(params[i]));
    return z;
}

struct expectations {
    long pairs, fused; /* -1: not checked */
};

static int parse_args(int argc, char **argv, struct net *net, const char **out,
                      struct expectations *expect)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (!strcmp(opt, "--type"))
            net->type = !strcmp(val, "half") ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
        else if (!strcmp(opt, "--layout"))
            net->format = !strcmp(val, "nhwc") ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
        else if (!strcmp(opt, "--hazard"))
            net->hazard = atoi(val);
        else if (!strcmp(opt, "--out"))
            *out = val;
        else if (!strcmp(opt, "--expect-pairs"))
            expect->pairs = strtol(val, NULL, 10);
        else if (!strcmp(opt, "--expect-fused"))
            expect->fused = strtol(val, NULL, 10);
        else
            return -1;
    }
    return (argc % 2) ? 0 : -1;
}

static int check_expectation(const struct expectations *expect)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!counters)
        return 0;
    counters(&c, sizeof c);
    if ((expect->pairs >= 0 && c.pairs_seen != (uint64_t)expect->pairs) ||
        (expect->fused >= 0 && c.pairs_fused != (uint64_t)expect->fused)) {
        fprintf(stderr, "backend_seq: shim saw %llu pairs and fused %llu, expected %ld and %ld\n",
                (unsigned long long)c.pairs_seen, (unsigned long long)c.pairs_fused,
                expect->pairs, expect->fused);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct layer layers[] = {
        {16, 3, 1, 1, 0}, {16, 3, 1, 1, 0}, {16, 3, 1, 1, 0}, /* the last two share a plan */
        {32, 1, 2, 1, 0}, {32, 3, 1, 4, 0}, {32, 3, 1, 4, 1},
    };
    const int nb_layers = (int)(sizeof layers / sizeof layers[0]);
    struct net net = {.type = CUDNN_DATA_FLOAT, .format = CUDNN_TENSOR_NCHW};
    const char *out_path = NULL;
    struct expectations expect = {-1, -1};
    cudaStream_t stream;
    if (parse_args(argc, argv, &net, &out_path, &expect) != 0) {
        fprintf(stderr, "usage: backend_seq [--type float|half] [--layout nchw|nhwc] "
                        "[--out FILE] [--hazard 0|1] [--expect-pairs N] [--expect-fused N]\n");
        return 2;
    }
    if (out_path && !(net.out = fopen(out_path, "wb"))) {
        perror(out_path);
        return 2;
    }
    CUDNN_OK(cudnnCreate(&net.handle));
    CUDA_OK(cudaStreamCreate(&stream));
    CUDNN_OK(cudnnSetStream(net.handle, stream));
    struct act x = {e2e_random_buffer((size_t)BATCH * 3 * 16 * 16, net.type, -1.0f, 1.0f), 3,
                    16, 16};
    for (int i = 0; i < nb_layers; i++) {
        struct act next = conv_bn(&net, &x, &layers[i]);
        CUDA_OK(cudaFree(x.data));
        x = next;
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    printf("backend_seq: %d pairs issued, output %dx%dx%dx%d\n", nb_layers, BATCH, x.c, x.h,
           x.w);
    for (int i = 0; i < nb_plans; i++)
        CUDNN_OK(cudnnBackendDestroyDescriptor(plans[i].plan));
    CUDA_OK(cudaFree(x.data));
    CUDA_OK(cudaFree(net.workspace));
    CUDNN_OK(cudnnDestroy(net.handle));
    CUDA_OK(cudaStreamDestroy(stream));
    if (net.out)
        fclose(net.out);
    return check_expectation(&expect);
}
