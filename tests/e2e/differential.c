/* Differential test of conv -> inference-BN pairs against an independent naive reference.
 * For N seeded random cases (default 600) it builds a random geometry: 2-d or 3-d (4-d or
 * 5-d tensors), x, y and the BN output z each packed NCHW, packed NHWC or padded (extra
 * stride on C or H), filter format NCHW or NHWC, dense, grouped or depthwise (groups == C
 * == K), stride 1-2, dilation 1-2, padding 0-2, cross-correlation or true convolution,
 * FLOAT, HALF or BFLOAT16 data with FLOAT compute.  Then it issues what a framework would:
 * every buffer allocated and uploaded first, then one of three conv forms: (a)
 * cudnnConvolutionForward with alpha 1, 0.5 or 2; (b) cudnnConvolutionBiasActivationForward
 * with an identity activation, alpha2 = 0 and a 1xKx1x1 bias; (c) cudnnConvolutionForward
 * then cudnnAddTensor(1, bias, 1, y) (Caffe's conv bias); then
 * cudnnBatchNormalizationForwardInference (SPATIAL or SPATIAL_PERSISTENT, epsilon in [1e-5,
 * 1e-2], alpha 1 or 0.5, beta 0, z distinct from y or in place); then z is copied back.
 * Every z element is compared with a reference computed here in double from the host copies
 * of the inputs as stored: conv, + bias, then BN.  The bytes between z's elements (padded
 * strides) must keep the fill pattern.
 *
 * Tolerance, |z - ref| / max(1, |ref|), per type; u is the unit roundoff of the storage
 * type (2^-24, 2^-11, 2^-8).  Data: x in [-1, 1), w in +-1/sqrt(fan_in) (|conv| about 1/3),
 * conv bias, beta and mean in +-0.5, gamma and var in [0.5, 1.5], so s = gamma / sqrt(var +
 * eps) <= 2.2 and |ref| is a few units.  Without the shim, y is rounded to the storage type
 * (twice with AddTensor) and z once: error about u * (2 s |y| + |z|).  Fused, W' = W * alpha *
 * bn_alpha * s and b' are each rounded once more, to the storage type, the conv accumulates
 * in fp32 and z is rounded once: error about u * (|sum of x * W' * d| + |b'| + |z|) with d the
 * independent relative rounding errors of W' (a random walk, about u * |conv * s|).  Both are
 * a few u relative to max(1, |ref|); in fp32 the accumulation over fan_in <= 432 products
 * adds a few u more.  Worst errors measured over 40 seeds of 600 cases, with and without the
 * shim: float 5.7e-7 (10 u), half 1.6e-3 (3.3 u), bfloat16 1.2e-2 (3.1 u).  Bounds, with 2.5x
 * to 3.5x margin over those and far below what a wrong fold gives (dropping the conv alpha,
 * the conv bias or the BN alpha from the fold gives worst errors of 0.8 or more):
 *     float 2e-6 (34 u)    half 4e-3 (8 u)    bfloat16 3e-2 (8 u)
 *
 * usage: differential [--cases N] [--seed S] [--expect-fused F]
 * Under the shim (found by dlsym of convbn_get_counters) its counters must show N pairs
 * seen and F fused (default F = N: every case is eligible by construction).  Prints
 * "differential: N cases, F fused, worst error per type ..." and the number of cases that
 * exercised each feature on stdout.  Exit 0 on success,
 * 1 on a tolerance violation or a count mismatch (the failing case's geometry, seed and
 * worst element are printed on stderr), 2 on a cuDNN/CUDA error. */
#include <math.h>

#include "e2e_util.h"

#define DEFAULT_CASES 600
#define MAX_MACS 50000
#define FILL_BYTE 0xa5
#define AXES 5 /* N, C, D, H, W; D has extent 1 in 2-d cases */
#define TYPES 3

static const cudnnDataType_t types[TYPES] = {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF,
                                             CUDNN_DATA_BFLOAT16};
static const char *const type_names[TYPES] = {"float", "half", "bfloat16"};
static const double tolerance[TYPES] = {2e-6, 4e-3, 3e-2};

enum form { FORM_CONV, FORM_BIAS_ACT, FORM_ADD_TENSOR, FORMS };
static const char *const form_names[FORMS] = {"conv", "conv-bias-act", "conv+add-tensor"};

/* What the coverage line counts. */
enum feature {
    FEATURE_3D, FEATURE_GROUPED, FEATURE_DEPTHWISE, FEATURE_CONVOLUTION, FEATURE_DILATED,
    FEATURE_STRIDED, FEATURE_NHWC, FEATURE_PADDED, FEATURE_FILTER_NHWC, FEATURE_BIAS_ACT,
    FEATURE_ADD_TENSOR, FEATURE_IN_PLACE, FEATURE_Z_LAYOUT, FEATURE_PERSISTENT, FEATURES
};
static const char *const feature_names[FEATURES] = {
    "3-d", "grouped", "depthwise", "true-convolution", "dilated", "strided", "NHWC",
    "padded-strides", "NHWC-filter", "bias-activation", "add-tensor-bias", "in-place-BN",
    "z-layout-differs", "spatial-persistent"};

/* Packed channels-first or channels-last, with `extra` elements added to the stride of
 * pad_axis (1 = C, 3 = H; -1 for none). */
struct layout {
    int channels_last, pad_axis, extra;
};

/* Extents and element strides in N, C, D, H, W order; span is the elements spanned. */
struct tensor {
    int dims[AXES];
    long strides[AXES];
    size_t span;
};

struct geometry {
    int type_index, spatial, groups, in_place;
    struct tensor x, w, y, z, bias;
    struct layout x_layout, y_layout, z_layout;
    int pad[3], stride[3], dilation[3]; /* D, H, W */
    cudnnConvolutionMode_t mode;
    cudnnTensorFormat_t filter_format;
    cudnnBatchNormMode_t bn_mode;
    enum form form;
    cudnnConvolutionFwdAlgo_t algo;
    float alpha, bn_alpha;
    double eps;
};

/* Host copies of the inputs as stored, and of z (fill pattern, then the result). */
struct host {
    void *x, *w, *bias, *z;
    float *params; /* gamma, beta, mean, var: K floats each */
};

struct device {
    void *x, *w, *bias, *y, *z, *params[4], *workspace;
    size_t workspace_size;
};

struct descs {
    cudnnTensorDescriptor_t x, y, z, bias, bn;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t act;
};

/* The worst element of one case. */
struct worst {
    double err, got, ref;
    int at[AXES];
};

struct run {
    cudnnHandle_t handle;
    uint64_t seed;
    double worst[TYPES];
    int cases_of[TYPES], covered[FEATURES], failures;
};

static int pick(int lo, int hi)
{
    int v = lo + (int)e2e_uniform(0.0f, (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

static int chance(float p)
{
    return e2e_uniform(0.0f, 1.0f) < p;
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        exit(2);
    return p;
}

/* Seeds the e2e generator for case `index` (splitmix64 of seed and index). */
static void seed_case(uint64_t seed, int index)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(index + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    e2e_rng_state = (z ^ (z >> 31)) | 1;
}

static size_t elem_size(const struct geometry *g)
{
    return e2e_type_size(types[g->type_index]);
}

/* Returns the value stored at element i of base in type t. */
static double load(const void *base, cudnnDataType_t t, size_t i)
{
    if (t == CUDNN_DATA_FLOAT)
        return ((const float *)base)[i];
    uint16_t h = ((const uint16_t *)base)[i];
    if (t == CUDNN_DATA_BFLOAT16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double mag = exp == 0    ? ldexp(mant, -24)
                 : exp == 31 ? (mant ? NAN : INFINITY)
                             : ldexp(mant | 0x400, exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

static size_t offset_of(const struct tensor *t, const int *at)
{
    size_t off = 0;
    for (int a = 0; a < AXES; a++)
        off += (size_t)at[a] * (size_t)t->strides[a];
    return off;
}

/* Advances at[] through t's extents in logical order; returns 0 after the last point. */
static int next_point(const struct tensor *t, int *at)
{
    for (int a = AXES - 1; a >= 0; a--) {
        if (++at[a] < t->dims[a])
            return 1;
        at[a] = 0;
    }
    return 0;
}

static void set_strides(struct tensor *t, struct layout l)
{
    static const int first[AXES] = {4, 3, 2, 1, 0}, last[AXES] = {1, 4, 3, 2, 0};
    const int *order = l.channels_last ? last : first; /* innermost axis first */
    long running = 1;
    t->span = 1;
    for (int i = 0; i < AXES; i++) {
        int a = order[i];
        t->strides[a] = running + (a == l.pad_axis ? l.extra : 0);
        running = t->strides[a] * t->dims[a];
        t->span += (size_t)(t->dims[a] - 1) * (size_t)t->strides[a];
    }
}

static struct layout random_layout(void)
{
    struct layout l = {pick(0, 1), -1, 0};
    if (chance(0.3f)) {
        l.pad_axis = chance(0.5f) ? 1 : 3;
        l.extra = pick(1, 3);
    }
    return l;
}

/* Dense, grouped or depthwise channel counts: sets groups, C (x) and K (y). */
static void random_channels(struct geometry *g)
{
    int kind = pick(0, 3), c, k;
    if (kind == 3) {
        g->groups = c = k = pick(2, 16);
    } else if (kind == 2) {
        g->groups = pick(2, 6);
        c = g->groups * pick(1, 4);
        k = g->groups * pick(1, 4);
    } else {
        g->groups = 1;
        c = pick(1, 16);
        k = pick(1, 16);
    }
    g->x.dims[1] = c;
    g->y.dims[1] = g->w.dims[0] = k;
    g->w.dims[1] = c / g->groups;
}

/* Spatial axis a (0 D, 1 H, 2 W): filter, stride, dilation, padding, input and output extents. */
static void random_axis(struct geometry *g, int a, int max_in)
{
    int f = pick(1, 3);
    g->stride[a] = pick(1, 2);
    g->dilation[a] = pick(1, 2);
    g->pad[a] = pick(0, 2);
    int reach = g->dilation[a] * (f - 1) + 1, in = pick(1, max_in);
    if (in + 2 * g->pad[a] < reach)
        in = reach - 2 * g->pad[a];
    g->x.dims[2 + a] = in;
    g->w.dims[2 + a] = f;
    g->y.dims[2 + a] = (in + 2 * g->pad[a] - reach) / g->stride[a] + 1;
}

static void flat_axis(struct geometry *g, int a)
{
    g->x.dims[2 + a] = g->w.dims[2 + a] = g->y.dims[2 + a] = 1;
    g->stride[a] = g->dilation[a] = 1;
    g->pad[a] = 0;
}

static long macs_of(const struct geometry *g)
{
    long m = (long)g->y.dims[0] * g->y.dims[1] * g->w.dims[1];
    for (int a = 2; a < AXES; a++)
        m *= (long)g->y.dims[a] * g->w.dims[a];
    return m;
}

/* Shapes: 2-d or 3-d, redrawn until the conv costs at most MAX_MACS. */
static void random_shape(struct geometry *g)
{
    do {
        g->spatial = chance(0.3f) ? 3 : 2;
        g->x.dims[0] = g->y.dims[0] = pick(1, g->spatial == 3 ? 2 : 3);
        random_channels(g);
        for (int a = 0; a < 3; a++) {
            if (a == 0 && g->spatial == 2)
                flat_axis(g, a);
            else
                random_axis(g, a, g->spatial == 3 ? 6 : 14);
        }
    } while (macs_of(g) > MAX_MACS);
}

static void random_geometry(struct geometry *g)
{
    static const float alphas[] = {1.0f, 0.5f, 2.0f};
    memset(g, 0, sizeof *g);
    random_shape(g);
    g->type_index = pick(0, TYPES - 1);
    g->form = (enum form)pick(0, FORMS - 1);
    g->mode = chance(0.25f) ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION;
    g->filter_format = chance(0.5f) ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    g->bn_mode = chance(0.5f) ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT : CUDNN_BATCHNORM_SPATIAL;
    g->alpha = alphas[pick(0, 2)];
    g->bn_alpha = chance(0.5f) ? 1.0f : 0.5f;
    g->eps = 1e-5 * pow(1e3, e2e_uniform(0.0f, 1.0f)); /* log-uniform in [1e-5, 1e-2] */
    g->in_place = chance(0.2f);
    g->z = g->y;
    g->x_layout = random_layout();
    g->y_layout = random_layout();
    g->z_layout = g->in_place || chance(0.5f) ? g->y_layout : random_layout();
    set_strides(&g->x, g->x_layout);
    set_strides(&g->y, g->y_layout);
    set_strides(&g->z, g->z_layout);
    set_strides(&g->w, (struct layout){g->filter_format == CUDNN_TENSOR_NHWC, -1, 0});
    g->bias.dims[0] = 1;
    g->bias.dims[1] = g->y.dims[1];
    for (int a = 2; a < AXES; a++)
        g->bias.dims[a] = 1;
    set_strides(&g->bias, (struct layout){0, -1, 0});
}

/* Returns a host buffer of count random values in [lo, hi) stored as type t. */
static void *random_host(size_t count, cudnnDataType_t t, float lo, float hi)
{
    void *h = xmalloc(count * e2e_type_size(t));
    for (size_t i = 0; i < count; i++)
        e2e_store(h, t, i, e2e_uniform(lo, hi));
    return h;
}

static void make_host(const struct geometry *g, struct host *h)
{
    cudnnDataType_t t = types[g->type_index];
    int k = g->y.dims[1];
    float w_range = 1.0f / sqrtf((float)(g->w.span / (size_t)k)); /* w is packed: span = K * fan_in */
    h->x = random_host(g->x.span, t, -1.0f, 1.0f);
    h->w = random_host(g->w.span, t, -w_range, w_range);
    h->bias = random_host((size_t)k, t, -0.5f, 0.5f);
    h->params = xmalloc(4 * (size_t)k * sizeof(float));
    for (int i = 0; i < k; i++) {
        h->params[i] = e2e_uniform(0.5f, 1.5f);
        h->params[k + i] = e2e_uniform(-0.5f, 0.5f);
        h->params[2 * k + i] = e2e_uniform(-0.5f, 0.5f);
        h->params[3 * k + i] = e2e_uniform(0.5f, 1.5f);
    }
    h->z = xmalloc(g->z.span * elem_size(g));
    memset(h->z, FILL_BYTE, g->z.span * elem_size(g));
}

static void free_host(struct host *h)
{
    free(h->x);
    free(h->w);
    free(h->bias);
    free(h->params);
    free(h->z);
}

static void *upload(const void *host, size_t bytes)
{
    void *dev = NULL;
    CUDA_OK(cudaMalloc(&dev, bytes));
    CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    return dev;
}

/* Every buffer is allocated and written before the conv, as in a framework: a copy between
 * the conv and the BN would flush the pending conv (DESIGN.md section 5). */
static void make_device(const struct geometry *g, const struct host *h, struct device *m)
{
    size_t es = elem_size(g), k = (size_t)g->y.dims[1];
    m->x = upload(h->x, g->x.span * es);
    m->w = upload(h->w, g->w.span * es);
    m->bias = upload(h->bias, k * es);
    for (size_t i = 0; i < 4; i++)
        m->params[i] = upload(h->params + i * k, k * sizeof(float));
    void *fill = xmalloc(g->y.span * es);
    memset(fill, FILL_BYTE, g->y.span * es);
    m->y = upload(fill, g->y.span * es);
    free(fill);
    m->z = g->in_place ? m->y : upload(h->z, g->z.span * es);
}

static void free_device(struct device *m)
{
    void *all[] = {m->x, m->w, m->bias, m->y, m->params[0], m->params[1], m->params[2],
                   m->params[3], m->workspace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CUDA_OK(cudaFree(all[i]));
    if (m->z != m->y)
        CUDA_OK(cudaFree(m->z));
}

/* Dims and strides of t as a cuDNN descriptor sees them (no D axis in 2-d cases). */
static int nd_dims(const struct geometry *g, const struct tensor *t, int *dims, int *strides)
{
    int nb = 0;
    for (int a = 0; a < AXES; a++) {
        if (a == 2 && g->spatial == 2)
            continue;
        dims[nb] = t->dims[a];
        strides[nb++] = (int)t->strides[a];
    }
    return nb;
}

/* Per-axis values (D, H, W) of the descriptor's spatial axes. */
static int spatial_values(const struct geometry *g, const int *per_axis, int *out)
{
    int n = 0;
    for (int a = 3 - g->spatial; a < 3; a++)
        out[n++] = per_axis[a];
    return n;
}

static cudnnTensorDescriptor_t tensor_desc(const struct geometry *g, const struct tensor *t)
{
    int dims[AXES], strides[AXES], nb = nd_dims(g, t, dims, strides);
    cudnnTensorDescriptor_t d;
    CUDNN_OK(cudnnCreateTensorDescriptor(&d));
    CUDNN_OK(cudnnSetTensorNdDescriptor(d, types[g->type_index], nb, dims, strides));
    return d;
}

static void make_conv_descs(const struct geometry *g, struct descs *d)
{
    int dims[AXES], strides[AXES], nb = nd_dims(g, &g->w, dims, strides);
    int pad[3], stride[3], dilation[3], n = spatial_values(g, g->pad, pad);
    spatial_values(g, g->stride, stride);
    spatial_values(g, g->dilation, dilation);
    CUDNN_OK(cudnnCreateFilterDescriptor(&d->w));
    CUDNN_OK(cudnnSetFilterNdDescriptor(d->w, types[g->type_index], g->filter_format, nb, dims));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&d->conv));
    CUDNN_OK(cudnnSetConvolutionNdDescriptor(d->conv, n, pad, stride, dilation, g->mode,
                                             CUDNN_DATA_FLOAT));
    CUDNN_OK(cudnnSetConvolutionGroupCount(d->conv, g->groups));
    CUDNN_OK(cudnnCreateActivationDescriptor(&d->act));
    CUDNN_OK(cudnnSetActivationDescriptor(d->act, CUDNN_ACTIVATION_IDENTITY,
                                          CUDNN_NOT_PROPAGATE_NAN, 0.0));
}

static void make_descs(const struct geometry *g, struct descs *d)
{
    d->x = tensor_desc(g, &g->x);
    d->y = tensor_desc(g, &g->y);
    d->z = tensor_desc(g, &g->z);
    d->bias = tensor_desc(g, &g->bias);
    CUDNN_OK(cudnnCreateTensorDescriptor(&d->bn)); /* set between the conv and the BN */
    make_conv_descs(g, d);
}

static void free_descs(struct descs *d)
{
    cudnnTensorDescriptor_t tensors[] = {d->x, d->y, d->z, d->bias, d->bn};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        CUDNN_OK(cudnnDestroyTensorDescriptor(tensors[i]));
    CUDNN_OK(cudnnDestroyFilterDescriptor(d->w));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(d->conv));
    CUDNN_OK(cudnnDestroyActivationDescriptor(d->act));
}

/* IMPLICIT_PRECOMP_GEMM for bias-activation (the one algorithm cuDNN documents for an
 * identity activation), else one of the algorithms the heuristics call supported; allocates
 * the workspace it needs. */
static void choose_algo(cudnnHandle_t handle, struct geometry *g, const struct descs *d,
                        struct device *m)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, usable[CUDNN_CONVOLUTION_FWD_ALGO_COUNT], count = 0;
    g->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    if (g->form != FORM_BIAS_ACT) {
        CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(handle, d->x, d->w, d->conv, d->y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS)
                usable[count++] = i;
        if (count == 0)
            exit(2);
        g->algo = perf[usable[pick(0, count - 1)]].algo;
    }
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(handle, d->x, d->w, d->conv, d->y, g->algo,
                                                     &m->workspace_size));
    if (m->workspace_size)
        CUDA_OK(cudaMalloc(&m->workspace, m->workspace_size));
}

static void issue_conv(cudnnHandle_t handle, const struct geometry *g, const struct descs *d,
                       struct device *m)
{
    const float zero = 0.0f, one = 1.0f;
    if (g->form == FORM_BIAS_ACT) {
        CUDNN_OK(cudnnConvolutionBiasActivationForward(
            handle, &g->alpha, d->x, m->x, d->w, m->w, d->conv, g->algo, m->workspace,
            m->workspace_size, &zero, d->y, m->y, d->bias, m->bias, d->act, d->y, m->y));
        return;
    }
    CUDNN_OK(cudnnConvolutionForward(handle, &g->alpha, d->x, m->x, d->w, m->w, d->conv, g->algo,
                                     m->workspace, m->workspace_size, &zero, d->y, m->y));
    if (g->form == FORM_ADD_TENSOR)
        CUDNN_OK(cudnnAddTensor(handle, &one, d->bias, m->bias, &one, d->y, m->y));
}

/* As PyTorch's legacy path does, the BN parameter descriptor is derived after the conv. */
static void issue_bn(cudnnHandle_t handle, const struct geometry *g, const struct descs *d,
                     struct device *m)
{
    const float zero = 0.0f;
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(d->bn, d->y, g->bn_mode));
    CUDNN_OK(cudnnBatchNormalizationForwardInference(
        handle, g->bn_mode, &g->bn_alpha, &zero, d->y, m->y, d->z, m->z, d->bn, m->params[0],
        m->params[1], m->params[2], m->params[3], g->eps));
}

/* Fills the x and w indices that output point o reads through input channel c (within its
 * group) and tap (flat over D, H, W); returns 0 when the tap falls in the padding. */
static int tap_indices(const struct geometry *g, const int *o, int c, int tap, int *xi, int *wi)
{
    xi[0] = o[0];
    xi[1] = o[1] / (g->y.dims[1] / g->groups) * g->w.dims[1] + c;
    wi[0] = o[1];
    wi[1] = c;
    for (int a = 2; a >= 0; a--) {
        int f = g->w.dims[2 + a], t = tap % f;
        int i = o[2 + a] * g->stride[a] - g->pad[a] + t * g->dilation[a];
        tap /= f;
        if (i < 0 || i >= g->x.dims[2 + a])
            return 0;
        xi[2 + a] = i;
        wi[2 + a] = g->mode == CUDNN_CONVOLUTION ? f - 1 - t : t; /* true convolution mirrors w */
    }
    return 1;
}

static double conv_at(const struct geometry *g, const struct host *h, const int *o)
{
    cudnnDataType_t t = types[g->type_index];
    int taps = g->w.dims[2] * g->w.dims[3] * g->w.dims[4], xi[AXES], wi[AXES];
    double sum = 0.0;
    for (int c = 0; c < g->w.dims[1]; c++)
        for (int tap = 0; tap < taps; tap++)
            if (tap_indices(g, o, c, tap, xi, wi))
                sum += load(h->x, t, offset_of(&g->x, xi)) * load(h->w, t, offset_of(&g->w, wi));
    return sum;
}

/* z at output point o: alpha * conv + bias, then inference BN, in double. */
static double reference(const struct geometry *g, const struct host *h, const int *o)
{
    int k = o[1], kk = g->y.dims[1];
    const float *gamma = h->params, *beta = gamma + kk, *mean = beta + kk, *var = mean + kk;
    double y = g->alpha * conv_at(g, h, o);
    if (g->form != FORM_CONV)
        y += load(h->bias, types[g->type_index], (size_t)k);
    double s = gamma[k] / sqrt((double)var[k] + g->eps);
    return g->bn_alpha * (s * (y - mean[k]) + beta[k]);
}

/* Compares every z element (h->z holds the result) with the reference. */
static struct worst compare(const struct geometry *g, const struct host *h)
{
    struct worst w = {.err = -1.0};
    int at[AXES] = {0};
    do {
        double ref = reference(g, h, at), got = load(h->z, types[g->type_index], offset_of(&g->z, at));
        double err = isnan(got) ? INFINITY : fabs(got - ref) / fmax(1.0, fabs(ref));
        if (err > w.err) {
            w = (struct worst){err, got, ref, {0}};
            memcpy(w.at, at, sizeof at);
        }
    } while (next_point(&g->z, at));
    return w;
}

/* Returns how many bytes of z between its elements lost the fill pattern. */
static size_t stray_bytes(const struct geometry *g, const struct host *h)
{
    size_t es = elem_size(g), stray = 0;
    const unsigned char *bytes = h->z;
    unsigned char *element = calloc(g->z.span, 1);
    int at[AXES] = {0};
    if (!element)
        exit(2);
    do
        element[offset_of(&g->z, at)] = 1;
    while (next_point(&g->z, at));
    for (size_t i = 0; i < g->z.span * es; i++)
        stray += !element[i / es] && bytes[i] != FILL_BYTE;
    free(element);
    return stray;
}

static void print_list(const char *sep, const int *v, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? sep : "", v[i]);
}

static void print_tensor(const char *name, const struct geometry *g, const struct tensor *t)
{
    int dims[AXES], strides[AXES], nb = nd_dims(g, t, dims, strides);
    fprintf(stderr, " %s=", name);
    print_list("x", dims, nb);
    fprintf(stderr, " strides=");
    print_list(",", strides, nb);
}

static void print_axes(const char *name, const struct geometry *g, const int *per_axis)
{
    int v[3], n = spatial_values(g, per_axis, v);
    fprintf(stderr, " %s=", name);
    print_list(",", v, n);
}

/* Prints everything needed to reproduce case `index` of seed `seed`. */
static void describe(uint64_t seed, int index, const struct geometry *g)
{
    fprintf(stderr, "differential: case %d of --seed %llu: %s %dd %s %s groups=%d", index,
            (unsigned long long)seed, type_names[g->type_index], g->spatial, form_names[g->form],
            g->mode == CUDNN_CONVOLUTION ? "convolution" : "cross-correlation", g->groups);
    print_tensor("x", g, &g->x);
    print_tensor("w", g, &g->w);
    fprintf(stderr, " (%s)", g->filter_format == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW");
    print_tensor("y", g, &g->y);
    print_tensor("z", g, &g->z);
    print_axes(g->in_place ? "(in place) pad" : "pad", g, g->pad);
    print_axes("stride", g, g->stride);
    print_axes("dilation", g, g->dilation);
    fprintf(stderr, " algo=%d alpha=%g bn=%s bn_alpha=%g eps=%.9g\n", (int)g->algo, g->alpha,
            g->bn_mode == CUDNN_BATCHNORM_SPATIAL ? "spatial" : "spatial-persistent",
            g->bn_alpha, g->eps);
}

static int any_axis_above_one(const int *per_axis)
{
    return per_axis[0] > 1 || per_axis[1] > 1 || per_axis[2] > 1;
}

static void tally(struct run *r, const struct geometry *g)
{
    const struct layout *l[] = {&g->x_layout, &g->y_layout, &g->z_layout};
    int depthwise = g->groups > 1 && g->groups == g->x.dims[1] && g->groups == g->y.dims[1];
    int has[FEATURES] = {
        [FEATURE_3D] = g->spatial == 3,
        [FEATURE_GROUPED] = g->groups > 1 && !depthwise,
        [FEATURE_DEPTHWISE] = depthwise,
        [FEATURE_CONVOLUTION] = g->mode == CUDNN_CONVOLUTION,
        [FEATURE_DILATED] = any_axis_above_one(g->dilation),
        [FEATURE_STRIDED] = any_axis_above_one(g->stride),
        [FEATURE_FILTER_NHWC] = g->filter_format == CUDNN_TENSOR_NHWC,
        [FEATURE_BIAS_ACT] = g->form == FORM_BIAS_ACT,
        [FEATURE_ADD_TENSOR] = g->form == FORM_ADD_TENSOR,
        [FEATURE_IN_PLACE] = g->in_place,
        [FEATURE_Z_LAYOUT] = memcmp(&g->y_layout, &g->z_layout, sizeof g->y_layout) != 0,
        [FEATURE_PERSISTENT] = g->bn_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT};
    for (int i = 0; i < 3; i++) {
        has[FEATURE_NHWC] |= l[i]->channels_last;
        has[FEATURE_PADDED] |= l[i]->pad_axis >= 0;
    }
    for (int f = 0; f < FEATURES; f++)
        r->covered[f] += has[f];
}

/* Records the case's worst error; prints the case and counts a failure when it is out of
 * tolerance or wrote between z's elements. */
static void check_case(struct run *r, int index, const struct geometry *g, const struct host *h)
{
    struct worst w = compare(g, h);
    size_t stray = stray_bytes(g, h);
    int ti = g->type_index;
    r->worst[ti] = fmax(r->worst[ti], w.err);
    r->cases_of[ti]++;
    tally(r, g);
    if (w.err <= tolerance[ti] && stray == 0)
        return;
    r->failures++;
    describe(r->seed, index, g);
    fprintf(stderr, "differential:   worst at n,k,d,h,w=%d,%d,%d,%d,%d: got %.9g, reference %.9g, "
                    "error %.3g (tolerance %g); %zu bytes written between z's elements\n",
            w.at[0], w.at[1], w.at[2], w.at[3], w.at[4], w.got, w.ref, w.err, tolerance[ti], stray);
}

static void run_case(struct run *r, int index)
{
    struct geometry g;
    struct host h;
    struct device m = {0};
    struct descs d;
    seed_case(r->seed, index);
    random_geometry(&g);
    make_host(&g, &h);
    make_device(&g, &h, &m);
    make_descs(&g, &d);
    choose_algo(r->handle, &g, &d, &m);
    issue_conv(r->handle, &g, &d, &m);
    issue_bn(r->handle, &g, &d, &m);
    CUDA_OK(cudaMemcpy(h.z, m.z, g.z.span * elem_size(&g), cudaMemcpyDeviceToHost));
    check_case(r, index, &g, &h);
    free_descs(&d);
    free_device(&m);
    free_host(&h);
}

/* Prints the summary line; under the shim returns 1 unless it saw every pair and fused
 * expect_fused of them. */
static int report(const struct run *r, int cases, long expect_fused)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    int bad = 0;
    if (counters) {
        counters(&c, sizeof c);
        bad = c.pairs_seen != (uint64_t)cases || c.pairs_fused != (uint64_t)expect_fused;
        printf("differential: %d cases, %llu fused, worst error per type", cases,
               (unsigned long long)c.pairs_fused);
    } else {
        printf("differential: %d cases, without the shim, worst error per type", cases);
    }
    for (int t = 0; t < TYPES; t++)
        printf(" %s %.3g (tolerance %g, %d cases)", type_names[t], r->worst[t], tolerance[t],
               r->cases_of[t]);
    printf("\ndifferential: coverage (cases):");
    for (int f = 0; f < FEATURES; f++)
        printf(" %s %d", feature_names[f], r->covered[f]);
    printf("\n");
    if (bad)
        fprintf(stderr, "differential: shim saw %llu pairs and fused %llu, expected %d and %ld\n",
                (unsigned long long)c.pairs_seen, (unsigned long long)c.pairs_fused, cases,
                expect_fused);
    return bad;
}

static int parse_args(int argc, char **argv, int *cases, uint64_t *seed, long *expect_fused)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (!strcmp(opt, "--cases"))
            *cases = atoi(val);
        else if (!strcmp(opt, "--seed"))
            *seed = strtoull(val, NULL, 10);
        else if (!strcmp(opt, "--expect-fused"))
            *expect_fused = strtol(val, NULL, 10);
        else
            return -1;
    }
    return (argc % 2) && *cases > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct run r = {.seed = 1};
    int cases = DEFAULT_CASES;
    long expect_fused = -1;
    cudaStream_t stream;
    if (parse_args(argc, argv, &cases, &r.seed, &expect_fused) != 0) {
        fprintf(stderr, "usage: differential [--cases N] [--seed S] [--expect-fused F]\n");
        return 2;
    }
    CUDNN_OK(cudnnCreate(&r.handle));
    CUDA_OK(cudaStreamCreate(&stream));
    CUDNN_OK(cudnnSetStream(r.handle, stream));
    for (int i = 0; i < cases; i++)
        run_case(&r, i);
    CUDA_OK(cudaStreamSynchronize(stream));
    int bad_counts = report(&r, cases, expect_fused < 0 ? cases : expect_fused);
    CUDNN_OK(cudnnDestroy(r.handle));
    CUDA_OK(cudaStreamDestroy(stream));
    return r.failures || bad_counts ? 1 : 0;
}
