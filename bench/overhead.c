/* Host-overhead bench: an ordinary cuDNN program whose loops scripts/measure-overhead.sh
 * runs under callgrind with and without the shim, to count the host instructions the shim
 * adds per intercepted call (issue budget: 300 per call that does not pair, 3,000 per fused
 * pair beyond the emulated compute), and a replay of many pairs that checks the shim's
 * device memory stays under its cap and stops growing (DESIGN.md invariant 6).
 *
 * usage: overhead calls N    N calls of each non-pairing kind, one measure_* function per
 *                            kind (the script reads each function's inclusive cost):
 *                            host-only calls through the generated wrappers, work calls
 *                            (generated wrapper and custom hook), CUDA runtime calls
 *        overhead pairs N    N conv -> inference-BN pairs on 1x1x1x1 tensors with a 1x1
 *                            filter (negligible emulated compute), all buffers allocated
 *                            up front, in measure_pairs; checks the last result
 *        overhead replay N   N pairs cycling through a handful of geometries on two
 *                            streams, each followed by a ReLU; prints the shim's device
 *                            high-water mark after N/10 and after N pairs and the cap
 *
 * Knows nothing of the shim beyond the optional dlsym of its public counters.  When the
 * shim is preloaded with CONVBN_MODE=fuse, `pairs` and `replay` require every pair to have
 * been fused.  Exit status 0 on success, 1 on a failed check (a result out of tolerance,
 * pairs not fused, high water over the cap or still growing), 2 on a usage or cuDNN/CUDA
 * error. */
#include <math.h>

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
    if (!run || !end || *end || n < 1) {
        fprintf(stderr, "usage: overhead calls|pairs|replay N (N >= 1)\n");
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
