/* Hazards between a convolution and the inference BatchNorm that consumes its output
 * (DESIGN.md sections 4 and 5): one ordinary cuDNN program per scenario, which run.sh runs
 * without the shim and under it.  Every buffer and BN parameter exists before the
 * convolution (except where reuse is the hazard).  Each scenario writes its final outputs,
 * and anything the host observed in between, to --out, so the runs can be compared: byte
 * for byte where the shim must not fuse, within fp32 tolerance where fusing is legal.
 * Under the shim the program also checks the counters its scenario implies (pairs seen,
 * fused, flushes, one not-fused reason) in the mode run.sh gives it (--list says which)
 * and prints them.
 *
 * usage: hazards --list
 *        hazards SCENARIO [--out FILE] [--serial]
 *        (--serial: the threads scenarios run their workers one after another)
 * Exit status 0 on success, 1 on unexpected counters, 2 on a usage, cuDNN or CUDA error. */
#include <pthread.h>
#include <unistd.h>

#include "e2e_util.h"
#include "emu_cudart.h"

#define BATCH 2
#define CHANNELS 8 /* conv input and output channels: x, y and z share one shape */
#define SIDE 6
#define ACT_COUNT ((size_t)BATCH * CHANNELS * SIDE * SIDE)
#define ACT_BYTES (ACT_COUNT * sizeof(float))
#define THREADS 4
#define THREAD_PAIRS 3

/* What a scenario does to the shim's counters. */
struct expected {
    uint64_t seen, fused, flushes;
    const char *reason; /* NULL, or a not-fused reason that must count reason_count */
    uint64_t reason_count;
};

struct run;

struct scenario {
    const char *name, *mode, *what;
    void (*body)(struct run *r);
    void (*at_exit)(void); /* registered before the first CUDA call, or NULL */
    struct expected expect;
};

/* The program's state: the handle and stream every scenario starts with, the output. */
struct run {
    const struct scenario *scenario;
    cudnnHandle_t handle;
    cudaStream_t stream;
    FILE *out;
    int serial;
};

/* One conv -> BN layer's descriptors (3x3, pad 1: x, y and z share `act`) and parameters. */
struct layer {
    cudnnTensorDescriptor_t act, params;
    cudnnFilterDescriptor_t filter;
    cudnnConvolutionDescriptor_t conv;
    void *w, *gamma, *beta, *mean, *var;
};

/* One pair's buffers: x (random), y, z, a zeroed probe a hazard may write, a full-size
 * operand and a per-channel bias (both random). */
struct pair {
    struct layer l;
    void *x, *y, *z, *probe, *operand, *bias;
};

static void set_filter(cudnnFilterDescriptor_t d, int k, int c, int side)
{
    CUDNN_OK(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, side, side));
}

static void set_conv(cudnnConvolutionDescriptor_t d, int pad, int stride)
{
    CUDNN_OK(cudnnSetConvolution2dDescriptor(d, pad, pad, stride, stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
}

static cudnnTensorDescriptor_t act_desc(void)
{
    return e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, BATCH, CHANNELS, SIDE, SIDE);
}

static void layer_init(struct layer *l)
{
    l->act = act_desc();
    CUDNN_OK(cudnnCreateFilterDescriptor(&l->filter));
    set_filter(l->filter, CHANNELS, CHANNELS, 3);
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&l->conv));
    set_conv(l->conv, 1, 1);
    CUDNN_OK(cudnnCreateTensorDescriptor(&l->params));
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(l->params, l->act, CUDNN_BATCHNORM_SPATIAL));
    l->w = e2e_random_buffer((size_t)CHANNELS * CHANNELS * 9, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    l->gamma = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    l->beta = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    l->mean = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    l->var = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
}

static void layer_free(struct layer *l)
{
    void *params[] = {l->w, l->gamma, l->beta, l->mean, l->var};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        CUDA_OK(cudaFree(params[i]));
    CUDNN_OK(cudnnDestroyTensorDescriptor(l->act));
    CUDNN_OK(cudnnDestroyTensorDescriptor(l->params));
    CUDNN_OK(cudnnDestroyFilterDescriptor(l->filter));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(l->conv));
}

static void *act_alloc(void)
{
    void *p = NULL;
    CUDA_OK(cudaMalloc(&p, ACT_BYTES));
    return p;
}

static void pair_init(struct pair *p)
{
    layer_init(&p->l);
    p->x = e2e_random_buffer(ACT_COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    p->operand = e2e_random_buffer(ACT_COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    p->bias = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    p->y = act_alloc();
    p->z = act_alloc();
    p->probe = act_alloc();
    CUDA_OK(cudaMemset(p->probe, 0, ACT_BYTES));
}

static void pair_free(struct pair *p)
{
    void *buffers[] = {p->x, p->y, p->z, p->probe, p->operand, p->bias};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        CUDA_OK(cudaFree(buffers[i]));
    layer_free(&p->l);
}

static void conv_with(cudnnHandle_t h, const struct layer *l, const void *x, void *y,
                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes)
{
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnConvolutionForward(h, &one, l->act, x, l->filter, l->w, l->conv, algo, ws,
                                     ws_bytes, &zero, l->act, y));
}

static void conv(cudnnHandle_t h, const struct layer *l, const void *x, void *y)
{
    conv_with(h, l, x, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0);
}

static void bn(cudnnHandle_t h, const struct layer *l, const void *y, void *z)
{
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnBatchNormalizationForwardInference(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                     l->act, y, l->act, z, l->params, l->gamma,
                                                     l->beta, l->mean, l->var, 1e-5));
}

static void emit_host(struct run *r, const void *host, size_t bytes)
{
    if (r->out && fwrite(host, 1, bytes, r->out) != bytes)
        exit(2);
}

/* Appends bytes of device memory at dev to the output (a cudaMemcpy: a flush trigger). */
static void emit(struct run *r, const void *dev, size_t bytes)
{
    void *host = malloc(bytes);
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
    emit_host(r, host, bytes);
    free(host);
}

/* --- hazards between the conv and the BN of one pair -------------------------------------- */

static char scale_symbol; /* the "kernel" scale(const float *src, float *dst, int n, float f) */

/* Host body of scale: dst[i] = f * src[i]. */
static void scale_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid;
    (void)block;
    (void)stream;
    const float *src = *(const float **)args[0];
    float *dst = *(float **)args[1];
    int n = *(const int *)args[2];
    float f = *(const float *)args[3];
    for (int i = 0; i < n; i++)
        dst[i] = f * src[i];
}

static void launch_scale(struct run *r, const void *src, void *dst, float f)
{
    static const size_t offsets[] = {0, 8, 16, 20}, sizes[] = {8, 8, 4, 4};
    int n = (int)ACT_COUNT;
    void *args[] = {&src, &dst, &n, &f};
    dim3 one = {1, 1, 1};
    CUDA_OK(emu_register_kernel(&scale_symbol, scale_host, 4, offsets, sizes));
    CUDA_OK(cudaLaunchKernel(&scale_symbol, one, one, args, 0, r->stream));
}

static void kernel_reads_y(struct run *r, struct pair *p)
{
    launch_scale(r, p->y, p->probe, 1.0f);
}

static void kernel_writes_y(struct run *r, struct pair *p)
{
    launch_scale(r, p->y, p->y, -0.5f);
}

static char bias_symbol; /* the "kernel" add_bias(float *y, const float *bias, int c, int hw) */

/* Host body of add_bias: y[n][c][i] += bias[c], in place (a conv bias added by a kernel). */
static void add_bias_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid;
    (void)block;
    (void)stream;
    float *y = *(float **)args[0];
    const float *bias = *(const float **)args[1];
    int c = *(const int *)args[2], hw = *(const int *)args[3];
    for (size_t i = 0; i < ACT_COUNT; i++)
        y[i] += bias[(i / (size_t)hw) % (size_t)c];
}

static void kernel_adds_bias(struct run *r, struct pair *p)
{
    static const size_t offsets[] = {0, 8, 16, 20}, sizes[] = {8, 8, 4, 4};
    int c = CHANNELS, hw = SIDE * SIDE;
    void *args[] = {&p->y, &p->bias, &c, &hw};
    dim3 one = {1, 1, 1};
    CUDA_OK(emu_register_kernel(&bias_symbol, add_bias_host, 4, offsets, sizes));
    CUDA_OK(cudaLaunchKernel(&bias_symbol, one, one, args, 0, r->stream));
}

/* y += operand, a full-size tensor: 1 * A + 1 * C as a bias add is, but not per channel. */
static void add_tensor_full(struct run *r, struct pair *p)
{
    const float one = 1.0f;
    CUDNN_OK(cudnnAddTensor(r->handle, &one, p->l.act, p->operand, &one, p->l.act, p->y));
}

/* y += 0.5 * bias: a per-channel tensor, but scaled. */
static void add_tensor_scaled_bias(struct run *r, struct pair *p)
{
    const float half = 0.5f, one = 1.0f;
    cudnnTensorDescriptor_t b = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, CHANNELS, 1, 1);
    CUDNN_OK(cudnnAddTensor(r->handle, &half, b, p->bias, &one, p->l.act, p->y));
    CUDNN_OK(cudnnDestroyTensorDescriptor(b));
}

/* y = y + bias through cudnnOpTensor: a per-channel bias add, in OpTensor's form. */
static void op_tensor_bias(struct run *r, struct pair *p)
{
    const float one = 1.0f, zero = 0.0f;
    cudnnTensorDescriptor_t b = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, CHANNELS, 1, 1);
    cudnnOpTensorDescriptor_t op;
    CUDNN_OK(cudnnCreateOpTensorDescriptor(&op));
    CUDNN_OK(cudnnSetOpTensorDescriptor(op, CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT,
                                        CUDNN_NOT_PROPAGATE_NAN));
    CUDNN_OK(cudnnOpTensor(r->handle, op, &one, p->l.act, p->y, &one, b, p->bias, &zero,
                           p->l.act, p->y));
    CUDNN_OK(cudnnDestroyOpTensorDescriptor(op));
    CUDNN_OK(cudnnDestroyTensorDescriptor(b));
}

/* The host copies y (cudaMemcpy, or cudaMemcpyAsync on the conv's stream and a sync) and
 * writes what it saw: the conv result. */
static void copy_y_to_host(struct run *r, const struct pair *p, int async)
{
    void *host = malloc(ACT_BYTES);
    if (!host)
        exit(2);
    if (async) {
        CUDA_OK(cudaMemcpyAsync(host, p->y, ACT_BYTES, cudaMemcpyDeviceToHost, r->stream));
        CUDA_OK(cudaStreamSynchronize(r->stream));
    } else {
        CUDA_OK(cudaMemcpy(host, p->y, ACT_BYTES, cudaMemcpyDeviceToHost));
    }
    emit_host(r, host, ACT_BYTES);
    free(host);
}

static void memcpy_to_host(struct run *r, struct pair *p)
{
    copy_y_to_host(r, p, 0);
}

static void memcpy_async_to_host(struct run *r, struct pair *p)
{
    copy_y_to_host(r, p, 1);
}

typedef void (*hazard_fn)(struct run *r, struct pair *p);

/* conv, the hazard, BN; outputs z and the probe. */
static void conv_hazard_bn(struct run *r, hazard_fn hazard)
{
    struct pair p;
    pair_init(&p);
    conv(r->handle, &p.l, p.x, p.y);
    hazard(r, &p);
    bn(r->handle, &p.l, p.y, p.z);
    emit(r, p.z, ACT_BYTES);
    emit(r, p.probe, ACT_BYTES);
    pair_free(&p);
}

#define BETWEEN(fn) static void between_##fn(struct run *r) { conv_hazard_bn(r, fn); }
BETWEEN(kernel_reads_y)
BETWEEN(kernel_writes_y)
BETWEEN(kernel_adds_bias)
BETWEEN(add_tensor_full)
BETWEEN(add_tensor_scaled_bias)
BETWEEN(op_tensor_bias)
BETWEEN(memcpy_to_host)
BETWEEN(memcpy_async_to_host)

/* --- scenarios with their own shape ------------------------------------------------------- */

/* Two pairs in a chain (x -> z1 -> z2), nothing in between; outputs z1, z2. */
static void chain(struct run *r)
{
    struct pair a, b;
    pair_init(&a);
    pair_init(&b);
    conv(r->handle, &a.l, a.x, a.y);
    bn(r->handle, &a.l, a.y, a.z);
    conv(r->handle, &b.l, a.z, b.y);
    bn(r->handle, &b.l, b.y, b.z);
    emit(r, a.z, ACT_BYTES);
    emit(r, b.z, ACT_BYTES);
    pair_free(&a);
    pair_free(&b);
}

/* x and z are two views of one buffer of 1.5 activations, z starting at z_offset bytes:
 * the BN writes into the conv's input.  Outputs the whole buffer. */
static void bn_into_input(struct run *r, size_t z_offset)
{
    struct pair p;
    pair_init(&p);
    size_t bytes = ACT_BYTES * 3 / 2;
    char *buf = e2e_random_buffer(bytes / sizeof(float), CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    conv(r->handle, &p.l, buf, p.y);
    bn(r->handle, &p.l, p.y, buf + z_offset);
    emit(r, buf, bytes);
    CUDA_OK(cudaFree(buf));
    pair_free(&p);
}

static void alias_input(struct run *r)
{
    bn_into_input(r, 0);
}

static void alias_partial(struct run *r)
{
    bn_into_input(r, ACT_BYTES / 2);
}

/* BN in place (z = y, as Caffe writes it): y is dead after the BN, so fusing is legal. */
static void bn_in_place(struct run *r)
{
    struct pair p;
    pair_init(&p);
    conv(r->handle, &p.l, p.x, p.y);
    bn(r->handle, &p.l, p.y, p.y);
    emit(r, p.y, ACT_BYTES);
    pair_free(&p);
}

/* Runs p's conv with a workspace of its own, at least one activation large (the
 * IMPLICIT_PRECOMP_GEMM algorithm uses one); returns it (the caller frees it). */
static void *conv_with_workspace(struct run *r, struct pair *p)
{
    size_t need = 0;
    void *ws = NULL;
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(r->handle, p->l.act, p->l.filter, p->l.conv,
                                                     p->l.act, algo, &need));
    size_t bytes = need > ACT_BYTES ? need : ACT_BYTES;
    CUDA_OK(cudaMalloc(&ws, bytes));
    conv_with(r->handle, &p->l, p->x, p->y, algo, ws, bytes);
    return ws;
}

/* The program frees the conv's workspace and allocates the BN output, which may take the
 * same memory. */
static void workspace_reuse(struct run *r)
{
    struct pair p;
    void *z = NULL;
    pair_init(&p);
    CUDA_OK(cudaFree(conv_with_workspace(r, &p)));
    CUDA_OK(cudaMalloc(&z, ACT_BYTES));
    bn(r->handle, &p.l, p.y, z);
    emit(r, z, ACT_BYTES);
    CUDA_OK(cudaFree(z));
    pair_free(&p);
}

/* The BN output is the conv's workspace block, handed on without a free (as a caching
 * allocator does): legal to fuse, since a deferred conv uses the shim's own workspace. */
static void workspace_as_output(struct run *r)
{
    struct pair p;
    pair_init(&p);
    void *ws = conv_with_workspace(r, &p);
    bn(r->handle, &p.l, p.y, ws);
    emit(r, ws, ACT_BYTES);
    CUDA_OK(cudaFree(ws));
    pair_free(&p);
}

/* Destroys l's x/y, filter and conv descriptors and creates descriptors of other shapes,
 * which may land at the freed addresses; l->act becomes a fresh descriptor of y's shape.
 * Returns the odd-shaped tensor descriptor (the caller destroys it). */
static cudnnTensorDescriptor_t replace_descriptors(struct layer *l)
{
    CUDNN_OK(cudnnDestroyTensorDescriptor(l->act));
    CUDNN_OK(cudnnDestroyFilterDescriptor(l->filter));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(l->conv));
    cudnnTensorDescriptor_t odd = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 3, 3);
    CUDNN_OK(cudnnCreateFilterDescriptor(&l->filter));
    set_filter(l->filter, 2, 2, 1);
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&l->conv));
    set_conv(l->conv, 0, 2);
    l->act = act_desc();
    return odd;
}

static void descriptors_destroyed(struct run *r)
{
    struct pair p;
    pair_init(&p);
    conv(r->handle, &p.l, p.x, p.y);
    cudnnTensorDescriptor_t odd = replace_descriptors(&p.l);
    bn(r->handle, &p.l, p.y, p.z);
    emit(r, p.z, ACT_BYTES);
    CUDNN_OK(cudnnDestroyTensorDescriptor(odd));
    pair_free(&p);
}

/* One handle moved between two streams: conv A (s0), conv B (s1), then the BNs, in
 * order in the first round and in reverse in the second.  Outputs the four z. */
static void two_streams(struct run *r)
{
    struct pair p[4];
    cudaStream_t s[2];
    for (int i = 0; i < 4; i++)
        pair_init(&p[i]);
    for (int i = 0; i < 2; i++)
        CUDA_OK(cudaStreamCreate(&s[i]));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++) {
            CUDNN_OK(cudnnSetStream(r->handle, s[i]));
            conv(r->handle, &p[2 * round + i].l, p[2 * round + i].x, p[2 * round + i].y);
        }
        for (int k = 0; k < 2; k++) {
            int i = round ? 1 - k : k;
            CUDNN_OK(cudnnSetStream(r->handle, s[i]));
            bn(r->handle, &p[2 * round + i].l, p[2 * round + i].y, p[2 * round + i].z);
        }
    }
    for (int i = 0; i < 4; i++) {
        emit(r, p[i].z, ACT_BYTES);
        pair_free(&p[i]);
    }
    for (int i = 0; i < 2; i++)
        CUDA_OK(cudaStreamDestroy(s[i]));
}

/* One thread's chain of THREAD_PAIRS pairs on a handle and stream of its own. */
struct worker {
    struct layer layers[THREAD_PAIRS];
    void *act[THREAD_PAIRS + 1]; /* act[0] the input, act[i + 1] the BN output of pair i */
    void *y;                     /* every pair's conv output */
    int grad_mode;               /* -1: the thread's default; 0/1: set via the stand-in libc10 */
    pthread_barrier_t *barrier;
};

static void set_grad_mode(int enabled)
{
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "standin_set_grad_enabled");
    if (set && enabled >= 0)
        set(enabled);
}

/* The barriers hold every conv pending at once: all handles exist first (cudnnCreate
 * flushes everything), all convs are issued before any BN, and all BNs before any thread
 * issues its next conv. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    cudnnHandle_t handle;
    cudaStream_t stream;
    set_grad_mode(w->grad_mode);
    CUDNN_OK(cudnnCreate(&handle));
    CUDA_OK(cudaStreamCreate(&stream));
    CUDNN_OK(cudnnSetStream(handle, stream));
    pthread_barrier_wait(w->barrier);
    for (int i = 0; i < THREAD_PAIRS; i++) {
        conv(handle, &w->layers[i], w->act[i], w->y);
        pthread_barrier_wait(w->barrier);
        bn(handle, &w->layers[i], w->y, w->act[i + 1]);
        pthread_barrier_wait(w->barrier);
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    CUDNN_OK(cudnnDestroy(handle));
    CUDA_OK(cudaStreamDestroy(stream));
    return NULL;
}

static void worker_init(struct worker *w, int grad_mode, pthread_barrier_t *barrier)
{
    for (int i = 0; i < THREAD_PAIRS; i++)
        layer_init(&w->layers[i]);
    w->act[0] = e2e_random_buffer(ACT_COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    for (int i = 1; i <= THREAD_PAIRS; i++)
        w->act[i] = act_alloc();
    w->y = act_alloc();
    w->grad_mode = grad_mode;
    w->barrier = barrier;
}

/* Outputs the worker's BN outputs and frees everything it had. */
static void worker_finish(struct run *r, struct worker *w)
{
    for (int i = 1; i <= THREAD_PAIRS; i++)
        emit(r, w->act[i], ACT_BYTES);
    for (int i = 0; i <= THREAD_PAIRS; i++)
        CUDA_OK(cudaFree(w->act[i]));
    CUDA_OK(cudaFree(w->y));
    for (int i = 0; i < THREAD_PAIRS; i++)
        layer_free(&w->layers[i]);
}

/* THREADS workers at once (or one after another with --serial); worker 0 with grad mode
 * grad0.  Outputs every worker's BN outputs in worker order. */
static void run_workers(struct run *r, int grad0)
{
    static struct worker w[THREADS];
    pthread_t tid[THREADS];
    pthread_barrier_t barrier;
    if (pthread_barrier_init(&barrier, NULL, r->serial ? 1 : THREADS) != 0)
        exit(2);
    for (int i = 0; i < THREADS; i++)
        worker_init(&w[i], i == 0 ? grad0 : -1, &barrier);
    for (int i = 0; i < THREADS; i++) {
        if (r->serial)
            worker_main(&w[i]);
        else if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0)
            exit(2);
    }
    for (int i = 0; i < THREADS && !r->serial; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < THREADS; i++)
        worker_finish(r, &w[i]);
    pthread_barrier_destroy(&barrier);
}

static void threads(struct run *r)
{
    run_workers(r, -1);
}

static void threads_grad_one(struct run *r)
{
    run_workers(r, 1);
}

/* --- counters and output ------------------------------------------------------------------ */

/* Returns the count of not-fused reason `name`, or UINT64_MAX when the shim has none. */
static uint64_t reason_count(const struct convbn_counters *c, const char *name)
{
    const char *(*text)(int) = (const char *(*)(int))dlsym(RTLD_DEFAULT, "convbn_reason_text");
    for (int i = 1; text && i < CONVBN_COUNTERS_REASONS; i++)
        if (text(i) && strcmp(text(i), name) == 0)
            return c->not_fusable[i];
    return UINT64_MAX;
}

/* Prints the shim's counters and compares them with e.  Returns 0 when they match (or the
 * shim is absent), 1 otherwise. */
static int check_counters(const char *name, const struct expected *e)
{
    int (*get)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!get)
        return 0;
    get(&c, sizeof c);
    uint64_t reason = e->reason ? reason_count(&c, e->reason) : 0;
    int match = c.pairs_seen == e->seen && c.pairs_fused == e->fused &&
                c.flushes == e->flushes && reason == e->reason_count;
    printf("hazards %s: pairs seen %llu, fused %llu, flushes %llu", name,
           (unsigned long long)c.pairs_seen, (unsigned long long)c.pairs_fused,
           (unsigned long long)c.flushes);
    if (e->reason)
        printf(", not fused (%s) %llu", e->reason, (unsigned long long)reason);
    printf("\n");
    if (!match)
        fprintf(stderr, "hazards %s: expected pairs seen %llu, fused %llu, flushes %llu, "
                        "not fused (%s) %llu\n", name, (unsigned long long)e->seen,
                (unsigned long long)e->fused, (unsigned long long)e->flushes,
                e->reason ? e->reason : "any", (unsigned long long)e->reason_count);
    return !match;
}

/* Closes the output; returns 0, or -1 on a write error. */
static int close_output(struct run *r)
{
    int status = r->out && fclose(r->out) != 0 ? -1 : 0;
    r->out = NULL;
    return status;
}

/* --- exit with a pending conv ------------------------------------------------------------- */

static struct run the_run;
static void *y_at_exit; /* the conv output still pending when exit() is called */

static void conv_then_exit(struct run *r)
{
    struct pair p;
    pair_init(&p);
    conv(r->handle, &p.l, p.x, p.y);
    y_at_exit = p.y;
    exit(0);
}

/* Registered before the first CUDA call, so it runs after the shim's exit handler
 * (registered at the shim's first intercepted call; atexit handlers run in reverse order):
 * the shim has run the pending conv, and the copy must see its result.  The counters are
 * checked before the copy, which would otherwise flush the conv itself. */
static void write_y_at_exit(void)
{
    if (!y_at_exit)
        return;
    int status = check_counters(the_run.scenario->name, &the_run.scenario->expect);
    emit(&the_run, y_at_exit, ACT_BYTES);
    status = close_output(&the_run) ? 2 : status;
    if (status != 0) {
        fflush(stdout);
        fflush(stderr);
        _exit(status);
    }
}

/* --- the scenario table, main ------------------------------------------------------------- */

static const struct scenario scenarios[] = {
    {"no-hazard", "fuse", "control: two chained pairs, both fused", chain, NULL,
     {2, 2, 0, NULL, 0}},
    {"kernel-reads-y", "fuse", "a host kernel copies y to a probe between conv and BN",
     between_kernel_reads_y, NULL, {0, 0, 1, NULL, 0}},
    {"kernel-writes-y", "fuse", "a host kernel scales y in place between conv and BN",
     between_kernel_writes_y, NULL, {0, 0, 1, NULL, 0}},
    {"kernel-adds-bias", "fuse", "a host kernel adds a per-channel bias to y in place",
     between_kernel_adds_bias, NULL, {0, 0, 1, NULL, 0}},
    {"add-tensor-full", "fuse", "cudnnAddTensor of a full-size tensor onto y",
     between_add_tensor_full, NULL, {0, 0, 1, NULL, 0}},
    {"add-tensor-scaled-bias", "fuse", "cudnnAddTensor of 0.5 * a per-channel bias onto y",
     between_add_tensor_scaled_bias, NULL, {0, 0, 1, NULL, 0}},
    {"op-tensor-bias", "fuse", "cudnnOpTensor adds a per-channel bias to y in place",
     between_op_tensor_bias, NULL, {0, 0, 1, NULL, 0}},
    {"memcpy-to-host", "fuse", "cudaMemcpy of y to the host between conv and BN",
     between_memcpy_to_host, NULL, {0, 0, 1, NULL, 0}},
    {"memcpy-async-to-host", "fuse", "cudaMemcpyAsync of y to the host on the conv's stream",
     between_memcpy_async_to_host, NULL, {0, 0, 1, NULL, 0}},
    {"alias-input", "fuse", "the BN output is the conv's input buffer", alias_input, NULL,
     {1, 0, 1, "alias", 1}},
    {"alias-partial", "fuse", "the BN output overlaps half of the conv's input", alias_partial,
     NULL, {1, 0, 1, "alias", 1}},
    {"bn-in-place", "fuse", "the BN writes its output over y (legal to fuse)", bn_in_place, NULL,
     {1, 1, 0, NULL, 0}},
    {"workspace-reuse", "fuse", "the conv's workspace is freed and reallocated as the BN output",
     workspace_reuse, NULL, {0, 0, 1, NULL, 0}},
    {"workspace-as-output", "fuse", "the BN output is the conv's workspace, not freed (fused)",
     workspace_as_output, NULL, {1, 1, 0, NULL, 0}},
    {"descriptors-destroyed", "fuse", "x/y/w/conv descriptors destroyed after the conv (fused)",
     descriptors_destroyed, NULL, {1, 1, 0, NULL, 0}},
    {"two-streams", "fuse or auto", "two streams interleaved on one handle (all fused)",
     two_streams, NULL, {4, 4, 0, NULL, 0}},
    {"threads", "fuse or auto", "four threads, own handles and streams (all fused)", threads,
     NULL, {THREADS * THREAD_PAIRS, THREADS * THREAD_PAIRS, 0, NULL, 0}},
    {"threads-grad-one", "auto", "four threads, grad mode on in the first only", threads_grad_one,
     NULL, {THREADS * THREAD_PAIRS, (THREADS - 1) * THREAD_PAIRS, 0, "grad-mode", THREAD_PAIRS}},
    {"grad-mode", "auto, grad mode on", "two chained pairs, none fused", chain, NULL,
     {2, 0, 0, "grad-mode", 2}},
    {"exit-pending", "fuse", "exit() right after the conv; y copied by an exit handler",
     conv_then_exit, write_y_at_exit, {0, 0, 1, NULL, 0}},
};

#define SCENARIO_COUNT (sizeof scenarios / sizeof scenarios[0])

static const struct scenario *find_scenario(const char *name)
{
    for (size_t i = 0; i < SCENARIO_COUNT; i++)
        if (!strcmp(scenarios[i].name, name))
            return &scenarios[i];
    return NULL;
}

/* Fills r from the arguments; returns the scenario, or NULL on a usage error. */
static const struct scenario *parse_args(int argc, char **argv, struct run *r, const char **out)
{
    const struct scenario *s = argc > 1 ? find_scenario(argv[1]) : NULL;
    for (int i = 2; s && i < argc; i++) {
        if (!strcmp(argv[i], "--serial"))
            r->serial = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            *out = argv[++i];
        else
            return NULL;
    }
    return s;
}

static void list(void)
{
    for (size_t i = 0; i < SCENARIO_COUNT; i++)
        printf("%-24s %-20s %s\n", scenarios[i].name, scenarios[i].mode, scenarios[i].what);
}

int main(int argc, char **argv)
{
    struct run *r = &the_run;
    const char *out_path = NULL;
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        list();
        return 0;
    }
    if (!(r->scenario = parse_args(argc, argv, r, &out_path))) {
        fprintf(stderr, "usage: hazards --list | hazards SCENARIO [--out FILE] [--serial]\n");
        return 2;
    }
    if (r->scenario->at_exit)
        atexit(r->scenario->at_exit);
    if (out_path && !(r->out = fopen(out_path, "wb"))) {
        perror(out_path);
        return 2;
    }
    CUDNN_OK(cudnnCreate(&r->handle));
    CUDA_OK(cudaStreamCreate(&r->stream));
    CUDNN_OK(cudnnSetStream(r->handle, r->stream));
    r->scenario->body(r);
    CUDNN_OK(cudnnDestroy(r->handle));
    CUDA_OK(cudaStreamDestroy(r->stream));
    if (close_output(r) != 0)
        return 2;
    return check_counters(r->scenario->name, &r->scenario->expect);
}
