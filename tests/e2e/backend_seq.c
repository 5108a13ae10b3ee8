/* A ResNet-like inference pass as PyTorch 2.x issues it: every convolution through cuDNN's
 * backend (graph) API (tensors with uids 'x', 'w', 'y', a convolution descriptor, one
 * OPERATION_CONVOLUTION_FORWARD in an OPERATIONGRAPH, ENGINEHEUR -> ENGINECFG, an
 * EXECUTION_PLAN cached per geometry, a new VARIANT_PACK per call, cudnnBackendExecute),
 * each followed by the legacy cudnnBatchNormalizationForwardInference.  The descriptors
 * behind a cached plan are destroyed once the plan is built; the last layer builds its plan,
 * executes it and destroys the plan and every descriptor right away.  Every BN output is
 * appended to --out so runs with and without the shim can be compared byte for byte.
 *
 * usage: backend_seq [--type float|half] [--layout nchw|nhwc] [--out FILE] [--hazard 0-3]
 *                    [--bn legacy|backend] [--bn-kernel 0|1] [--benchmark 0|1] [--diff N]
 *                    [--conv backend|legacy] [--expect-pairs N] [--expect-fused N]
 *                    [--expect-verified N] [--backward 1] [--threads N] [--serial 0|1]
 *                    (expectations checked against the shim's counters when it is preloaded)
 * --hazard 1 copies each conv output to the host before its BN (a reader of y: no fusion).
 * --hazard 2 copies an unrelated buffer (the BN's gamma) to the host with cudaMemcpyAsync
 *   between each conv and its BN: the conservative rule flushes, the precise rule does not.
 * --hazard 3 (float) adds a per-channel conv bias to y in place with a kernel launched
 *   through cudaLaunchKernel between each conv and its BN, as PyTorch adds a conv's bias
 *   (output.add_(bias)): every rule flushes, since the kernel's arguments point into y.
 * --bn backend runs each BN as newer PyTorch does (BatchNorm_v8 through cudnn-frontend): a
 *   one-shot graph of one NORM_FORWARD (BATCH_NORM, INFERENCE) fed the inverse standard
 *   deviation 1/sqrt(var + eps), prepared on the host before the conv.
 * --bn-kernel 1 (with --bn backend) computes that inverse std with a kernel launched through
 *   cudaLaunchKernel between the conv and the BN, as PyTorch does.
 * --benchmark 1 (cudnn.benchmark) runs the first layer only, its conv built as 21 plans each
 *   executed into the same output before the BN.
 * --conv legacy runs each conv through cudnnConvolutionForward instead (same geometry and
 *   weights), as PyTorch does with TORCH_CUDNN_V8_API_DISABLED=1 (descriptors made per
 *   call, math type set, cudnnGetConvolutionForwardAlgorithm_v7's list tried in order for a
 *   workspace size): a legacy conv followed by the BN of --bn.
 * --expect-verified N (run with CONVBN_VERIFY=1; not with --diff): the shim compared N fused
 *   pairs with their unfused calls, the worst relative error within the tolerance of --diff
 *   below for --type.
 * --diff N replaces the network by N random backend conv -> BN pairs (shapes, NCHW/NHWC,
 *   groups, dilation, stride, padding, float/half; legacy or backend BN), each compared with
 *   a naive double reference: |z - ref| / max(1, |ref|) <= 2e-6 float, 4e-3 half (the
 *   tolerances of tests/e2e/differential.c).
 * --backward 1 runs, after the network, one graph of a single CONVOLUTION_BACKWARD_DATA and
 *   one of a single CONVOLUTION_BACKWARD_FILTER (3x3, 4 <-> 8 channels; for trace tests).
 * --threads N runs the whole network (with every flag above but --diff) in N threads at
 *   once, each with its own handle, stream, plan cache, workspace and data (thread i's drawn
 *   from its own random state, all made up front: thread 0's are those of a run without
 *   --threads), the threads stepping through barriers so that every thread's conv is pending
 *   together; every BN output is appended to --out after all joined, in thread order.
 *   --serial 1 runs the same threads one after another (byte-identical --out).  The
 *   expectations are totals over the threads.
 * Exit status 0 on success, 1 on a failed expectation, 2 on a cuDNN/CUDA error. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>

#include "e2e_util.h"
#include "emu_cudart.h"

#define BATCH 2
#define MAX_PLANS 8
#define GRAPH_DESCS 8 /* x, w, y, conv, op, graph, heuristic, engine config */

struct cached_plan;

struct net {
    cudnnHandle_t handle;
    cudaStream_t stream;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    FILE *out;
    void *workspace;
    int64_t workspace_size;
    int hazard; /* --hazard 1: copy y to the host between each conv and its BN; 2: copy gamma;
                 * 3: a bias-add kernel on y */
    int bn_backend, bn_kernel, benchmark;
    int backward; /* --backward 1 */
    int legacy_conv; /* --conv legacy */
    uint64_t rng;               /* this net's random state (net_random_buffer) */
    struct cached_plan *plans;  /* MAX_PLANS, nb_plans of them built */
    int nb_plans;
    pthread_barrier_t *barrier; /* --threads: all workers step together (NULL: alone) */
};

#define BN_EPS 1e-5
#define BENCH_PLANS 21

struct layer {
    int k, r, stride, groups, one_shot; /* one_shot: plan destroyed right after execute */
    int custom, pad, dilation;          /* custom 0: padding r / 2, dilation 1 */
};

struct cached_plan {
    int c, h, w;
    struct layer l;
    cudnnBackendDescriptor_t plan;
};

/* An activation tensor on the device. */
struct act {
    void *data;
    int c, h, w;
};

/* One layer's buffers: weights, BN parameters (and inverse std), conv bias (--hazard 3), the
 * conv output y and the BN output z. */
struct layer_data {
    void *w, *params[4], *inv, *bias;
    struct act y, z;
};

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;

/* e2e_random_buffer drawn from net's own random state, so that each net's data does not depend
 * on how threads are scheduled. */
static void *net_random_buffer(struct net *net, size_t count, cudnnDataType_t t, float lo,
                               float hi)
{
    pthread_mutex_lock(&rng_lock);
    e2e_rng_state = net->rng;
    void *dev = e2e_random_buffer(count, t, lo, hi);
    net->rng = e2e_rng_state;
    pthread_mutex_unlock(&rng_lock);
    return dev;
}

/* --threads: waits for every worker (nothing when the net runs alone or --serial 1). */
static void net_barrier(struct net *net)
{
    if (net->barrier)
        pthread_barrier_wait(net->barrier);
}

static cudnnBackendDescriptor_t bk_create(cudnnBackendDescriptorType_t type)
{
    cudnnBackendDescriptor_t d;
    CUDNN_OK(cudnnBackendCreateDescriptor(type, &d));
    return d;
}

/* A finalized 4-d real tensor. */
static cudnnBackendDescriptor_t bk_tensor_of(cudnnDataType_t type, int64_t uid,
                                             const int64_t *dims, const int64_t *strides)
{
    int64_t alignment = 16;
    bool is_virtual = false;
    cudnnBackendDescriptor_t t = bk_create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    e2e_bk_set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    CUDNN_OK(cudnnBackendFinalize(t));
    return t;
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
    return bk_tensor_of(net->type, uid, dims, strides);
}

static int pad_of(const struct layer *l)
{
    return l->custom ? l->pad : l->r / 2;
}

static int dilation_of(const struct layer *l)
{
    return l->custom ? l->dilation : 1;
}

static cudnnBackendDescriptor_t bk_convolution(const struct layer *l)
{
    cudnnBackendDescriptor_t c = bk_create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    e2e_bk_conv2d(c, pad_of(l), l->stride, dilation_of(l));
    return c;
}

static int out_extent(const struct layer *l, int in)
{
    return (in + 2 * pad_of(l) - dilation_of(l) * (l->r - 1) - 1) / l->stride + 1;
}

static cudnnBackendDescriptor_t finish_plan(struct net *net, cudnnBackendDescriptor_t *d);

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
    e2e_bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, d[0]);
    e2e_bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, d[1]);
    e2e_bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, d[2]);
    e2e_bk_set_desc(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, d[3]);
    e2e_bk_set(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    e2e_bk_set(d[4], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    return finish_plan(net, d);
}

/* Finalizes the operation d[4] and builds its graph, heuristics (mode instant), first engine
 * config (d[5..7]) and plan. */
static cudnnBackendDescriptor_t finish_plan(struct net *net, cudnnBackendDescriptor_t *d)
{
    CUDNN_OK(cudnnBackendFinalize(d[4]));
    d[5] = bk_create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    e2e_bk_set(d[5], CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    e2e_bk_set_desc(d[5], CUDNN_ATTR_OPERATIONGRAPH_OPS, d[4]);
    CUDNN_OK(cudnnBackendFinalize(d[5]));
    d[6] = bk_create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_INSTANT;
    e2e_bk_set_desc(d[6], CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, d[5]);
    e2e_bk_set(d[6], CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    CUDNN_OK(cudnnBackendFinalize(d[6]));
    d[7] = bk_create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t n = 0;
    CUDNN_OK(cudnnBackendGetAttribute(d[6], CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &d[7]));
    cudnnBackendDescriptor_t plan = bk_create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    e2e_bk_set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    e2e_bk_set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, d[7]);
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
    struct cached_plan *plans = net->plans;
    for (int i = 0; i < net->nb_plans; i++)
        if (plans[i].c == in->c && plans[i].h == in->h && plans[i].w == in->w &&
            !memcmp(&plans[i].l, l, sizeof *l))
            return plans[i].plan;
    if (net->nb_plans == MAX_PLANS)
        exit(2);
    cudnnBackendDescriptor_t d[GRAPH_DESCS];
    struct cached_plan *p = &plans[net->nb_plans++];
    *p = (struct cached_plan){in->c, in->h, in->w, *l, build_plan(net, in, l, d)};
    destroy_all(d, GRAPH_DESCS);
    return p->plan;
}

static void grow_workspace(struct net *net, int64_t size)
{
    if (size <= net->workspace_size)
        return;
    CUDA_OK(cudaFree(net->workspace));
    CUDA_OK(cudaMalloc(&net->workspace, (size_t)size));
    net->workspace_size = size;
}

static void ensure_workspace(struct net *net, cudnnBackendDescriptor_t plan)
{
    int64_t size = 0, n = 0;
    CUDNN_OK(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                      CUDNN_TYPE_INT64, 1, &n, &size));
    grow_workspace(net, size);
}

/* y = conv(x, w) through plan, with a new variant pack destroyed right after. */
static void execute(struct net *net, cudnnBackendDescriptor_t plan, void *x, void *w, void *y)
{
    ensure_workspace(net, plan);
    int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {x, w, y};
    cudnnBackendDescriptor_t pack = bk_create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
    e2e_bk_set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &net->workspace);
    CUDNN_OK(cudnnBackendFinalize(pack));
    CUDNN_OK(cudnnBackendExecute(net->handle, plan, pack));
    CUDNN_OK(cudnnBackendDestroyDescriptor(pack));
}

/* y = conv(x, w) of layer l through the legacy cudnnConvolutionForward (--conv legacy), its
 * descriptors destroyed right after. */
static void legacy_conv(struct net *net, const struct act *in, const struct layer *l, void *w,
                        const struct act *y)
{
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnTensorDescriptor_t xd = e2e_tensor(net->format, net->type, BATCH, in->c, in->h, in->w);
    cudnnTensorDescriptor_t yd = e2e_tensor(net->format, net->type, BATCH, y->c, y->h, y->w);
    CUDNN_OK(cudnnCreateFilterDescriptor(&wd));
    CUDNN_OK(cudnnSetFilter4dDescriptor(wd, net->type, net->format, l->k, in->c / l->groups,
                                        l->r, l->r));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&cd));
    CUDNN_OK(cudnnSetConvolution2dDescriptor(cd, pad_of(l), pad_of(l), l->stride, l->stride,
                                             dilation_of(l), dilation_of(l),
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_OK(cudnnSetConvolutionGroupCount(cd, l->groups));
    CUDNN_OK(cudnnSetConvolutionMathType(cd, net->type == CUDNN_DATA_HALF ? CUDNN_TENSOR_OP_MATH
                                                                          : CUDNN_FMA_MATH));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0, chosen = -1;
    size_t ws = 0;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(net->handle, xd, wd, cd, yd,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                    perf));
    for (int i = 0; i < returned && chosen < 0; i++) /* the first that works, as PyTorch */
        if (perf[i].status == CUDNN_STATUS_SUCCESS &&
            cudnnGetConvolutionForwardWorkspaceSize(net->handle, xd, wd, cd, yd, perf[i].algo,
                                                    &ws) == CUDNN_STATUS_SUCCESS)
            chosen = i;
    if (chosen < 0)
        exit(2);
    grow_workspace(net, (int64_t)ws);
    CUDNN_OK(cudnnConvolutionForward(net->handle, &one, xd, in->data, wd, w, cd,
                                     perf[chosen].algo, net->workspace, ws, &zero, yd, y->data));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(cd));
    CUDNN_OK(cudnnDestroyFilterDescriptor(wd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(yd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(xd));
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
static void bn_params(struct net *net, int c, void *p[4])
{
    p[0] = net_random_buffer(net, (size_t)c, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    p[1] = net_random_buffer(net, (size_t)c, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    p[2] = net_random_buffer(net, (size_t)c, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    p[3] = net_random_buffer(net, (size_t)c, CUDNN_DATA_FLOAT, 0.5f, 2.0f);
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

/* A finalized 1 x c x 1 x 1 FLOAT parameter tensor. */
static cudnnBackendDescriptor_t bk_param(int64_t uid, int c)
{
    int64_t dims[4] = {1, c, 1, 1}, strides[4] = {c, 1, 1, 1};
    return bk_tensor_of(CUDNN_DATA_FLOAT, uid, dims, strides);
}

/* The backend inference BN of y into z as PyTorch's BatchNorm_v8 builds it: tensors, one
 * NORM_FORWARD (BATCH_NORM, INFERENCE) in a graph, heuristics, plan, a variant pack; every
 * descriptor destroyed after the execute.  p[3] is the inverse std 1/sqrt(var + eps). */
static void backend_batch_norm(struct net *net, const struct act *y, struct act *z,
                               void *const p[4])
{
    enum { BN_DESCS = 12 };
    cudnnBackendDescriptor_t d[BN_DESCS];
    cudnnBackendNormMode_t mode = CUDNN_BATCH_NORM;
    cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_INFERENCE;
    cudnnBackendHeurMode_t heur = CUDNN_HEUR_MODE_INSTANT;
    d[0] = bk_tensor(net, 'x', BATCH, y->c, y->h, y->w);
    d[1] = bk_tensor(net, 'y', BATCH, z->c, z->h, z->w);
    d[2] = bk_param('s', y->c);
    d[3] = bk_param('b', y->c);
    d[4] = bk_param('m', y->c);
    d[5] = bk_param('v', y->c);
    d[6] = bk_create(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    e2e_bk_set(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode);
    e2e_bk_set(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, d[0]);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, d[1]);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, d[2]);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, d[3]);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, d[4]);
    e2e_bk_set_desc(d[6], CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, d[5]);
    CUDNN_OK(cudnnBackendFinalize(d[6]));
    d[7] = bk_create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    e2e_bk_set(d[7], CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    e2e_bk_set_desc(d[7], CUDNN_ATTR_OPERATIONGRAPH_OPS, d[6]);
    CUDNN_OK(cudnnBackendFinalize(d[7]));
    d[8] = bk_create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    e2e_bk_set_desc(d[8], CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, d[7]);
    e2e_bk_set(d[8], CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur);
    CUDNN_OK(cudnnBackendFinalize(d[8]));
    d[9] = bk_create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t n = 0;
    CUDNN_OK(cudnnBackendGetAttribute(d[8], CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &d[9]));
    d[10] = bk_create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    e2e_bk_set(d[10], CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &net->handle);
    e2e_bk_set_desc(d[10], CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, d[9]);
    CUDNN_OK(cudnnBackendFinalize(d[10]));
    ensure_workspace(net, d[10]);
    int64_t uids[6] = {'x', 'y', 's', 'b', 'm', 'v'};
    void *pointers[6] = {y->data, z->data, p[0], p[1], p[2], p[3]};
    d[11] = bk_create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    e2e_bk_set(d[11], CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 6, uids);
    e2e_bk_set(d[11], CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 6, pointers);
    e2e_bk_set(d[11], CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &net->workspace);
    CUDNN_OK(cudnnBackendFinalize(d[11]));
    CUDNN_OK(cudnnBackendExecute(net->handle, d[10], d[11]));
    destroy_all(d, BN_DESCS);
}

/* The "kernel" PyTorch runs before BatchNorm_v8: inv[i] = 1 / sqrt(var[i] + eps). */
static char inv_std_symbol;

static void inv_std_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid, (void)block, (void)stream;
    const float *var = *(const float *const *)args[0];
    float *inv = *(float *const *)args[1];
    int n = *(const int *)args[2];
    for (int i = 0; i < n; i++)
        inv[i] = 1.0f / sqrtf(var[i] + (float)BN_EPS);
}

static void launch_inv_std(struct net *net, const void *var, void *inv, int c)
{
    static const size_t offsets[3] = {0, 8, 16}, sizes[3] = {8, 8, 4};
    void *args[] = {&var, &inv, &c};
    dim3 one = {1, 1, 1};
    cudaStream_t stream;
    CUDNN_OK(cudnnGetStream(net->handle, &stream));
    CUDA_OK(emu_register_kernel(&inv_std_symbol, inv_std_host, 3, offsets, sizes));
    CUDA_OK(cudaLaunchKernel(&inv_std_symbol, one, one, args, 0, stream));
}

/* --hazard 3: PyTorch's conv bias, y[n, c, ...] += bias[c] on float y in place. */
static char bias_add_symbol;

static void bias_add_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid, (void)block, (void)stream;
    float *y = *(float *const *)args[0];
    const float *bias = *(const float *const *)args[1];
    int c = *(const int *)args[2], spatial = *(const int *)args[3], nhwc = *(const int *)args[4];
    for (int n = 0; n < BATCH; n++)
        for (int s = 0; s < spatial; s++)
            for (int k = 0; k < c; k++)
                y[nhwc ? ((size_t)n * spatial + s) * c + k : ((size_t)n * c + k) * spatial + s] +=
                    bias[k];
}

static void launch_bias_add(struct net *net, const struct act *y, const void *bias)
{
    static const size_t offsets[5] = {0, 8, 16, 20, 24}, sizes[5] = {8, 8, 4, 4, 4};
    int c = y->c, spatial = y->h * y->w, nhwc = net->format == CUDNN_TENSOR_NHWC;
    void *args[] = {(void *)&y->data, &bias, &c, &spatial, &nhwc};
    dim3 one = {1, 1, 1};
    cudaStream_t stream;
    CUDNN_OK(cudnnGetStream(net->handle, &stream));
    CUDA_OK(emu_register_kernel(&bias_add_symbol, bias_add_host, 5, offsets, sizes));
    CUDA_OK(cudaLaunchKernel(&bias_add_symbol, one, one, args, 0, stream));
}

/* The inverse std of the c variances at var, computed on the host (prepared up front). */
static void *inv_std_buffer(const void *var, int c)
{
    float *host = malloc((size_t)c * sizeof *host);
    void *dev = NULL;
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, var, (size_t)c * sizeof *host, cudaMemcpyDeviceToHost));
    for (int i = 0; i < c; i++)
        host[i] = 1.0f / sqrtf(host[i] + (float)BN_EPS);
    CUDA_OK(cudaMalloc(&dev, (size_t)c * sizeof *host));
    CUDA_OK(cudaMemcpy(dev, host, (size_t)c * sizeof *host, cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

/* Allocates layer l's buffers on in (random weights, BN parameters and, with --bn backend,
 * the inverse std prepared on the host; y and z); layer_data_free releases all but z. */
static void layer_data_make(struct net *net, const struct act *in, const struct layer *l,
                            struct layer_data *d)
{
    memset(d, 0, sizeof *d);
    d->y = (struct act){NULL, l->k, out_extent(l, in->h), out_extent(l, in->w)};
    d->z = d->y;
    size_t w_count = (size_t)l->k * (size_t)(in->c / l->groups) * (size_t)(l->r * l->r);
    float bound = 1.0f / sqrtf((float)(w_count / (size_t)l->k)); /* activations stay O(1) */
    d->w = net_random_buffer(net, w_count, net->type, -bound, bound);
    if (net->hazard == 3)
        d->bias = net_random_buffer(net, (size_t)l->k, CUDNN_DATA_FLOAT, -1, 1);
    bn_params(net, l->k, d->params);
    if (net->bn_backend && net->bn_kernel)
        CUDA_OK(cudaMalloc(&d->inv, (size_t)l->k * sizeof(float)));
    else if (net->bn_backend)
        d->inv = inv_std_buffer(d->params[3], l->k);
    CUDA_OK(cudaMalloc(&d->y.data, act_bytes(net, &d->y)));
    CUDA_OK(cudaMalloc(&d->z.data, act_bytes(net, &d->z)));
}

static void layer_data_free(struct layer_data *d)
{
    void *bufs[] = {d->w, d->bias, d->inv, d->y.data,
                    d->params[0], d->params[1], d->params[2], d->params[3]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CUDA_OK(cudaFree(bufs[i]));
}

/* conv (backend) then BN (legacy, or backend) of layer l on in into d->z, with d's buffers.
 * With --threads every worker waits for the others between the conv and the BN and after
 * the BN, so that every thread's conv is pending at once. */
static void conv_bn(struct net *net, const struct act *in, const struct layer *l,
                    struct layer_data *d)
{
    struct act y = d->y, z = d->z;
    void *w = d->w, *inv = d->inv, *bias = d->bias, **params = d->params;
    for (int i = 1; net->benchmark && i < BENCH_PLANS; i++) { /* the 20 other plans tried */
        cudnnBackendDescriptor_t desc[GRAPH_DESCS + 1];
        desc[GRAPH_DESCS] = build_plan(net, in, l, desc);
        execute(net, desc[GRAPH_DESCS], in->data, w, y.data);
        destroy_all(desc, GRAPH_DESCS + 1);
    }
    if (net->legacy_conv) {
        legacy_conv(net, in, l, w, &y);
    } else if (l->one_shot) {
        cudnnBackendDescriptor_t desc[GRAPH_DESCS + 1];
        desc[GRAPH_DESCS] = build_plan(net, in, l, desc);
        execute(net, desc[GRAPH_DESCS], in->data, w, y.data);
        destroy_all(desc, GRAPH_DESCS + 1);
    } else {
        execute(net, cached_plan(net, in, l), in->data, w, y.data);
    }
    net_barrier(net);
    if (net->hazard == 1) { /* the program reads y between the conv and the BN */
        size_t bytes = act_bytes(net, &y);
        void *host = malloc(bytes);
        if (!host)
            exit(2);
        CUDA_OK(cudaMemcpy(host, y.data, bytes, cudaMemcpyDeviceToHost));
        free(host);
    }
    if (net->hazard == 3) /* the conv's bias, added by a kernel (float only) */
        launch_bias_add(net, &y, bias);
    float gamma_copy[64];
    if (net->hazard == 2) { /* an async copy that touches none of the pending conv's buffers */
        cudaStream_t stream;
        CUDNN_OK(cudnnGetStream(net->handle, &stream));
        CUDA_OK(cudaMemcpyAsync(gamma_copy, params[0],
                                sizeof(float) * (size_t)(l->k < 64 ? l->k : 64),
                                cudaMemcpyDeviceToHost, stream));
    }
    if (net->bn_backend) {
        if (net->bn_kernel)
            launch_inv_std(net, params[3], inv, l->k);
        void *bk_params[4] = {params[0], params[1], params[2], inv};
        backend_batch_norm(net, &y, &z, bk_params);
    } else {
        batch_norm(net, &y, &z, params);
    }
    net_barrier(net);
}

/* --backward 1: executes one backward data (filter 0) or backward filter (filter 1) graph
 * of a 3x3 convolution 2x4x8x8 -> 2x8x8x8 with uids 'x' (x or dx), 'w' (w or dw), 'y' (dy). */
static void backward_graph(struct net *net, int filter)
{
    static const struct layer l = {8, 3, 1, 1, 0, 0, 0, 0};
    const cudnnBackendAttributeName_t attr[2][6] = {
        {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
        {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
         CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA}};
    float alpha = 1.0f, beta = 0.0f;
    cudnnBackendDescriptor_t d[GRAPH_DESCS + 1];
    d[0] = bk_tensor(net, 'x', BATCH, 4, 8, 8);
    d[1] = bk_tensor(net, 'w', 8, 4, 3, 3);
    d[2] = bk_tensor(net, 'y', BATCH, 8, 8, 8);
    d[3] = bk_convolution(&l);
    d[4] = bk_create(filter ? CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR
                            : CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
    for (int i = 0; i < 4; i++)
        e2e_bk_set_desc(d[4], attr[filter][i], d[i]);
    e2e_bk_set(d[4], attr[filter][4], CUDNN_TYPE_FLOAT, 1, &alpha);
    e2e_bk_set(d[4], attr[filter][5], CUDNN_TYPE_FLOAT, 1, &beta);
    d[GRAPH_DESCS] = finish_plan(net, d);
    void *x = net_random_buffer(net, (size_t)BATCH * 4 * 8 * 8, net->type, -1.0f, 1.0f);
    void *w = net_random_buffer(net, (size_t)8 * 4 * 3 * 3, net->type, -1.0f, 1.0f);
    void *dy = net_random_buffer(net, (size_t)BATCH * 8 * 8 * 8, net->type, -1.0f, 1.0f);
    execute(net, d[GRAPH_DESCS], x, w, dy);
    destroy_all(d, GRAPH_DESCS + 1);
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(w));
    CUDA_OK(cudaFree(dy));
}

/* --threads N and --serial 1. */
struct threading {
    int threads, serial;
};

static int parse_args(int argc, char **argv, struct net *net, const char **out,
                      struct e2e_expectations *expect, int *diff, long *verified,
                      struct threading *th)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (!strcmp(opt, "--type"))
            net->type = !strcmp(val, "half") ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
        else if (!strcmp(opt, "--layout"))
            net->format = !strcmp(val, "nhwc") ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
        else if (!strcmp(opt, "--hazard"))
            net->hazard = atoi(val);
        else if (!strcmp(opt, "--bn"))
            net->bn_backend = !strcmp(val, "backend");
        else if (!strcmp(opt, "--bn-kernel"))
            net->bn_kernel = atoi(val);
        else if (!strcmp(opt, "--conv"))
            net->legacy_conv = !strcmp(val, "legacy");
        else if (!strcmp(opt, "--benchmark"))
            net->benchmark = atoi(val);
        else if (!strcmp(opt, "--diff"))
            *diff = atoi(val);
        else if (!strcmp(opt, "--out"))
            *out = val;
        else if (!strcmp(opt, "--backward"))
            net->backward = atoi(val);
        else if (!strcmp(opt, "--expect-pairs"))
            expect->pairs = strtol(val, NULL, 10);
        else if (!strcmp(opt, "--expect-fused"))
            expect->fused = strtol(val, NULL, 10);
        else if (!strcmp(opt, "--expect-verified"))
            *verified = strtol(val, NULL, 10);
        else if (!strcmp(opt, "--threads"))
            th->threads = atoi(val);
        else if (!strcmp(opt, "--serial"))
            th->serial = atoi(val);
        else
            return -1;
    }
    return (argc % 2) ? 0 : -1;
}

/* --- --diff: random backend conv -> BN pairs against a naive double reference --- */

static const double diff_tolerance[2] = {2e-6, 4e-3}; /* float, half */

static int pick(int lo, int hi)
{
    return lo + (int)e2e_uniform(0.0f, (float)(hi - lo + 1) - 0.001f);
}

static double load(const void *base, cudnnDataType_t t, size_t i)
{
    if (t == CUDNN_DATA_FLOAT)
        return ((const float *)base)[i];
    uint16_t h = ((const uint16_t *)base)[i];
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, exp - 25);
    return (h & 0x8000) ? -v : v;
}

static void *to_host(const void *dev, size_t bytes)
{
    void *host = malloc(bytes);
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
    return host;
}

/* Offset of element (n, c, h, w) of a packed n x c x h x w tensor in format f. */
static size_t at(cudnnTensorFormat_t f, int c, int h, int w, int in, int ic, int ih, int iw)
{
    if (f == CUDNN_TENSOR_NHWC)
        return (((size_t)in * h + ih) * w + iw) * c + ic;
    return (((size_t)in * c + ic) * h + ih) * w + iw;
}

struct diff_case {
    struct act x, y, z;
    struct layer l;
    int backend_bn;
    void *w, *params[4], *inv;
};

/* The reference of output element (n, k, oh, ow): conv in double, then the BN. */
static double reference(const struct net *net, const struct diff_case *d, const void *x,
                        const void *w, const float *const p[4], const float *inv, int n, int k,
                        int oh, int ow)
{
    const struct layer *l = &d->l;
    int cg = d->x.c / l->groups, g = k / (l->k / l->groups);
    double acc = 0.0;
    for (int c = 0; c < cg; c++)
        for (int r = 0; r < l->r; r++)
            for (int q = 0; q < l->r; q++) {
                int ih = oh * l->stride - l->pad + r * l->dilation;
                int iw = ow * l->stride - l->pad + q * l->dilation;
                if (ih < 0 || iw < 0 || ih >= d->x.h || iw >= d->x.w)
                    continue;
                acc += load(x, net->type, at(net->format, d->x.c, d->x.h, d->x.w, n, g * cg + c,
                                             ih, iw)) *
                       load(w, net->type, at(net->format, cg, l->r, l->r, k, c, r, q));
            }
    double s = d->backend_bn ? (double)p[0][k] * inv[k]
                             : (double)p[0][k] / sqrt((double)p[3][k] + BN_EPS);
    return s * (acc - p[2][k]) + p[1][k];
}

/* Compares z with the reference; returns the worst relative error. */
static double compare_case(const struct net *net, const struct diff_case *d)
{
    size_t xb = act_bytes(net, &d->x), zb = act_bytes(net, &d->z);
    size_t wb = (size_t)d->l.k * (size_t)(d->x.c / d->l.groups) * (size_t)(d->l.r * d->l.r) *
                e2e_type_size(net->type);
    void *x = to_host(d->x.data, xb), *z = to_host(d->z.data, zb), *w = to_host(d->w, wb);
    float *p[4], *inv = d->inv ? to_host(d->inv, (size_t)d->l.k * sizeof(float)) : NULL;
    for (int i = 0; i < 4; i++)
        p[i] = to_host(d->params[i], (size_t)d->l.k * sizeof(float));
    double worst = 0.0;
    for (int n = 0; n < BATCH; n++)
        for (int k = 0; k < d->z.c; k++)
            for (int oh = 0; oh < d->z.h; oh++)
                for (int ow = 0; ow < d->z.w; ow++) {
                    double ref = reference(net, d, x, w, (const float *const *)p, inv, n, k, oh,
                                           ow);
                    double got = load(z, net->type,
                                      at(net->format, d->z.c, d->z.h, d->z.w, n, k, oh, ow));
                    double err = fabs(got - ref) / fmax(1.0, fabs(ref));
                    worst = isnan(err) ? INFINITY : fmax(worst, err);
                }
    free(x), free(z), free(w), free(inv);
    for (int i = 0; i < 4; i++)
        free(p[i]);
    return worst;
}

/* Draws a case's geometry; returns 0 when its output is not empty. */
static int random_case(struct net *net, struct diff_case *d)
{
    memset(d, 0, sizeof *d);
    net->type = pick(0, 1) ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    net->format = pick(0, 1) ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    d->backend_bn = pick(0, 1);
    struct layer *l = &d->l;
    l->groups = pick(1, 3);
    l->r = pick(1, 3);
    l->stride = pick(1, 2);
    l->custom = 1;
    l->pad = pick(0, 2);
    l->dilation = pick(1, 2);
    l->one_shot = 1;
    l->k = l->groups * pick(1, 4);
    d->x = (struct act){NULL, l->groups * pick(1, 4), pick(3, 9), pick(3, 9)};
    d->y = (struct act){NULL, l->k, out_extent(l, d->x.h), out_extent(l, d->x.w)};
    d->z = d->y;
    int span = 2 * l->pad - l->dilation * (l->r - 1) - 1; /* in + span: stride * (out - 1) */
    return d->x.h + span >= 0 && d->x.w + span >= 0 ? 0 : -1;
}

static double run_case(struct net *net, struct diff_case *d)
{
    size_t w_count = (size_t)d->l.k * (size_t)(d->x.c / d->l.groups) * (size_t)(d->l.r * d->l.r);
    float bound = 1.0f / sqrtf((float)(w_count / (size_t)d->l.k));
    d->x.data = e2e_random_buffer((size_t)BATCH * d->x.c * d->x.h * d->x.w, net->type, -1, 1);
    d->w = e2e_random_buffer(w_count, net->type, -bound, bound);
    net->rng = e2e_rng_state; /* --diff draws from the global state */
    bn_params(net, d->l.k, d->params);
    if (d->backend_bn)
        d->inv = inv_std_buffer(d->params[3], d->l.k);
    CUDA_OK(cudaMalloc(&d->y.data, act_bytes(net, &d->y)));
    CUDA_OK(cudaMalloc(&d->z.data, act_bytes(net, &d->z)));
    if (net->legacy_conv) {
        legacy_conv(net, &d->x, &d->l, d->w, &d->y);
    } else {
        cudnnBackendDescriptor_t desc[GRAPH_DESCS + 1];
        desc[GRAPH_DESCS] = build_plan(net, &d->x, &d->l, desc);
        execute(net, desc[GRAPH_DESCS], d->x.data, d->w, d->y.data);
        destroy_all(desc, GRAPH_DESCS + 1);
    }
    if (d->backend_bn) {
        void *p[4] = {d->params[0], d->params[1], d->params[2], d->inv};
        backend_batch_norm(net, &d->y, &d->z, p);
    } else {
        batch_norm(net, &d->y, &d->z, d->params);
    }
    double worst = compare_case(net, d);
    void *bufs[] = {d->x.data, d->w, d->y.data, d->z.data, d->inv,
                    d->params[0], d->params[1], d->params[2], d->params[3]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CUDA_OK(cudaFree(bufs[i]));
    return worst;
}

static int run_diff(struct net *net, int cases, cudaStream_t stream,
                    const struct e2e_expectations *expect)
{
    double worst[2] = {0.0, 0.0}; /* float, half */
    const double *tolerance = diff_tolerance;
    int done = 0, failed = 0, backend = 0;
    struct diff_case d;
    while (done < cases) {
        if (random_case(net, &d) != 0)
            continue;
        double err = run_case(net, &d);
        int t = net->type == CUDNN_DATA_HALF;
        worst[t] = fmax(worst[t], err);
        if (!(err <= tolerance[t])) {
            fprintf(stderr, "backend_seq: case %d (%s %s, %s BN, x %dx%dx%d, k %d r %d stride %d "
                            "pad %d dilation %d groups %d): error %g\n",
                    done, t ? "half" : "float", net->format == CUDNN_TENSOR_NHWC ? "nhwc" : "nchw",
                    d.backend_bn ? "backend" : "legacy", d.x.c, d.x.h, d.x.w, d.l.k, d.l.r,
                    d.l.stride, d.l.pad, d.l.dilation, d.l.groups, err);
            failed = 1;
        }
        backend += d.backend_bn;
        done++;
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    printf("backend_seq: %d random pairs (%d with a backend BN, %s convs), worst error float "
           "%.3g, half %.3g\n", cases, backend, net->legacy_conv ? "legacy" : "backend",
           worst[0], worst[1]);
    CUDA_OK(cudaFree(net->workspace));
    CUDNN_OK(cudnnDestroy(net->handle));
    CUDA_OK(cudaStreamDestroy(stream));
    return failed ? 1 : e2e_check_expectations("backend_seq", expect);
}

/* --expect-verified N: when the shim is preloaded, it verified N pairs and the worst relative
 * error is within the --diff tolerance of the net's type.  Returns 0, or 1 (with a line). */
static int check_verified(const struct net *net, long verified)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    double tolerance = diff_tolerance[net->type == CUDNN_DATA_HALF];
    if (verified < 0 || !counters)
        return 0;
    counters(&c, sizeof c);
    if (c.pairs_verified == (uint64_t)verified && c.verify_max_rel_error <= tolerance)
        return 0;
    fprintf(stderr, "backend_seq: shim verified %llu pairs, worst relative error %g; expected "
                    "%ld within %g\n", (unsigned long long)c.pairs_verified,
            c.verify_max_rel_error, verified, tolerance);
    return 1;
}

static const struct layer layers[] = {
    {16, 3, 1, 1, 0, 0, 0, 0}, {16, 3, 1, 1, 0, 0, 0, 0},
    {16, 3, 1, 1, 0, 0, 0, 0}, /* the last two share a plan */
    {32, 1, 2, 1, 0, 0, 0, 0}, {32, 3, 1, 4, 0, 0, 0, 0}, {32, 3, 1, 4, 1, 0, 0, 0},
};
#define NB_LAYERS ((int)(sizeof layers / sizeof layers[0]))
#define MAX_THREADS 64
#define THREAD_WORKSPACE ((int64_t)8 << 20) /* no cudaFree while another thread's conv waits */

static int layers_of(const struct net *net)
{
    return net->benchmark ? 1 : NB_LAYERS;
}

/* The network on net alone (no --threads): each layer's buffers made just before it and
 * freed right after, its BN output appended to --out. */
static struct act run_alone(struct net *net)
{
    struct cached_plan plans[MAX_PLANS];
    net->plans = plans;
    struct act x = {net_random_buffer(net, (size_t)BATCH * 3 * 16 * 16, net->type, -1.0f, 1.0f),
                    3, 16, 16};
    for (int i = 0; i < layers_of(net); i++) {
        struct layer_data d;
        layer_data_make(net, &x, &layers[i], &d);
        conv_bn(net, &x, &layers[i], &d);
        dump(net, &d.z);
        layer_data_free(&d);
        CUDA_OK(cudaFree(x.data));
        x = d.z;
    }
    for (int i = 0; net->backward && i < 2; i++)
        backward_graph(net, i);
    CUDA_OK(cudaStreamSynchronize(net->stream));
    for (int i = 0; i < net->nb_plans; i++)
        CUDNN_OK(cudnnBackendDestroyDescriptor(plans[i].plan));
    return x;
}

/* --threads: one worker's net (handle, stream, plan cache, workspace of its own), its input
 * and every layer's buffers, all made up front from the worker's own random state: between
 * the first and the last barrier a worker makes no call that flushes other streams
 * (cudnnCreate, cudaMemcpy, cudaFree). */
struct worker {
    struct net net;
    struct cached_plan plans[MAX_PLANS];
    struct act x;
    struct layer_data data[NB_LAYERS];
};

static void worker_prepare(struct worker *wk, const struct net *proto, uint64_t seed,
                           pthread_barrier_t *barrier)
{
    wk->net = *proto;
    wk->net.rng = seed ? seed : 1;
    wk->net.plans = wk->plans;
    wk->net.barrier = barrier;
    struct act x = {net_random_buffer(&wk->net, (size_t)BATCH * 3 * 16 * 16, proto->type, -1.0f,
                                      1.0f), 3, 16, 16};
    wk->x = x;
    for (int i = 0; i < layers_of(proto); i++) {
        layer_data_make(&wk->net, &x, &layers[i], &wk->data[i]);
        x = wk->data[i].z;
    }
    CUDA_OK(cudaMalloc(&wk->net.workspace, (size_t)THREAD_WORKSPACE));
    wk->net.workspace_size = THREAD_WORKSPACE;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct net *net = &wk->net;
    CUDNN_OK(cudnnCreate(&net->handle));
    CUDA_OK(cudaStreamCreate(&net->stream));
    CUDNN_OK(cudnnSetStream(net->handle, net->stream));
    net_barrier(net); /* every handle made (cudnnCreate flushes every stream) */
    const struct act *x = &wk->x;
    for (int i = 0; i < layers_of(net); i++) {
        conv_bn(net, x, &layers[i], &wk->data[i]);
        x = &wk->data[i].z;
    }
    CUDA_OK(cudaStreamSynchronize(net->stream));
    net_barrier(net); /* every pair done: the backward graphs' frees may flush */
    for (int i = 0; net->backward && i < 2; i++)
        backward_graph(net, i);
    for (int i = 0; i < net->nb_plans; i++)
        CUDNN_OK(cudnnBackendDestroyDescriptor(wk->plans[i].plan));
    CUDNN_OK(cudnnDestroy(net->handle));
    CUDA_OK(cudaStreamDestroy(net->stream));
    return NULL;
}

/* --threads N: N workers at once (one after another with --serial 1), each running the whole
 * network; every BN output appended to --out after all joined, in worker order.  Worker i
 * draws its data from the seed xor i * a constant (worker 0: the data of a run alone). */
static struct act run_threads(const struct net *proto, const struct threading *th)
{
    static struct worker wk[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    pthread_barrier_t barrier;
    int n = th->threads;
    if (pthread_barrier_init(&barrier, NULL, (unsigned)n) != 0)
        exit(2);
    for (int i = 0; i < n; i++)
        worker_prepare(&wk[i], proto, proto->rng ^ ((uint64_t)i * 0xbf58476d1ce4e5b9ull),
                       th->serial ? NULL : &barrier);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tid[i], NULL, worker_main, &wk[i]) != 0)
            exit(2);
        if (th->serial)
            pthread_join(tid[i], NULL);
    }
    for (int i = 0; i < n && !th->serial; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&barrier);
    struct act last = wk[0].x;
    for (int i = 0; i < n; i++) {
        wk[i].net.out = proto->out;
        CUDA_OK(cudaFree(wk[i].x.data));
        for (int j = 0; j < layers_of(proto); j++) {
            dump(&wk[i].net, &wk[i].data[j].z);
            layer_data_free(&wk[i].data[j]);
            last = wk[i].data[j].z;
            if (i < n - 1 || j < layers_of(proto) - 1)
                CUDA_OK(cudaFree(last.data));
        }
        CUDA_OK(cudaFree(wk[i].net.workspace));
    }
    return last;
}

int main(int argc, char **argv)
{
    int diff = 0;
    struct net net = {.type = CUDNN_DATA_FLOAT, .format = CUDNN_TENSOR_NCHW,
                      .rng = e2e_rng_state};
    const char *out_path = NULL;
    struct e2e_expectations expect = {-1, -1};
    struct threading th = {0, 0};
    long verified = -1;
    if (parse_args(argc, argv, &net, &out_path, &expect, &diff, &verified, &th) != 0 ||
        (net.hazard == 3 && net.type != CUDNN_DATA_FLOAT) || th.threads < 0 ||
        th.threads > MAX_THREADS || (th.threads && diff)) {
        fprintf(stderr, "usage: backend_seq [--type float|half] [--layout nchw|nhwc] "
                        "[--out FILE] [--hazard 0-3 (3: float)] [--bn legacy|backend] [--bn-kernel 0|1] "
                        "[--benchmark 0|1] [--diff N] [--conv backend|legacy] [--expect-pairs N] "
                        "[--expect-fused N] [--expect-verified N] [--backward 1] "
                        "[--threads 1-%d (not with --diff)] [--serial 0|1]\n", MAX_THREADS);
        return 2;
    }
    if (out_path && !(net.out = fopen(out_path, "wb"))) {
        perror(out_path);
        return 2;
    }
    struct act x;
    if (th.threads) {
        x = run_threads(&net, &th);
        printf("backend_seq: %d threads, %d pairs issued each, output %dx%dx%dx%d\n",
               th.threads, layers_of(&net), BATCH, x.c, x.h, x.w);
    } else {
        CUDNN_OK(cudnnCreate(&net.handle));
        CUDA_OK(cudaStreamCreate(&net.stream));
        CUDNN_OK(cudnnSetStream(net.handle, net.stream));
        if (diff > 0)
            return run_diff(&net, diff, net.stream, &expect);
        x = run_alone(&net);
        printf("backend_seq: %d pairs issued, output %dx%dx%dx%d\n", layers_of(&net), BATCH,
               x.c, x.h, x.w);
        CUDA_OK(cudaFree(net.workspace));
        CUDNN_OK(cudnnDestroy(net.handle));
        CUDA_OK(cudaStreamDestroy(net.stream));
    }
    CUDA_OK(cudaFree(x.data));
    if (net.out)
        fclose(net.out);
    return e2e_check_expectations("backend_seq", &expect) | check_verified(&net, verified);
}
