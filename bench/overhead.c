/* Host-overhead bench: an ordinary cuDNN program whose loops scripts/measure-overhead.sh
 * runs under callgrind with and without the shim, to count the host instructions the shim
 * adds per intercepted call (issue budgets: 300 per call that does not pair, 400 per
 * cudnnBackendExecute that does not pair, 3,000 per fused pair beyond the emulated
 * compute), and a replay of many pairs that checks the shim's device memory stays under
 * its cap and stops growing (DESIGN.md invariant 6).
 *
 * usage: overhead calls N    N calls of each non-pairing kind, one measure_* function per
 *                            kind (the script reads each function's inclusive cost):
 *                            host-only calls through the generated wrappers, work calls
 *                            (generated wrapper and custom hook), CUDA runtime calls, and
 *                            backend calls on 1x1x1x1 plans and packs built up front:
 *                            cudnnBackendExecute of a backward-data plan and of a conv +
 *                            bias-add plan (neither paired), of a lone conv-forward plan
 *                            (deferred, then run by the next execute), a set + get of a
 *                            variant pack's pointers, a new variant pack per iteration
 *        overhead pairs N    N conv -> inference-BN pairs on 1x1x1x1 tensors with a 1x1
 *                            filter (negligible emulated compute), all buffers allocated
 *                            up front, in measure_pairs; checks the last result
 *        overhead backend-pairs-legacy-bn N
 *                            N pairs of a conv through a backend plan (a new variant pack
 *                            per call, as PyTorch builds) and the legacy inference BN, on
 *                            the same tensors, in measure_backend_pair_legacy_bn
 *        overhead backend-pairs-backend-bn N
 *                            N pairs of that conv and a backend BN inference plan (one
 *                            NORM_FORWARD, BATCH_NORM, INFERENCE; a new variant pack per
 *                            call; inverse std made up front), in
 *                            measure_backend_pair_backend_bn; both check the last result
 *        overhead replay N   N pairs cycling through a handful of geometries on two
 *                            streams, each followed by a ReLU; prints the shim's device
 *                            high-water mark after N/10 and after N pairs and the cap
 *
 * Knows nothing of the shim beyond the optional dlsym of its public counters.  When the
 * shim is preloaded with CONVBN_MODE=fuse, `pairs`, `replay` and the backend pairs require
 * every pair to have been fused, the backend pairs as the shim's fused backend graph.
 * Exit status 0 on success, 1 on a failed check (a result out of tolerance, pairs not
 * fused, high water over the cap or still growing), 2 on a usage or cuDNN/CUDA error. */
#include <math.h>
#include <stdbool.h>

#include "e2e/e2e_util.h"

/* The script reads each measure_* function's inclusive cost: keep them whole and named. */
#ifdef __clang__
#define MEASURE __attribute__((noinline))
#else
#define MEASURE __attribute__((noinline, noclone))
#endif
#define REPLAY_GEOMETRIES 6
#define REPLAY_STREAMS 2

struct bench {
    cudnnHandle_t handle;
    cudaStream_t stream;
};

/* One conv -> BN pair with its own descriptors and device buffers, created up front. */
struct pair {
    cudnnTensorDescriptor_t xd, yd, pd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_size;
    void *x, *w, *y, *z, *gamma, *beta, *mean, *var;
};

struct geometry {
    int n, c, h, w, k, r, stride, groups;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
};

static const float one = 1.0f, zero = 0.0f;

/* Creates pair p for geometry g: random input, weights and BN parameters. */
static void pair_create(struct bench *b, struct pair *p, const struct geometry *g)
{
    int pad = g->r / 2;
    int oh = (g->h + 2 * pad - g->r) / g->stride + 1, ow = (g->w + 2 * pad - g->r) / g->stride + 1;
    size_t in_count = (size_t)g->n * (size_t)g->c * (size_t)g->h * (size_t)g->w;
    size_t out_count = (size_t)g->n * (size_t)g->k * (size_t)oh * (size_t)ow;
    size_t w_count = (size_t)g->k * (size_t)(g->c / g->groups) * (size_t)(g->r * g->r);
    float fan_in = (float)(g->c / g->groups * g->r * g->r);

    p->xd = e2e_tensor(g->format, g->type, g->n, g->c, g->h, g->w);
    p->yd = e2e_tensor(g->format, g->type, g->n, g->k, oh, ow);
    CUDNN_OK(cudnnCreateFilterDescriptor(&p->wd));
    CUDNN_OK(cudnnSetFilter4dDescriptor(p->wd, g->type, g->format, g->k, g->c / g->groups, g->r,
                                        g->r));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&p->cd));
    CUDNN_OK(cudnnSetConvolution2dDescriptor(p->cd, pad, pad, g->stride, g->stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_OK(cudnnSetConvolutionGroupCount(p->cd, g->groups));
    CUDNN_OK(cudnnCreateTensorDescriptor(&p->pd));
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(p->pd, p->yd, CUDNN_BATCHNORM_SPATIAL));

    cudnnConvolutionFwdAlgoPerf_t perf;
    int returned = 0;
    CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(b->handle, p->xd, p->wd, p->cd, p->yd, 1,
                                                    &returned, &perf));
    p->algo = perf.algo;
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(b->handle, p->xd, p->wd, p->cd, p->yd,
                                                     p->algo, &p->ws_size));

    p->x = e2e_random_buffer(in_count, g->type, -1.0f, 1.0f);
    p->w = e2e_random_buffer(w_count, g->type, -1.0f / fan_in, 1.0f / fan_in);
    p->gamma = e2e_random_buffer((size_t)g->k, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    p->beta = e2e_random_buffer((size_t)g->k, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    p->mean = e2e_random_buffer((size_t)g->k, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    p->var = e2e_random_buffer((size_t)g->k, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    CUDA_OK(cudaMalloc(&p->y, out_count * e2e_type_size(g->type)));
    CUDA_OK(cudaMalloc(&p->z, out_count * e2e_type_size(g->type)));
}

static void pair_destroy(struct pair *p)
{
    void *buffers[] = {p->x, p->w, p->y, p->z, p->gamma, p->beta, p->mean, p->var};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        CUDA_OK(cudaFree(buffers[i]));
    CUDNN_OK(cudnnDestroyTensorDescriptor(p->xd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(p->yd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(p->pd));
    CUDNN_OK(cudnnDestroyFilterDescriptor(p->wd));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(p->cd));
}

/* Issues the pair as a framework would: conv into y, then inference BN from y into z. */
static inline void pair_run(struct bench *b, struct pair *p, void *workspace)
{
    CUDNN_OK(cudnnConvolutionForward(b->handle, &one, p->xd, p->x, p->wd, p->w, p->cd, p->algo,
                                     workspace, p->ws_size, &zero, p->yd, p->y));
    CUDNN_OK(cudnnBatchNormalizationForwardInference(b->handle, CUDNN_BATCHNORM_SPATIAL, &one,
                                                     &zero, p->yd, p->y, p->yd, p->z, p->pd,
                                                     p->gamma, p->beta, p->mean, p->var, 1e-5));
}

/* ---- calls: one function per kind, each issuing n intercepted calls that do not pair ---- */

struct calls {
    struct bench *b;
    cudnnTensorDescriptor_t t;
    cudnnActivationDescriptor_t relu;
    void *a, *c;
};

static MEASURE void measure_cudnnSetStream(struct calls *k, long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnSetStream(k->b->handle, k->b->stream));
}

static MEASURE void measure_cudnnGetTensorNdDescriptor(struct calls *k, long n)
{
    cudnnDataType_t type;
    int nb_dims, dims[4], strides[4];
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnGetTensorNdDescriptor(k->t, 4, &type, &nb_dims, dims, strides));
}

static MEASURE void measure_cudnnActivationForward(struct calls *k, long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnActivationForward(k->b->handle, k->relu, &one, k->t, k->a, &zero, k->t, k->c));
}

static MEASURE void measure_cudnnAddTensor(struct calls *k, long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnAddTensor(k->b->handle, &one, k->t, k->a, &one, k->t, k->c));
}

static MEASURE void measure_cudaStreamSynchronize(struct calls *k, long n)
{
    for (long i = 0; i < n; i++)
        CUDA_OK(cudaStreamSynchronize(k->b->stream));
}

static MEASURE void measure_cudaMemsetAsync(struct calls *k, long n)
{
    for (long i = 0; i < n; i++)
        CUDA_OK(cudaMemsetAsync(k->c, 0, 4, k->b->stream));
}

/* ---- calls, backend API: plans built up front, one per graph kind, on 1x1x1x1 tensors ---- */

#define BK_OWNED 48 /* backend descriptors a `calls` run creates up front */

/* The backend descriptors of a `calls` run, destroyed together at its end. */
struct backend {
    cudnnHandle_t handle;
    cudnnBackendDescriptor_t owned[BK_OWNED];
    int nb_owned;
};

static cudnnBackendDescriptor_t bk_create(struct backend *k, cudnnBackendDescriptorType_t type)
{
    if (k->nb_owned == BK_OWNED) {
        fprintf(stderr, "overhead: more than %d backend descriptors\n", BK_OWNED);
        exit(2);
    }
    CUDNN_OK(cudnnBackendCreateDescriptor(type, &k->owned[k->nb_owned]));
    return k->owned[k->nb_owned++];
}

/* A finalized 1x1x1x1 FLOAT tensor with unique id uid. */
static cudnnBackendDescriptor_t bk_tensor(struct backend *k, int64_t uid, bool is_virtual)
{
    static const int64_t dims[4] = {1, 1, 1, 1}, strides[4] = {1, 1, 1, 1};
    int64_t alignment = 16;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t t = bk_create(k, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    CUDNN_OK(cudnnBackendFinalize(t));
    return t;
}

/* A finalized 2-d cross-correlation descriptor: no padding, stride and dilation 1. */
static cudnnBackendDescriptor_t bk_convolution(struct backend *k)
{
    cudnnBackendDescriptor_t c = bk_create(k, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    e2e_bk_conv2d(c, 0, 1, 1);
    return c;
}

/* Attribute names of a convolution operation: forward (x, w, y) or backward data (dx, w, dy). */
struct bk_conv_names {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};

static const struct bk_conv_names bk_forward = {
    CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
static const struct bk_conv_names bk_backward_data = {
    CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};

/* A finalized convolution operation of kind names on tensors x, w and y. */
static cudnnBackendDescriptor_t bk_conv_op(struct backend *k, const struct bk_conv_names *names,
                                           cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t w,
                                           cudnnBackendDescriptor_t y)
{
    float alpha = 1.0f, beta = 0.0f;
    cudnnBackendDescriptor_t op = bk_create(k, names->type);
    e2e_bk_set_desc(op, names->x, x);
    e2e_bk_set_desc(op, names->w, w);
    e2e_bk_set_desc(op, names->y, y);
    e2e_bk_set_desc(op, names->conv, bk_convolution(k));
    e2e_bk_set(op, names->alpha, CUDNN_TYPE_FLOAT, 1, &alpha);
    e2e_bk_set(op, names->beta, CUDNN_TYPE_FLOAT, 1, &beta);
    CUDNN_OK(cudnnBackendFinalize(op));
    return op;
}

/* A finalized POINTWISE ADD operation y = x + b. */
static cudnnBackendDescriptor_t bk_add_op(struct backend *k, cudnnBackendDescriptor_t x,
                                          cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y)
{
    cudnnPointwiseMode_t mode = CUDNN_POINTWISE_ADD;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    float alpha = 1.0f;
    cudnnBackendDescriptor_t pw = bk_create(k, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    e2e_bk_set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    e2e_bk_set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    CUDNN_OK(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t op = bk_create(k, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    e2e_bk_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
    e2e_bk_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    e2e_bk_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
    e2e_bk_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    e2e_bk_set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &alpha);
    e2e_bk_set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &alpha);
    CUDNN_OK(cudnnBackendFinalize(op));
    return op;
}

/* The finalized plan of the graph of nb_ops ops: heuristics (instant), first engine config. */
static cudnnBackendDescriptor_t bk_plan(struct backend *k, const cudnnBackendDescriptor_t *ops,
                                        int nb_ops)
{
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_INSTANT;
    int64_t n = 0;
    cudnnBackendDescriptor_t graph = bk_create(k, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    e2e_bk_set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &k->handle);
    e2e_bk_set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nb_ops, ops);
    CUDNN_OK(cudnnBackendFinalize(graph));
    cudnnBackendDescriptor_t heur = bk_create(k, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    e2e_bk_set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    e2e_bk_set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    CUDNN_OK(cudnnBackendFinalize(heur));
    cudnnBackendDescriptor_t cfg = bk_create(k, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    CUDNN_OK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &cfg));
    cudnnBackendDescriptor_t plan = bk_create(k, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    e2e_bk_set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &k->handle);
    e2e_bk_set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
    CUDNN_OK(cudnnBackendFinalize(plan));
    return plan;
}

/* Sets a variant pack's n uids and pointers and its workspace (finalize is the caller's). */
static void bk_fill_pack(cudnnBackendDescriptor_t pack, const int64_t *uids, void *const *pointers,
                         int n, void *workspace)
{
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, pointers);
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
}

/* A finalized variant pack of n tensors and workspace. */
static cudnnBackendDescriptor_t bk_pack(struct backend *k, const int64_t *uids,
                                        void *const *pointers, int n, void *workspace)
{
    cudnnBackendDescriptor_t pack = bk_create(k, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    bk_fill_pack(pack, uids, pointers, n, workspace);
    CUDNN_OK(cudnnBackendFinalize(pack));
    return pack;
}

/* The workspace plan asks for, allocated (NULL for none). */
static void *bk_workspace(cudnnBackendDescriptor_t plan)
{
    int64_t size = 0, n = 0;
    void *workspace = NULL;
    CUDNN_OK(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                      CUDNN_TYPE_INT64, 1, &n, &size));
    if (size > 0)
        CUDA_OK(cudaMalloc(&workspace, (size_t)size));
    return workspace;
}

/* Plans and packs of the backend kinds, on 1x1x1x1 FLOAT tensors, built by calls_backend. */
struct backend_calls {
    struct backend bk;
    cudnnBackendDescriptor_t dgrad_plan, dgrad_pack; /* convolution backward data: not paired */
    cudnnBackendDescriptor_t epi_plan, epi_pack;     /* conv forward + bias ADD: not paired */
    cudnnBackendDescriptor_t fwd_plan, fwd_pack;     /* conv forward: recognised, deferred */
    cudnnBackendDescriptor_t open_pack;              /* a variant pack left unfinalized */
    void *in, *w, *out, *bias, *workspace;
};

/* cudnnBackendExecute of a backward-data plan: a plan the shim does not pair (a `work`
 * call), nothing pending on the stream. */
static MEASURE void measure_backend_execute_dgrad(struct backend_calls *k, cudnnHandle_t h, long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnBackendExecute(h, k->dgrad_plan, k->dgrad_pack));
}

/* cudnnBackendExecute of a conv + bias-ADD epilogue plan (two operations: not paired),
 * nothing pending. */
static MEASURE void measure_backend_execute_epilogue(struct backend_calls *k, cudnnHandle_t h,
                                                     long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnBackendExecute(h, k->epi_plan, k->epi_pack));
}

/* cudnnBackendExecute of a single conv-forward plan with no consumer: the shim defers each
 * one and the next execute flushes it (runs it through the shim's own variant pack), so an
 * iteration costs one deferral plus one flushed run. */
static MEASURE void measure_backend_execute_deferred(struct backend_calls *k, cudnnHandle_t h,
                                                     long n)
{
    for (long i = 0; i < n; i++)
        CUDNN_OK(cudnnBackendExecute(h, k->fwd_plan, k->fwd_pack));
}

/* One cudnnBackendSetAttribute (the 3 data pointers of an unfinalized variant pack) and one
 * cudnnBackendGetAttribute (those of a finalized one): cuDNN lets a descriptor be set only
 * before its finalize and read only after. */
static MEASURE void measure_backend_set_get(struct backend_calls *k, long n)
{
    void *set[3] = {k->in, k->w, k->out}, *got[3];
    int64_t count = 0;
    for (long i = 0; i < n; i++) {
        CUDNN_OK(cudnnBackendSetAttribute(k->open_pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                          CUDNN_TYPE_VOID_PTR, 3, set));
        CUDNN_OK(cudnnBackendGetAttribute(k->dgrad_pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                          CUDNN_TYPE_VOID_PTR, 3, &count, got));
    }
}

/* A new variant pack per call, as PyTorch builds one per execute: create, 3 sets, finalize,
 * destroy (6 calls). */
static MEASURE void measure_backend_variant_pack(struct backend_calls *k, long n)
{
    static const int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {k->in, k->w, k->out};
    for (long i = 0; i < n; i++) {
        cudnnBackendDescriptor_t pack;
        CUDNN_OK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
        bk_fill_pack(pack, uids, pointers, 3, NULL);
        CUDNN_OK(cudnnBackendFinalize(pack));
        CUDNN_OK(cudnnBackendDestroyDescriptor(pack));
    }
}

/* Builds k's plans and packs (every descriptor in k->bk, destroyed by calls_backend_end). */
static void calls_backend_begin(struct backend_calls *k, cudnnHandle_t handle)
{
    static const int64_t xwy[3] = {'x', 'w', 'y'}, xwby[4] = {'x', 'w', 'b', 'y'};
    struct backend *bk = &k->bk;
    bk->handle = handle;
    k->in = e2e_random_buffer(1, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    k->w = e2e_random_buffer(1, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    k->bias = e2e_random_buffer(1, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    CUDA_OK(cudaMalloc(&k->out, sizeof(float)));

    /* dx ('x') = backward data of dy ('y') through w ('w') */
    cudnnBackendDescriptor_t op = bk_conv_op(bk, &bk_backward_data, bk_tensor(bk, 'x', false),
                                             bk_tensor(bk, 'w', false), bk_tensor(bk, 'y', false));
    k->dgrad_plan = bk_plan(bk, &op, 1);
    void *dgrad[3] = {k->out, k->w, k->in};
    k->dgrad_pack = bk_pack(bk, xwy, dgrad, 3, NULL);

    /* y = conv(x, w) + b through the virtual 'c' */
    cudnnBackendDescriptor_t c = bk_tensor(bk, 'c', true), ops[2];
    ops[0] = bk_conv_op(bk, &bk_forward, bk_tensor(bk, 'x', false), bk_tensor(bk, 'w', false), c);
    ops[1] = bk_add_op(bk, c, bk_tensor(bk, 'b', false), bk_tensor(bk, 'y', false));
    k->epi_plan = bk_plan(bk, ops, 2);
    k->workspace = bk_workspace(k->epi_plan);
    void *epilogue[4] = {k->in, k->w, k->bias, k->out};
    k->epi_pack = bk_pack(bk, xwby, epilogue, 4, k->workspace);

    /* y = conv(x, w) */
    op = bk_conv_op(bk, &bk_forward, bk_tensor(bk, 'x', false), bk_tensor(bk, 'w', false),
                    bk_tensor(bk, 'y', false));
    k->fwd_plan = bk_plan(bk, &op, 1);
    void *forward[3] = {k->in, k->w, k->out};
    k->fwd_pack = bk_pack(bk, xwy, forward, 3, NULL);

    k->open_pack = bk_create(bk, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
}

/* Destroys k's descriptors, newest first, and frees its buffers (the stream synchronized). */
static void calls_backend_end(struct backend_calls *k)
{
    while (k->bk.nb_owned > 0)
        CUDNN_OK(cudnnBackendDestroyDescriptor(k->bk.owned[--k->bk.nb_owned]));
    void *buffers[] = {k->in, k->w, k->out, k->bias, k->workspace};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        CUDA_OK(cudaFree(buffers[i]));
}

static int run_calls(struct bench *b, long n)
{
    struct calls k = {.b = b};
    k.t = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1);
    CUDNN_OK(cudnnCreateActivationDescriptor(&k.relu));
    CUDNN_OK(cudnnSetActivationDescriptor(k.relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN,
                                          0.0));
    k.a = e2e_random_buffer(1, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    k.c = e2e_random_buffer(1, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    measure_cudnnSetStream(&k, n);
    measure_cudnnGetTensorNdDescriptor(&k, n);
    measure_cudnnActivationForward(&k, n);
    measure_cudnnAddTensor(&k, n);
    measure_cudaStreamSynchronize(&k, n);
    measure_cudaMemsetAsync(&k, n);
    CUDA_OK(cudaStreamSynchronize(b->stream));

    struct backend_calls bk = {0};
    calls_backend_begin(&bk, b->handle);
    measure_backend_execute_dgrad(&bk, b->handle, n);
    measure_backend_execute_epilogue(&bk, b->handle, n);
    measure_backend_execute_deferred(&bk, b->handle, n);
    CUDA_OK(cudaStreamSynchronize(b->stream)); /* runs the last deferred conv */
    measure_backend_set_get(&bk, n);
    measure_backend_variant_pack(&bk, n);
    calls_backend_end(&bk);
    CUDA_OK(cudaFree(k.a));
    CUDA_OK(cudaFree(k.c));
    CUDNN_OK(cudnnDestroyActivationDescriptor(k.relu));
    CUDNN_OK(cudnnDestroyTensorDescriptor(k.t));
    printf("overhead: calls %ld of each kind\n", n);
    return 0;
}

/* ---- pairs ---- */

static int fuse_mode(void)
{
    const char *mode = getenv("CONVBN_MODE");
    return mode && !strcmp(mode, "fuse");
}

/* Returns 0 when the shim is absent, not in fuse mode, or fused all `pairs`; else 1. */
static int check_fused(const char *what, long pairs)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!counters || !fuse_mode())
        return 0;
    counters(&c, sizeof c);
    if (c.pairs_fused == (uint64_t)pairs)
        return 0;
    fprintf(stderr, "overhead: %s: the shim fused %llu of %ld pairs (seen %llu)\n", what,
            (unsigned long long)c.pairs_fused, pairs, (unsigned long long)c.pairs_seen);
    return 1;
}

static MEASURE void measure_pairs(struct bench *b, struct pair *p, void *workspace, long n)
{
    for (long i = 0; i < n; i++)
        pair_run(b, p, workspace);
}

/* Returns 0 if p's 1x1x1x1 result equals BN(w * x) computed here within 1e-5, else 1. */
static int check_tiny_pair(struct bench *b, const struct pair *p)
{
    float x, w, z, gamma, beta, mean, var;
    struct { void *dev; float *host; } v[] = {{p->x, &x}, {p->w, &w}, {p->z, &z},
        {p->gamma, &gamma}, {p->beta, &beta}, {p->mean, &mean}, {p->var, &var}};
    CUDA_OK(cudaStreamSynchronize(b->stream));
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CUDA_OK(cudaMemcpy(v[i].host, v[i].dev, sizeof(float), cudaMemcpyDeviceToHost));
    double want = gamma * ((double)w * x - mean) / sqrt((double)var + 1e-5) + beta;
    if (fabs(z - want) <= 1e-5 * fmax(1.0, fabs(want)))
        return 0;
    fprintf(stderr, "overhead: pairs: result %.9g, expected %.9g\n", z, want);
    return 1;
}

static int run_pairs(struct bench *b, long n)
{
    static const struct geometry tiny = {1, 1, 1, 1, 1, 1, 1, 1, CUDNN_DATA_FLOAT,
                                         CUDNN_TENSOR_NCHW};
    struct pair p;
    void *workspace = NULL;
    pair_create(b, &p, &tiny);
    if (p.ws_size)
        CUDA_OK(cudaMalloc(&workspace, p.ws_size));
    measure_pairs(b, &p, workspace, n);
    int failed = check_tiny_pair(b, &p) | check_fused("pairs", n);
    CUDA_OK(cudaFree(workspace));
    pair_destroy(&p);
    printf("overhead: pairs %ld\n", n);
    return failed;
}

/* ---- backend pairs: a conv through the backend API, then an inference BN ---- */

/* A conv -> BN pair whose conv runs through a backend plan, on the tensors and buffers of a
 * 1x1x1x1 legacy pair (the legacy BN reads its descriptors), with a backend BN plan and the
 * inverse std 1/sqrt(var + eps) it is fed, all built up front. */
struct backend_pair {
    struct backend bk;
    struct pair p;
    cudnnBackendDescriptor_t conv_plan, bn_plan;
    void *inv_std, *conv_workspace, *bn_workspace;
};

/* A finalized NORM_FORWARD (BATCH_NORM, INFERENCE) operation z = BN(x) on 1x1x1x1 tensors,
 * uids 'x', 'z' and the parameters 's', 'b', 'm' and 'v' (the inverse std). */
static cudnnBackendDescriptor_t bk_bn_op(struct backend *k)
{
    cudnnBackendNormMode_t mode = CUDNN_BATCH_NORM;
    cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_INFERENCE;
    static const struct { cudnnBackendAttributeName_t name; int64_t uid; } slots[] = {
        {CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, 'x'},
        {CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, 'z'},
        {CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, 's'},
        {CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, 'b'},
        {CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, 'm'},
        {CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, 'v'},
    };
    cudnnBackendDescriptor_t op = bk_create(k, CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    e2e_bk_set(op, CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode);
    e2e_bk_set(op, CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase);
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        e2e_bk_set_desc(op, slots[i].name, bk_tensor(k, slots[i].uid, false));
    CUDNN_OK(cudnnBackendFinalize(op));
    return op;
}

/* Builds k: the legacy pair's buffers and descriptors, the conv and BN plans, their
 * workspaces and the inverse std (every backend descriptor in k->bk). */
static void backend_pair_begin(struct bench *b, struct backend_pair *k)
{
    static const struct geometry tiny = {1, 1, 1, 1, 1, 1, 1, 1, CUDNN_DATA_FLOAT,
                                         CUDNN_TENSOR_NCHW};
    float var, inv;
    memset(k, 0, sizeof *k);
    k->bk.handle = b->handle;
    pair_create(b, &k->p, &tiny);
    cudnnBackendDescriptor_t op = bk_conv_op(&k->bk, &bk_forward, bk_tensor(&k->bk, 'x', false),
                                             bk_tensor(&k->bk, 'w', false),
                                             bk_tensor(&k->bk, 'y', false));
    k->conv_plan = bk_plan(&k->bk, &op, 1);
    k->conv_workspace = bk_workspace(k->conv_plan);
    op = bk_bn_op(&k->bk);
    k->bn_plan = bk_plan(&k->bk, &op, 1);
    k->bn_workspace = bk_workspace(k->bn_plan);
    CUDA_OK(cudaMemcpy(&var, k->p.var, sizeof var, cudaMemcpyDeviceToHost));
    inv = 1.0f / sqrtf(var + 1e-5f);
    CUDA_OK(cudaMalloc(&k->inv_std, sizeof inv));
    CUDA_OK(cudaMemcpy(k->inv_std, &inv, sizeof inv, cudaMemcpyHostToDevice));
}

static void backend_pair_end(struct backend_pair *k)
{
    while (k->bk.nb_owned > 0)
        CUDNN_OK(cudnnBackendDestroyDescriptor(k->bk.owned[--k->bk.nb_owned]));
    CUDA_OK(cudaFree(k->inv_std));
    CUDA_OK(cudaFree(k->conv_workspace));
    CUDA_OK(cudaFree(k->bn_workspace));
    pair_destroy(&k->p);
}

/* Executes plan with a new variant pack of n tensors, then destroys the pack: what PyTorch
 * does per call (the pack is the program's cost, counted with and without the shim alike). */
static inline void execute_new_pack(cudnnHandle_t h, cudnnBackendDescriptor_t plan,
                                    const int64_t *uids, void *const *pointers, int n,
                                    void *workspace)
{
    cudnnBackendDescriptor_t pack;
    CUDNN_OK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    bk_fill_pack(pack, uids, pointers, n, workspace);
    CUDNN_OK(cudnnBackendFinalize(pack));
    CUDNN_OK(cudnnBackendExecute(h, plan, pack));
    CUDNN_OK(cudnnBackendDestroyDescriptor(pack));
}

/* The conv of k through its backend plan, a new variant pack per call as PyTorch builds. */
static inline void backend_conv(struct bench *b, struct backend_pair *k)
{
    static const int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {k->p.x, k->p.w, k->p.y};
    execute_new_pack(b->handle, k->conv_plan, uids, pointers, 3, k->conv_workspace);
}

/* n pairs: backend conv plan (new variant pack per call), then the legacy
 * cudnnBatchNormalizationForwardInference, as PyTorch 2.x issues them. */
static MEASURE void measure_backend_pair_legacy_bn(struct bench *b, struct backend_pair *k, long n)
{
    struct pair *p = &k->p;
    for (long i = 0; i < n; i++) {
        backend_conv(b, k);
        CUDNN_OK(cudnnBatchNormalizationForwardInference(b->handle, CUDNN_BATCHNORM_SPATIAL,
                                                         &one, &zero, p->yd, p->y, p->yd, p->z,
                                                         p->pd, p->gamma, p->beta, p->mean,
                                                         p->var, 1e-5));
    }
}

/* n pairs: backend conv plan, then the backend BN inference plan (one NORM_FORWARD), each
 * with a new variant pack per call; both plans and the inverse std built up front. */
static MEASURE void measure_backend_pair_backend_bn(struct bench *b, struct backend_pair *k,
                                                    long n)
{
    static const int64_t uids[6] = {'x', 'z', 's', 'b', 'm', 'v'};
    struct pair *p = &k->p;
    void *pointers[6] = {p->y, p->z, p->gamma, p->beta, p->mean, k->inv_std};
    for (long i = 0; i < n; i++) {
        backend_conv(b, k);
        execute_new_pack(b->handle, k->bn_plan, uids, pointers, 6, k->bn_workspace);
    }
}

/* Returns 0 when the shim is absent, not in fuse mode, or fused all `pairs` as its fused
 * backend graph; else 1. */
static int check_fused_graph(const char *what, long pairs)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!counters || !fuse_mode())
        return 0;
    counters(&c, sizeof c);
    if (c.pairs_fused_graph == (uint64_t)pairs)
        return 0;
    fprintf(stderr, "overhead: %s: the shim ran %llu of %ld pairs as fused backend graphs\n",
            what, (unsigned long long)c.pairs_fused_graph, pairs);
    return 1;
}

/* `backend-pairs-legacy-bn N` (backend_bn 0) or `backend-pairs-backend-bn N` (1). */
static int run_backend_pairs(struct bench *b, long n, int backend_bn)
{
    const char *what = backend_bn ? "backend-pairs-backend-bn" : "backend-pairs-legacy-bn";
    struct backend_pair k;
    backend_pair_begin(b, &k);
    if (backend_bn)
        measure_backend_pair_backend_bn(b, &k, n);
    else
        measure_backend_pair_legacy_bn(b, &k, n);
    int failed = check_tiny_pair(b, &k.p) | check_fused(what, n) | check_fused_graph(what, n);
    backend_pair_end(&k);
    printf("overhead: %s %ld\n", what, n);
    return failed;
}

static int run_backend_pairs_legacy_bn(struct bench *b, long n)
{
    return run_backend_pairs(b, n, 0);
}

static int run_backend_pairs_backend_bn(struct bench *b, long n)
{
    return run_backend_pairs(b, n, 1);
}

/* ---- replay ---- */

/* Returns the shim's device high-water mark in bytes, or -1 when the shim is absent. */
static long long shim_high_water(void)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!counters)
        return -1;
    counters(&c, sizeof c);
    return (long long)c.device_bytes_high_water;
}

/* Returns the shim's cap in bytes as it reads CONVBN_MAX_DEVICE_MB: an integer 0..2^20 MiB,
 * 256 when unset or bad (the shim then warns and uses the default). */
static long long cap_bytes(void)
{
    const char *env = getenv("CONVBN_MAX_DEVICE_MB");
    char *end = NULL;
    long long mb = env ? strtoll(env, &end, 10) : 256;
    if (env && (end == env || *end || mb < 0 || mb > (1LL << 20)))
        mb = 256;
    return mb << 20;
}

static int run_replay(struct bench *b, long n)
{
    /* Different channel counts, kernels, strides, groups, types and layouts: each has its own
     * descriptor-cache entry and its own scratch needs (workspace, folded weights, bias). */
    static const struct geometry geoms[REPLAY_GEOMETRIES] = {
        {1, 8, 8, 8, 8, 1, 1, 1, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW},
        {1, 8, 8, 8, 16, 3, 1, 1, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW},
        {2, 16, 8, 8, 16, 3, 2, 4, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW},
        {1, 3, 12, 12, 8, 5, 2, 1, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC},
        {1, 16, 4, 4, 32, 1, 1, 1, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC},
        {2, 8, 6, 6, 8, 3, 1, 2, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW},
    };
    struct pair pairs[REPLAY_GEOMETRIES];
    cudaStream_t streams[REPLAY_STREAMS];
    cudnnActivationDescriptor_t relu;
    void *workspace = NULL;
    size_t ws_size = 0;
    long long cap = cap_bytes(), early = -1;

    if (shim_high_water() < 0) {
        fprintf(stderr, "overhead: replay needs the shim preloaded (LD_PRELOAD)\n");
        return 2;
    }
    if (n < 10L * REPLAY_GEOMETRIES * REPLAY_STREAMS)
        fprintf(stderr, "overhead: replay %ld: fewer than 10 rounds of every geometry on every "
                        "stream; the growth check is weak\n", n);
    for (int i = 0; i < REPLAY_STREAMS; i++)
        CUDA_OK(cudaStreamCreate(&streams[i]));
    for (int g = 0; g < REPLAY_GEOMETRIES; g++) {
        pair_create(b, &pairs[g], &geoms[g]);
        if (pairs[g].ws_size > ws_size)
            ws_size = pairs[g].ws_size;
    }
    if (ws_size)
        CUDA_OK(cudaMalloc(&workspace, ws_size));
    CUDNN_OK(cudnnCreateActivationDescriptor(&relu));
    CUDNN_OK(cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN,
                                          0.0));
    for (long i = 0; i < n; i++) {
        struct pair *p = &pairs[i % REPLAY_GEOMETRIES];
        /* the stream changes every round of geometries, so each meets both streams */
        CUDNN_OK(cudnnSetStream(b->handle, streams[(i / REPLAY_GEOMETRIES) % REPLAY_STREAMS]));
        pair_run(b, p, workspace);
        CUDNN_OK(cudnnActivationForward(b->handle, relu, &one, p->yd, p->z, &zero, p->yd, p->z));
        if (i + 1 == n / 10)
            early = shim_high_water();
    }
    for (int i = 0; i < REPLAY_STREAMS; i++)
        CUDA_OK(cudaStreamSynchronize(streams[i]));
    long long late = shim_high_water();
    printf("overhead: replay %ld pairs (%d geometries, %d streams): device high water %lld bytes "
           "(%.2f MiB) after %ld pairs, %lld bytes (%.2f MiB) after %ld; cap %lld bytes (%lld MiB)\n",
           n, REPLAY_GEOMETRIES, REPLAY_STREAMS, early, (double)early / 1048576.0, n / 10, late,
           (double)late / 1048576.0, n, cap, cap >> 20);
    int failed = check_fused("replay", n);
    if (late > cap) {
        fprintf(stderr, "overhead: replay: device high water %lld bytes is over the cap %lld\n",
                late, cap);
        failed = 1;
    }
    if (early != late) {
        fprintf(stderr, "overhead: replay: device high water grew from %lld to %lld bytes between "
                        "pair %ld and pair %ld\n", early, late, n / 10, n);
        failed = 1;
    }
    CUDNN_OK(cudnnDestroyActivationDescriptor(relu));
    CUDA_OK(cudaFree(workspace));
    for (int g = 0; g < REPLAY_GEOMETRIES; g++)
        pair_destroy(&pairs[g]);
    CUDNN_OK(cudnnSetStream(b->handle, b->stream));
    for (int i = 0; i < REPLAY_STREAMS; i++)
        CUDA_OK(cudaStreamDestroy(streams[i]));
    return failed;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long n = argc == 3 ? strtol(argv[2], &end, 10) : 0;
    int (*run)(struct bench *, long) = NULL;
    if (argc == 3 && !strcmp(argv[1], "calls"))
        run = run_calls;
    else if (argc == 3 && !strcmp(argv[1], "pairs"))
        run = run_pairs;
    else if (argc == 3 && !strcmp(argv[1], "replay"))
        run = run_replay;
    else if (argc == 3 && !strcmp(argv[1], "backend-pairs-legacy-bn"))
        run = run_backend_pairs_legacy_bn;
    else if (argc == 3 && !strcmp(argv[1], "backend-pairs-backend-bn"))
        run = run_backend_pairs_backend_bn;
    if (!run || !end || *end || n < 1) {
        fprintf(stderr, "usage: overhead calls|pairs|backend-pairs-legacy-bn|"
                        "backend-pairs-backend-bn|replay N (N >= 1)\n");
        return 2;
    }
    struct bench b;
    CUDNN_OK(cudnnCreate(&b.handle));
    CUDA_OK(cudaStreamCreate(&b.stream));
    CUDNN_OK(cudnnSetStream(b.handle, b.stream));
    int status = run(&b, n);
    CUDA_OK(cudaStreamSynchronize(b.stream));
    CUDNN_OK(cudnnDestroy(b.handle));
    CUDA_OK(cudaStreamDestroy(b.stream));
    return status;
}
