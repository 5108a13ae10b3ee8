/* Check suite for the convolution compute and algorithm functions of the cuDNN emulation
 * (tests/emu/cudnn_conv.c, cudnn_conv_algo.c).  Every compute function is compared with a
 * naive loop written here (plain nested loops over n, k, c, d, h, w and the filter taps,
 * addressing through ref_tensor.h's stride arithmetic, accumulation in double) on seeded
 * random shapes that rotate through: FLOAT/HALF/BFLOAT16, 2-d and 3-d, NCHW/NHWC/padded
 * strides for x and y independently, KCRS/KRSC filters, groups and depthwise, dilation,
 * stride, padding, convolution vs cross-correlation, alpha/beta (beta = 0 over NaN), every
 * algorithm id with exactly the workspace it asks for.  Inputs are k/32 values (|k| <= 64)
 * and alpha, beta are short binary fractions, so every fp32 partial sum is exact at these
 * sizes and the only rounding is the store of the result: each element must be within half
 * an ulp of the result type (round to nearest) of the exact double result, plus a 2^-20
 * relative slack.  Gaps of padded tensors must stay untouched.  The rest checks workspace sizes and use,
 * the algorithm queries and the status codes of bad arguments. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "ref_tensor.h"
#include "support/run_suite.h"

#define FORWARD_CASES 144
#define BIAS_ACTIVATION_CASES 48
#define BACKWARD_DATA_CASES 60
#define BACKWARD_FILTER_CASES 60
#define BACKWARD_BIAS_CASES 24

/* One convolution; spatial arrays are d, h, w (d trivial for 4-d tensors). */
struct conv_case {
    cudnnDataType_t type, compute;
    int nb_dims;
    int batch, groups, in_per_group, out_per_group;
    int in[3], filter[3], pad[3], stride[3], dilation[3], out[3];
    cudnnConvolutionMode_t mode;
    enum ref_layout x_layout, y_layout;
    cudnnTensorFormat_t filter_format;
};

/* A convolution ready to run: x (or dx), w (or dw), y (or dy), all descriptors. */
struct setup {
    struct conv_case cc;
    cudnnHandle_t handle;
    struct ref_tensor x, w, y;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv;
    uint64_t rng;
};

static const float alphas[4] = {1.0f, 0.5f, -1.25f, 2.0f};

/* Half an ulp of the stored type at v: the error bound of one round-to-nearest store. */
static double half_ulp(cudnnDataType_t type, double v)
{
    int significant = type == CUDNN_DATA_FLOAT ? 24 : type == CUDNN_DATA_HALF ? 11 : 8;
    int min_exponent = type == CUDNN_DATA_HALF ? -14 : -126;
    int exponent;
    frexp(v, &exponent);
    exponent = v == 0.0 || exponent - 1 < min_exponent ? min_exponent : exponent - 1;
    return ldexp(1.0, exponent - significant);
}

/* Asserts that every element of t is want[ref_index(...)] rounded to t's type (see the
 * file comment for the bound) and that no gap was written. */
static void expect_tensor(const struct ref_tensor *t, const double *want, const char *what)
{
    REF_FOR_EACH(t, n, c, d, h, w) {
        double got = ref_get(t, n, c, d, h, w), expected = want[ref_index(t, n, c, d, h, w)];
        double bound = half_ulp(t->type, expected) + ldexp(1.0 + fabs(expected), -20);
        ck_assert_msg(fabs(got - expected) <= bound, "%s[%d,%d,%d,%d,%d] = %.9g, want %.9g",
                      what, n, c, d, h, w, got, expected);
    }
    ck_assert_msg(ref_gaps_intact(t), "%s: a gap between elements was written", what);
}

static uint64_t seed_for(int i, uint64_t salt)
{
    return 0x9e3779b97f4a7c15ull ^ ((uint64_t)(i + 1) * 0x100000001b3ull) ^ salt;
}

static int output_size(const struct conv_case *cc, int a)
{
    int extent = (cc->filter[a] - 1) * cc->dilation[a] + 1;
    return 1 + (cc->in[a] + 2 * cc->pad[a] - extent) / cc->stride[a];
}

static void random_axis(struct conv_case *cc, int a, uint64_t *rng, int max_extra)
{
    cc->filter[a] = ref_int(rng, 1, 3);
    cc->dilation[a] = ref_int(rng, 1, 2);
    cc->pad[a] = ref_int(rng, 0, 2);
    cc->stride[a] = ref_int(rng, 1, 3);
    int extent = (cc->filter[a] - 1) * cc->dilation[a] + 1;
    cc->in[a] = ref_int(rng, extent > 2 * cc->pad[a] ? extent - 2 * cc->pad[a] : 1,
                        extent + max_extra);
    cc->out[a] = output_size(cc, a);
}

static void random_groups(struct conv_case *cc, int i, uint64_t *rng)
{
    switch (i % 6) {
    case 2:
    case 3:
        cc->groups = ref_int(rng, 2, 3);
        break;
    case 4: /* depthwise */
        cc->groups = ref_int(rng, 2, 6);
        cc->in_per_group = 1;
        cc->out_per_group = ref_int(rng, 1, 2);
        return;
    default:
        cc->groups = 1;
    }
    cc->in_per_group = ref_int(rng, 1, 3);
    cc->out_per_group = ref_int(rng, 1, 3);
}

/* Case i: the features rotate with i so that every combination class is covered; sizes
 * are random. */
static void random_case(struct conv_case *cc, int i, uint64_t *rng)
{
    static const cudnnDataType_t types[3] = {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, CUDNN_DATA_BFLOAT16};
    memset(cc, 0, sizeof *cc);
    cc->type = types[i % 3];
    cc->compute = cc->type == CUDNN_DATA_HALF && (i / 3) % 2 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cc->nb_dims = i % 4 == 3 ? 5 : 4;
    cc->x_layout = (enum ref_layout)((i / 4) % REF_LAYOUTS);
    cc->y_layout = (enum ref_layout)((i / 16 + i) % REF_LAYOUTS);
    cc->filter_format = (i / 5) % 2 ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cc->mode = (i / 7) % 2 ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION;
    cc->batch = ref_int(rng, 1, 2);
    random_groups(cc, i, rng);
    cc->in[0] = cc->filter[0] = cc->out[0] = 1;
    cc->pad[0] = 0;
    cc->stride[0] = cc->dilation[0] = 1;
    if (cc->nb_dims == 5)
        random_axis(cc, 0, rng, 2);
    random_axis(cc, 1, rng, cc->nb_dims == 5 ? 3 : 6);
    random_axis(cc, 2, rng, cc->nb_dims == 5 ? 3 : 6);
}

static void describe_filter(struct setup *s)
{
    const struct conv_case *cc = &s->cc;
    int dims[5] = {cc->groups * cc->out_per_group, cc->in_per_group, cc->filter[0],
                   cc->filter[1], cc->filter[2]};
    ck_assert_int_eq(cudnnCreateFilterDescriptor(&s->w_desc), CUDNN_STATUS_SUCCESS);
    if (cc->nb_dims == 4)
        ck_assert_int_eq(cudnnSetFilter4dDescriptor(s->w_desc, cc->type, cc->filter_format, dims[0],
                                                    dims[1], dims[3], dims[4]),
                         CUDNN_STATUS_SUCCESS);
    else
        ck_assert_int_eq(cudnnSetFilterNdDescriptor(s->w_desc, cc->type, cc->filter_format, 5, dims),
                         CUDNN_STATUS_SUCCESS);
}

static void describe_convolution(struct setup *s)
{
    const struct conv_case *cc = &s->cc;
    ck_assert_int_eq(cudnnCreateConvolutionDescriptor(&s->conv), CUDNN_STATUS_SUCCESS);
    if (cc->nb_dims == 4)
        ck_assert_int_eq(cudnnSetConvolution2dDescriptor(s->conv, cc->pad[1], cc->pad[2],
                                                         cc->stride[1], cc->stride[2],
                                                         cc->dilation[1], cc->dilation[2],
                                                         cc->mode, cc->compute),
                         CUDNN_STATUS_SUCCESS);
    else
        ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(s->conv, 3, cc->pad, cc->stride,
                                                         cc->dilation, cc->mode, cc->compute),
                         CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(s->conv, cc->groups), CUDNN_STATUS_SUCCESS);
}

/* Allocates x, w, y (every element NaN until filled) and every descriptor for cc. */
static void setup_init(struct setup *s, const struct conv_case *cc, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->cc = *cc;
    s->rng = seed;
    int x_dims[5] = {cc->batch, cc->groups * cc->in_per_group, cc->in[0], cc->in[1], cc->in[2]};
    int w_dims[5] = {cc->groups * cc->out_per_group, cc->in_per_group, cc->filter[0],
                     cc->filter[1], cc->filter[2]};
    int y_dims[5] = {cc->batch, cc->groups * cc->out_per_group, cc->out[0], cc->out[1], cc->out[2]};
    enum ref_layout w_layout = cc->filter_format == CUDNN_TENSOR_NHWC ? REF_NHWC : REF_NCHW;
    ck_assert_int_eq(cudnnCreate(&s->handle), CUDNN_STATUS_SUCCESS);
    ref_tensor_init(&s->x, cc->type, cc->nb_dims, x_dims, cc->x_layout, &s->rng);
    ref_tensor_init(&s->w, cc->type, cc->nb_dims, w_dims, w_layout, &s->rng);
    ref_tensor_init(&s->y, cc->type, cc->nb_dims, y_dims, cc->y_layout, &s->rng);
    describe_filter(s);
    describe_convolution(s);
}

static void setup_free(struct setup *s)
{
    ref_tensor_free(&s->x);
    ref_tensor_free(&s->w);
    ref_tensor_free(&s->y);
    cudnnDestroyFilterDescriptor(s->w_desc);
    cudnnDestroyConvolutionDescriptor(s->conv);
    cudnnDestroy(s->handle);
}

/* Stored filter index of logical tap t on axis a (true convolution mirrors the filter). */
static int tap(const struct conv_case *cc, int a, int t)
{
    return cc->mode == CUDNN_CONVOLUTION ? cc->filter[a] - 1 - t : t;
}

/* conv(x, w) at output point (n, k, od, oh, ow), straight from the definition. */
static double reference_point(const struct setup *s, int n, int k, int od, int oh, int ow)
{
    const struct conv_case *cc = &s->cc;
    int first_channel = (k / cc->out_per_group) * cc->in_per_group;
    double sum = 0.0;
    for (int c = 0; c < cc->in_per_group; c++)
        for (int r = 0; r < cc->filter[0]; r++)
            for (int u = 0; u < cc->filter[1]; u++)
                for (int v = 0; v < cc->filter[2]; v++) {
                    int id = od * cc->stride[0] - cc->pad[0] + r * cc->dilation[0];
                    int ih = oh * cc->stride[1] - cc->pad[1] + u * cc->dilation[1];
                    int iw = ow * cc->stride[2] - cc->pad[2] + v * cc->dilation[2];
                    if (id < 0 || id >= cc->in[0] || ih < 0 || ih >= cc->in[1] || iw < 0 ||
                        iw >= cc->in[2])
                        continue;
                    sum += ref_get(&s->x, n, first_channel + c, id, ih, iw) *
                           ref_get(&s->w, k, c, tap(cc, 0, r), tap(cc, 1, u), tap(cc, 2, v));
                }
    return sum;
}

/* conv(x, w) at every point of y, indexed by ref_index(y, ...); caller frees. */
static double *reference_forward(const struct setup *s)
{
    double *out = calloc(ref_count(&s->y), sizeof *out);
    ck_assert_ptr_nonnull(out);
    REF_FOR_EACH(&s->y, n, k, d, h, w)
        out[ref_index(&s->y, n, k, d, h, w)] = reference_point(s, n, k, d, h, w);
    return out;
}

/* Turns results into alpha * result + beta * prior (prior: t's current elements). */
static void blend(const struct ref_tensor *t, double *values, float alpha, float beta)
{
    REF_FOR_EACH(t, n, c, d, h, w) {
        size_t i = ref_index(t, n, c, d, h, w);
        values[i] = alpha * values[i] + (beta != 0.0f ? beta * ref_get(t, n, c, d, h, w) : 0.0);
    }
}

/* Beta for case i, with the destination's prior contents to match: NaN when beta is 0
 * (it must not be read), random otherwise. */
static float choose_beta(int i, struct ref_tensor *dst, uint64_t *rng)
{
    static const float betas[5] = {0.0f, 0.0f, 1.0f, 0.75f, -0.5f};
    float beta = betas[i % 5];
    if (beta == 0.0f && i % 10 == 0)
        ref_fill_nan(dst);
    else
        ref_fill(dst, rng, -64, 64);
    return beta;
}

/* Exactly the workspace the forward algorithm asks for (NULL when it asks for none). */
static void *forward_workspace(const struct setup *s, int algo, size_t *bytes)
{
    ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(s->handle, s->x.desc, s->w_desc,
                                                             s->conv, s->y.desc,
                                                             (cudnnConvolutionFwdAlgo_t)algo, bytes),
                     CUDNN_STATUS_SUCCESS);
    return *bytes ? malloc(*bytes) : NULL;
}

START_TEST(forward_random)
{
    struct conv_case cc;
    struct setup s;
    uint64_t rng = seed_for(_i, 1);
    random_case(&cc, _i, &rng);
    setup_init(&s, &cc, rng);
    ref_fill(&s.x, &s.rng, -64, 64);
    ref_fill(&s.w, &s.rng, -64, 64);
    float alpha = alphas[_i % 4], beta = choose_beta(_i, &s.y, &s.rng);
    int algo = ref_int(&s.rng, 0, CUDNN_CONVOLUTION_FWD_ALGO_COUNT - 1);
    size_t ws_bytes;
    void *ws = forward_workspace(&s, algo, &ws_bytes);
    double *want = reference_forward(&s);
    blend(&s.y, want, alpha, beta);
    ck_assert_int_eq(cudnnConvolutionForward(s.handle, &alpha, s.x.desc, s.x.data, s.w_desc,
                                             s.w.data, s.conv, (cudnnConvolutionFwdAlgo_t)algo,
                                             ws, ws_bytes, &beta, s.y.desc, s.y.data),
                     CUDNN_STATUS_SUCCESS);
    expect_tensor(&s.y, want, "y");
    free(want);
    free(ws);
    setup_free(&s);
}
END_TEST

/* A known case by hand: x = [1 2 3], w = [1 0 -1]: cross-correlation gives 1 - 3 = -2,
 * true convolution (w mirrored) gives -1 + 3 = 2. */
START_TEST(forward_mode_by_hand)
{
    static const cudnnConvolutionMode_t modes[2] = {CUDNN_CROSS_CORRELATION, CUDNN_CONVOLUTION};
    static const float expected[2] = {-2.0f, 2.0f};
    float x[3] = {1, 2, 3}, w[3] = {1, 0, -1}, y = NAN, one = 1.0f, zero = 0.0f;
    cudnnHandle_t handle;
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv;
    ck_assert_int_eq(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    cudnnCreateTensorDescriptor(&x_desc);
    cudnnCreateTensorDescriptor(&y_desc);
    cudnnCreateFilterDescriptor(&w_desc);
    cudnnCreateConvolutionDescriptor(&conv);
    cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 3);
    cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1);
    cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 1, 3);
    for (int m = 0; m < 2; m++) {
        cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, modes[m], CUDNN_DATA_FLOAT);
        ck_assert_int_eq(cudnnConvolutionForward(handle, &one, x_desc, x, w_desc, w, conv,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0,
                                                 &zero, y_desc, &y),
                         CUDNN_STATUS_SUCCESS);
        ck_assert_float_eq(y, expected[m]);
    }
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w_desc);
    cudnnDestroyTensorDescriptor(y_desc);
    cudnnDestroyTensorDescriptor(x_desc);
    cudnnDestroy(handle);
}
END_TEST

/* z and bias of a bias-activation case. */
struct epilogue {
    struct ref_tensor z, bias;
    int z_is_y;
    cudnnActivationDescriptor_t act;
};

static void epilogue_init(struct epilogue *e, struct setup *s, int i, cudnnActivationMode_t mode)
{
    int bias_dims[5] = {1, s->y.dims[1], 1, 1, 1};
    memset(e, 0, sizeof *e);
    e->z_is_y = i % 3 == 0;
    if (!e->z_is_y) {
        ref_tensor_init(&e->z, s->cc.type, s->cc.nb_dims, s->y.dims,
                        (enum ref_layout)((i / 3) % REF_LAYOUTS), &s->rng);
        ref_fill(&e->z, &s->rng, -64, 64);
    }
    ref_tensor_init(&e->bias, s->cc.type, s->cc.nb_dims, bias_dims, REF_NCHW, &s->rng);
    ref_fill(&e->bias, &s->rng, -64, 64);
    ck_assert_int_eq(cudnnCreateActivationDescriptor(&e->act), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetActivationDescriptor(e->act, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0),
                     CUDNN_STATUS_SUCCESS);
}

static void epilogue_free(struct epilogue *e)
{
    if (!e->z_is_y)
        ref_tensor_free(&e->z);
    ref_tensor_free(&e->bias);
    cudnnDestroyActivationDescriptor(e->act);
}

/* act(alpha1 * conv + alpha2 * z + bias) at every point of y; z read before the call. */
static double *reference_bias_activation(const struct setup *s, const struct epilogue *e,
                                         float alpha1, float alpha2, int relu)
{
    const struct ref_tensor *z = e->z_is_y ? &s->y : &e->z;
    double *out = reference_forward(s);
    REF_FOR_EACH(&s->y, n, k, d, h, w) {
        size_t i = ref_index(&s->y, n, k, d, h, w);
        double v = alpha1 * out[i] + ref_get(&e->bias, 0, k, 0, 0, 0);
        if (alpha2 != 0.0f)
            v += alpha2 * ref_get(z, n, k, d, h, w);
        out[i] = relu && v < 0.0 ? 0.0 : v;
    }
    return out;
}

START_TEST(bias_activation_random)
{
    struct conv_case cc;
    struct setup s;
    struct epilogue e;
    uint64_t rng = seed_for(_i, 2);
    random_case(&cc, _i, &rng);
    if (cc.compute == CUDNN_DATA_HALF)
        cc.compute = CUDNN_DATA_FLOAT; /* the fused call has no TRUE_HALF_CONFIG */
    setup_init(&s, &cc, rng);
    ref_fill(&s.x, &s.rng, -64, 64);
    ref_fill(&s.w, &s.rng, -64, 64);
    int relu = _i % 2;
    epilogue_init(&e, &s, _i, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY);
    if (e.z_is_y)
        ref_fill(&s.y, &s.rng, -64, 64);
    else
        ref_fill_nan(&s.y);
    float alpha1 = alphas[_i % 4], alpha2 = _i % 4 == 1 ? 0.0f : alphas[(_i / 4) % 4];
    int algo = relu ? ref_int(&s.rng, 0, CUDNN_CONVOLUTION_FWD_ALGO_COUNT - 1)
                    : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    size_t ws_bytes;
    void *ws = forward_workspace(&s, algo, &ws_bytes);
    double *want = reference_bias_activation(&s, &e, alpha1, alpha2, relu);
    const struct ref_tensor *z = e.z_is_y ? &s.y : &e.z;
    ck_assert_int_eq(cudnnConvolutionBiasActivationForward(
                         s.handle, &alpha1, s.x.desc, s.x.data, s.w_desc, s.w.data, s.conv,
                         (cudnnConvolutionFwdAlgo_t)algo, ws, ws_bytes, &alpha2, z->desc, z->data,
                         e.bias.desc, e.bias.data, e.act, s.y.desc, s.y.data),
                     CUDNN_STATUS_SUCCESS);
    expect_tensor(&s.y, want, "y");
    free(want);
    free(ws);
    epilogue_free(&e);
    setup_free(&s);
}
END_TEST

/* Gradient of conv with respect to x, scattered from every (output point, tap) pair. */
static double *reference_backward_data(const struct setup *s)
{
    const struct conv_case *cc = &s->cc;
    double *dx = calloc(ref_count(&s->x), sizeof *dx);
    ck_assert_ptr_nonnull(dx);
    REF_FOR_EACH(&s->y, n, k, od, oh, ow)
        for (int c = 0; c < cc->in_per_group; c++)
            for (int r = 0; r < cc->filter[0]; r++)
                for (int u = 0; u < cc->filter[1]; u++)
                    for (int v = 0; v < cc->filter[2]; v++) {
                        int id = od * cc->stride[0] - cc->pad[0] + r * cc->dilation[0];
                        int ih = oh * cc->stride[1] - cc->pad[1] + u * cc->dilation[1];
                        int iw = ow * cc->stride[2] - cc->pad[2] + v * cc->dilation[2];
                        if (id < 0 || id >= cc->in[0] || ih < 0 || ih >= cc->in[1] || iw < 0 ||
                            iw >= cc->in[2])
                            continue;
                        int channel = (k / cc->out_per_group) * cc->in_per_group + c;
                        dx[ref_index(&s->x, n, channel, id, ih, iw)] +=
                            ref_get(&s->y, n, k, od, oh, ow) *
                            ref_get(&s->w, k, c, tap(cc, 0, r), tap(cc, 1, u), tap(cc, 2, v));
                    }
    return dx;
}

START_TEST(backward_data_random)
{
    struct conv_case cc;
    struct setup s;
    uint64_t rng = seed_for(_i, 3);
    random_case(&cc, _i, &rng);
    setup_init(&s, &cc, rng);
    ref_fill(&s.y, &s.rng, -64, 64);
    ref_fill(&s.w, &s.rng, -64, 64);
    float alpha = alphas[_i % 4], beta = choose_beta(_i, &s.x, &s.rng);
    int algo = ref_int(&s.rng, 0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT - 1);
    size_t ws_bytes;
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataWorkspaceSize(
                         s.handle, s.w_desc, s.y.desc, s.conv, s.x.desc,
                         (cudnnConvolutionBwdDataAlgo_t)algo, &ws_bytes),
                     CUDNN_STATUS_SUCCESS);
    void *ws = ws_bytes ? malloc(ws_bytes) : NULL;
    double *want = reference_backward_data(&s);
    blend(&s.x, want, alpha, beta);
    ck_assert_int_eq(cudnnConvolutionBackwardData(s.handle, &alpha, s.w_desc, s.w.data, s.y.desc,
                                                  s.y.data, s.conv,
                                                  (cudnnConvolutionBwdDataAlgo_t)algo, ws,
                                                  ws_bytes, &beta, s.x.desc, s.x.data),
                     CUDNN_STATUS_SUCCESS);
    expect_tensor(&s.x, want, "dx");
    free(want);
    free(ws);
    setup_free(&s);
}
END_TEST

/* Gradient of conv with respect to w: every (output point, tap) pair adds x * dy to the
 * stored filter element its tap reads. */
static double *reference_backward_filter(const struct setup *s)
{
    const struct conv_case *cc = &s->cc;
    double *dw = calloc(ref_count(&s->w), sizeof *dw);
    ck_assert_ptr_nonnull(dw);
    REF_FOR_EACH(&s->y, n, k, od, oh, ow)
        for (int c = 0; c < cc->in_per_group; c++)
            for (int r = 0; r < cc->filter[0]; r++)
                for (int u = 0; u < cc->filter[1]; u++)
                    for (int v = 0; v < cc->filter[2]; v++) {
                        int id = od * cc->stride[0] - cc->pad[0] + r * cc->dilation[0];
                        int ih = oh * cc->stride[1] - cc->pad[1] + u * cc->dilation[1];
                        int iw = ow * cc->stride[2] - cc->pad[2] + v * cc->dilation[2];
                        if (id < 0 || id >= cc->in[0] || ih < 0 || ih >= cc->in[1] || iw < 0 ||
                            iw >= cc->in[2])
                            continue;
                        int channel = (k / cc->out_per_group) * cc->in_per_group + c;
                        dw[ref_index(&s->w, k, c, tap(cc, 0, r), tap(cc, 1, u), tap(cc, 2, v))] +=
                            ref_get(&s->x, n, channel, id, ih, iw) * ref_get(&s->y, n, k, od, oh, ow);
                    }
    return dw;
}

START_TEST(backward_filter_random)
{
    struct conv_case cc;
    struct setup s;
    uint64_t rng = seed_for(_i, 4);
    random_case(&cc, _i, &rng);
    setup_init(&s, &cc, rng);
    ref_fill(&s.x, &s.rng, -64, 64);
    ref_fill(&s.y, &s.rng, -64, 64);
    float alpha = alphas[_i % 4], beta = choose_beta(_i, &s.w, &s.rng);
    int algo;
    do
        algo = ref_int(&s.rng, 0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT - 1);
    while (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD);
    size_t ws_bytes;
    ck_assert_int_eq(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                         s.handle, s.x.desc, s.y.desc, s.conv, s.w_desc,
                         (cudnnConvolutionBwdFilterAlgo_t)algo, &ws_bytes),
                     CUDNN_STATUS_SUCCESS);
    void *ws = ws_bytes ? malloc(ws_bytes) : NULL;
    double *want = reference_backward_filter(&s);
    blend(&s.w, want, alpha, beta);
    ck_assert_int_eq(cudnnConvolutionBackwardFilter(s.handle, &alpha, s.x.desc, s.x.data, s.y.desc,
                                                    s.y.data, s.conv,
                                                    (cudnnConvolutionBwdFilterAlgo_t)algo, ws,
                                                    ws_bytes, &beta, s.w_desc, s.w.data),
                     CUDNN_STATUS_SUCCESS);
    expect_tensor(&s.w, want, "dw");
    free(want);
    free(ws);
    setup_free(&s);
}
END_TEST

START_TEST(backward_bias_random)
{
    static const cudnnDataType_t types[3] = {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, CUDNN_DATA_BFLOAT16};
    uint64_t rng = seed_for(_i, 5);
    cudnnHandle_t handle;
    struct ref_tensor dy, db;
    int nb = _i % 4 == 3 ? 5 : 4;
    int dy_dims[5] = {ref_int(&rng, 1, 3), ref_int(&rng, 1, 6), nb == 5 ? ref_int(&rng, 1, 3) : 1,
                      ref_int(&rng, 1, 5), ref_int(&rng, 1, 5)};
    int db_dims[5] = {1, dy_dims[1], 1, 1, 1};
    ck_assert_int_eq(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    ref_tensor_init(&dy, types[_i % 3], nb, dy_dims, (enum ref_layout)((_i / 3) % REF_LAYOUTS), &rng);
    ref_tensor_init(&db, types[_i % 3], nb, db_dims, (enum ref_layout)(_i % REF_LAYOUTS), &rng);
    ref_fill(&dy, &rng, -64, 64);
    float alpha = alphas[_i % 4], beta = choose_beta(_i, &db, &rng);
    double *want = calloc(ref_count(&db), sizeof *want);
    ck_assert_ptr_nonnull(want);
    REF_FOR_EACH(&dy, n, c, d, h, w)
        want[ref_index(&db, 0, c, 0, 0, 0)] += ref_get(&dy, n, c, d, h, w);
    blend(&db, want, alpha, beta);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &alpha, dy.desc, dy.data, &beta, db.desc,
                                                  db.data),
                     CUDNN_STATUS_SUCCESS);
    expect_tensor(&db, want, "db");
    free(want);
    ref_tensor_free(&dy);
    ref_tensor_free(&db);
    cudnnDestroy(handle);
}
END_TEST

/* FLOAT, x 2x4x6x5 NCHW, w 6x2x3x3, 2 groups, pad 1, stride 1, cross-correlation. */
static void known_case(struct conv_case *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->type = cc->compute = CUDNN_DATA_FLOAT;
    cc->nb_dims = 4;
    cc->batch = 2;
    cc->groups = 2;
    cc->in_per_group = 2;
    cc->out_per_group = 3;
    int in[3] = {1, 6, 5}, filter[3] = {1, 3, 3}, pad[3] = {0, 1, 1};
    for (int a = 0; a < 3; a++) {
        cc->in[a] = in[a];
        cc->filter[a] = filter[a];
        cc->pad[a] = pad[a];
        cc->stride[a] = cc->dilation[a] = 1;
        cc->out[a] = output_size(cc, a);
    }
    cc->mode = CUDNN_CROSS_CORRELATION;
    cc->x_layout = cc->y_layout = REF_NCHW;
    cc->filter_format = CUDNN_TENSOR_NCHW;
}

/* The known case with x and w filled (values 1..2, never 0) and y NaN. */
static void known_setup(struct setup *s)
{
    struct conv_case cc;
    known_case(&cc);
    setup_init(s, &cc, 0x1234567u);
    ref_fill(&s->x, &s->rng, 32, 64);
    ref_fill(&s->w, &s->rng, 32, 64);
}

static size_t tensor_bytes(cudnnTensorDescriptor_t desc)
{
    size_t bytes;
    ck_assert_int_eq(cudnnGetTensorSizeInBytes(desc, &bytes), CUDNN_STATUS_SUCCESS);
    return bytes;
}

static size_t filter_bytes(cudnnFilterDescriptor_t desc)
{
    size_t bytes;
    ck_assert_int_eq(cudnnGetFilterSizeInBytes(desc, &bytes), CUDNN_STATUS_SUCCESS);
    return bytes;
}

START_TEST(workspace_sizes)
{
    struct setup s;
    size_t bytes;
    known_setup(&s);
    const size_t forward[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {
        0, filter_bytes(s.w_desc), tensor_bytes(s.x.desc), 1u << 20, 1u << 20, 1u << 20,
        1u << 20, 1u << 20};
    for (int algo = 0; algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; algo++) {
        free(forward_workspace(&s, algo, &bytes));
        ck_assert_uint_eq(bytes, forward[algo]);
    }
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataWorkspaceSize(s.handle, s.w_desc, s.y.desc,
                                                                  s.conv, s.x.desc,
                                                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                                                  &bytes),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, filter_bytes(s.w_desc));
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataWorkspaceSize(
                         s.handle, s.w_desc, s.y.desc, s.conv, s.x.desc,
                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, &bytes),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, tensor_bytes(s.y.desc));
    ck_assert_int_eq(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                         s.handle, s.x.desc, s.y.desc, s.conv, s.w_desc,
                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, &bytes),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, tensor_bytes(s.x.desc));
    ck_assert_int_eq(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                         s.handle, s.x.desc, s.y.desc, s.conv, s.w_desc,
                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, &bytes),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(s.handle, s.x.desc, s.w_desc, s.conv,
                                                             s.y.desc,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                             &bytes),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(s.handle, s.x.desc, s.w_desc, s.conv,
                                                             s.y.desc,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_GEMM, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    setup_free(&s);
}
END_TEST

static int all_zero(const unsigned char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bytes[i])
            return 0;
    return 1;
}

/* Every forward algorithm that claims workspace writes it; a byte less is refused and
 * leaves y alone. */
START_TEST(workspace_used_and_enforced)
{
    struct setup s;
    float one = 1.0f, zero = 0.0f;
    known_setup(&s);
    for (int algo = 0; algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; algo++) {
        size_t bytes;
        free(forward_workspace(&s, algo, &bytes));
        if (bytes == 0)
            continue;
        unsigned char *ws = calloc(1, bytes);
        ck_assert_int_eq(cudnnConvolutionForward(s.handle, &one, s.x.desc, s.x.data, s.w_desc,
                                                 s.w.data, s.conv, (cudnnConvolutionFwdAlgo_t)algo,
                                                 ws, bytes - 1, &zero, s.y.desc, s.y.data),
                         CUDNN_STATUS_BAD_PARAM);
        ck_assert_int_eq(cudnnConvolutionForward(s.handle, &one, s.x.desc, s.x.data, s.w_desc,
                                                 s.w.data, s.conv, (cudnnConvolutionFwdAlgo_t)algo,
                                                 NULL, bytes, &zero, s.y.desc, s.y.data),
                         CUDNN_STATUS_BAD_PARAM);
        ck_assert_msg(isnan(ref_get(&s.y, 0, 0, 0, 0, 0)), "algo %d wrote y on failure", algo);
        ck_assert_msg(all_zero(ws, bytes), "algo %d wrote a refused workspace", algo);
        ck_assert_int_eq(cudnnConvolutionForward(s.handle, &one, s.x.desc, s.x.data, s.w_desc,
                                                 s.w.data, s.conv, (cudnnConvolutionFwdAlgo_t)algo,
                                                 ws, bytes, &zero, s.y.desc, s.y.data),
                         CUDNN_STATUS_SUCCESS);
        ck_assert_msg(!all_zero(ws, bytes), "algo %d left its workspace untouched", algo);
        free(ws);
        ref_fill_nan(&s.y);
    }
    setup_free(&s);
}
END_TEST

START_TEST(algorithm_counts)
{
    cudnnHandle_t handle;
    int count = 0;
    ck_assert_int_eq(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(count, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &count),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(count, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    ck_assert_int_eq(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &count),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(count, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithmMaxCount(NULL, &count), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, NULL), CUDNN_STATUS_BAD_PARAM);
    cudnnDestroy(handle);
}
END_TEST

START_TEST(forward_heuristics)
{
    struct setup s;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT + 2];
    int returned = -1, seen = 0;
    known_setup(&s);
    ck_assert_int_eq(cudnnSetConvolutionMathType(s.conv, CUDNN_TENSOR_OP_MATH), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(s.handle, s.x.desc, s.w_desc, s.conv,
                                                            s.y.desc, 3, &returned, perf),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, 3);
    ck_assert_int_eq(perf[0].algo, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(s.handle, s.x.desc, s.w_desc, s.conv,
                                                            s.y.desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT + 2,
                                                            &returned, perf),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    for (int i = 0; i < returned; i++) {
        size_t bytes;
        free(forward_workspace(&s, perf[i].algo, &bytes));
        ck_assert_int_eq(perf[i].status, CUDNN_STATUS_SUCCESS);
        ck_assert_uint_eq(perf[i].memory, bytes);
        ck_assert_int_eq(perf[i].mathType, CUDNN_TENSOR_OP_MATH);
        ck_assert_int_eq(perf[i].determinism, CUDNN_DETERMINISTIC);
        seen |= 1 << perf[i].algo;
    }
    ck_assert_int_eq(seen, (1 << CUDNN_CONVOLUTION_FWD_ALGO_COUNT) - 1);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(s.handle, s.x.desc, s.w_desc, s.conv,
                                                            s.y.desc, 0, &returned, perf),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(s.handle, s.x.desc, s.w_desc, s.conv,
                                                            s.y.desc, 1, &returned, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnFindConvolutionForwardAlgorithm(s.handle, s.x.desc, s.w_desc, s.conv,
                                                          s.y.desc, 2, &returned, perf),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(returned == 2 && perf[0].time > 0.0f && perf[1].time > perf[0].time);
    ck_assert_msg(ref_gaps_intact(&s.y) && isnan(ref_get(&s.y, 0, 0, 0, 0, 0)),
                  "Find without Ex touched y");
    setup_free(&s);
}
END_TEST

START_TEST(backward_heuristics)
{
    struct setup s;
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int returned = -1;
    known_setup(&s);
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataAlgorithm_v7(
                         s.handle, s.w_desc, s.y.desc, s.conv, s.x.desc,
                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, data),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    for (int i = 0; i < returned; i++) {
        ck_assert_int_eq(data[i].status, CUDNN_STATUS_SUCCESS);
        ck_assert_int_eq(data[i].determinism, data[i].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0
                                                  ? CUDNN_NON_DETERMINISTIC
                                                  : CUDNN_DETERMINISTIC);
    }
    ck_assert_int_eq(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                         s.handle, s.x.desc, s.y.desc, s.conv, s.w_desc,
                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, filter),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    ck_assert_int_eq(filter[returned - 1].algo, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD);
    ck_assert_int_eq(filter[returned - 1].status, CUDNN_STATUS_NOT_SUPPORTED);
    for (int i = 0; i < returned - 1; i++)
        ck_assert_int_eq(filter[i].status, CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnFindConvolutionBackwardDataAlgorithm(s.handle, s.w_desc, s.y.desc, s.conv,
                                                               s.x.desc, 1, &returned, data),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, 1);
    ck_assert_int_eq(cudnnFindConvolutionBackwardFilterAlgorithm(s.handle, s.x.desc, s.y.desc,
                                                                 s.conv, s.w_desc, 1, &returned,
                                                                 filter),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(returned, 1);
    setup_free(&s);
}
END_TEST

/* Checks a Find*Ex result list: the successes first with increasing times, then the
 * algorithms whose workspace did not fit, each reported with CUDNN_STATUS_ALLOC_FAILED. */
#define CHECK_FIND_EX(perf, returned, max_ws, need_of)                                  \
    do {                                                                                \
        int failed_ = 0;                                                                \
        for (int i_ = 0; i_ < (returned); i_++) {                                       \
            size_t need_ = need_of((perf)[i_].algo);                                    \
            if ((perf)[i_].status == CUDNN_STATUS_NOT_SUPPORTED)                        \
                continue;                                                               \
            ck_assert_int_eq((perf)[i_].status, need_ <= (max_ws)                       \
                                                     ? CUDNN_STATUS_SUCCESS             \
                                                     : CUDNN_STATUS_ALLOC_FAILED);      \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS) {                            \
                ck_assert(!failed_);                                                    \
                ck_assert(i_ == 0 || (perf)[i_].time > (perf)[i_ - 1].time);            \
            } else {                                                                    \
                failed_ = 1;                                                            \
            }                                                                           \
        }                                                                               \
    } while (0)

static struct setup *find_setup;

static size_t forward_need(int algo)
{
    size_t bytes;
    free(forward_workspace(find_setup, algo, &bytes));
    return bytes;
}

START_TEST(forward_find_ex)
{
    static const size_t workspaces[2] = {0, 2u << 20};
    struct setup s;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned;
    known_setup(&s);
    find_setup = &s;
    double *want = reference_forward(&s);
    for (int k = 0; k < 2; k++) {
        void *ws = workspaces[k] ? malloc(workspaces[k]) : NULL;
        ref_fill_nan(&s.y);
        ck_assert_int_eq(cudnnFindConvolutionForwardAlgorithmEx(
                             s.handle, s.x.desc, s.x.data, s.w_desc, s.w.data, s.conv, s.y.desc,
                             s.y.data, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, ws,
                             workspaces[k]),
                         CUDNN_STATUS_SUCCESS);
        ck_assert_int_eq(returned, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
        CHECK_FIND_EX(perf, returned, workspaces[k], forward_need);
        expect_tensor(&s.y, want, "y after Find*Ex");
        free(ws);
    }
    ck_assert_int_eq(perf[0].algo, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
    ck_assert_int_eq(cudnnFindConvolutionForwardAlgorithmEx(
                         s.handle, s.x.desc, s.x.data, s.w_desc, s.w.data, s.conv, s.y.desc, NULL,
                         1, &returned, perf, NULL, 0),
                     CUDNN_STATUS_BAD_PARAM);
    free(want);
    setup_free(&s);
}
END_TEST

static size_t backward_data_need(int algo)
{
    size_t bytes;
    ck_assert_int_eq(cudnnGetConvolutionBackwardDataWorkspaceSize(
                         find_setup->handle, find_setup->w_desc, find_setup->y.desc,
                         find_setup->conv, find_setup->x.desc, (cudnnConvolutionBwdDataAlgo_t)algo,
                         &bytes),
                     CUDNN_STATUS_SUCCESS);
    return bytes;
}

static size_t backward_filter_need(int algo)
{
    size_t bytes;
    cudnnStatus_t status = cudnnGetConvolutionBackwardFilterWorkspaceSize(
        find_setup->handle, find_setup->x.desc, find_setup->y.desc, find_setup->conv,
        find_setup->w_desc, (cudnnConvolutionBwdFilterAlgo_t)algo, &bytes);
    return status == CUDNN_STATUS_SUCCESS ? bytes : 0;
}

START_TEST(backward_find_ex)
{
    struct setup s;
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    const size_t ws_bytes = 512;
    void *ws = malloc(ws_bytes);
    int returned;
    known_setup(&s);
    find_setup = &s;
    ref_fill(&s.y, &s.rng, -64, 64);
    ref_fill_nan(&s.x);
    double *want_dx = reference_backward_data(&s);
    ck_assert_int_eq(cudnnFindConvolutionBackwardDataAlgorithmEx(
                         s.handle, s.w_desc, s.w.data, s.y.desc, s.y.data, s.conv, s.x.desc,
                         s.x.data, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, data, ws,
                         ws_bytes),
                     CUDNN_STATUS_SUCCESS);
    CHECK_FIND_EX(data, returned, ws_bytes, backward_data_need);
    expect_tensor(&s.x, want_dx, "dx after Find*Ex");
    ref_fill(&s.x, &s.rng, -64, 64);
    ref_fill_nan(&s.w);
    double *want_dw = reference_backward_filter(&s);
    ck_assert_int_eq(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                         s.handle, s.x.desc, s.x.data, s.y.desc, s.y.data, s.conv, s.w_desc,
                         s.w.data, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, filter, ws,
                         ws_bytes),
                     CUDNN_STATUS_SUCCESS);
    CHECK_FIND_EX(filter, returned, ws_bytes, backward_filter_need);
    ck_assert_int_eq(filter[returned - 1].status, CUDNN_STATUS_NOT_SUPPORTED);
    expect_tensor(&s.w, want_dw, "dw after Find*Ex");
    free(want_dx);
    free(want_dw);
    free(ws);
    setup_free(&s);
}
END_TEST

/* Runs the known forward with the given pieces; returns its status after checking that
 * a failure left y alone. */
static cudnnStatus_t forward_with(struct setup *s, cudnnHandle_t handle, cudnnTensorDescriptor_t x,
                                  cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
                                  cudnnTensorDescriptor_t y, int algo, void *y_data)
{
    float one = 1.0f, zero = 0.0f;
    ref_snapshot(&s->y);
    cudnnStatus_t status = cudnnConvolutionForward(handle, &one, x, s->x.data, w, s->w.data, conv,
                                                   (cudnnConvolutionFwdAlgo_t)algo, NULL, 0, &zero,
                                                   y, y_data);
    if (status != CUDNN_STATUS_SUCCESS)
        ck_assert_msg(memcmp(s->y.data, s->y.before, s->y.span * ref_type_size(s->y.type)) == 0,
                      "a failed call wrote y");
    return status;
}

static cudnnTensorDescriptor_t tensor_4d(cudnnDataType_t type, int n, int c, int h, int w)
{
    cudnnTensorDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, type, n, c, h, w),
                     CUDNN_STATUS_SUCCESS);
    return desc;
}

static cudnnFilterDescriptor_t filter_4d(cudnnDataType_t type, int k, int c, int h, int w)
{
    cudnnFilterDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateFilterDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(desc, type, CUDNN_TENSOR_NCHW, k, c, h, w),
                     CUDNN_STATUS_SUCCESS);
    return desc;
}

START_TEST(forward_bad_pointers)
{
    struct setup s;
    float one = 1.0f;
    const int algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cudnnTensorDescriptor_t unset_tensor;
    cudnnFilterDescriptor_t unset_filter;
    cudnnConvolutionDescriptor_t unset_conv;
    known_setup(&s);
    cudnnCreateTensorDescriptor(&unset_tensor);
    cudnnCreateFilterDescriptor(&unset_filter);
    cudnnCreateConvolutionDescriptor(&unset_conv);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(forward_with(&s, NULL, s.x.desc, s.w_desc, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, NULL, s.w_desc, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, NULL, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, NULL, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, NULL, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc, algo, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, unset_tensor, s.w_desc, s.conv, s.y.desc, algo,
                                  s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, unset_filter, s.conv, s.y.desc, algo,
                                  s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, unset_conv, s.y.desc, algo,
                                  s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc, -1, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc,
                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionForward(s.handle, NULL, s.x.desc, s.x.data, s.w_desc, s.w.data,
                                             s.conv, algo, NULL, 0, &one, s.y.desc, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionForward(s.handle, &one, s.x.desc, s.x.data, s.w_desc, s.w.data,
                                             s.conv, algo, NULL, 0, NULL, s.y.desc, s.y.data),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyTensorDescriptor(unset_tensor);
    cudnnDestroyFilterDescriptor(unset_filter);
    cudnnDestroyConvolutionDescriptor(unset_conv);
    setup_free(&s);
}
END_TEST

/* Shape and type mismatches around the known case (x 2x4x6x5, w 6x2x3x3, 2 groups, y 2x6x6x5). */
START_TEST(forward_bad_shapes_and_types)
{
    struct setup s;
    const int algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    const cudnnDataType_t f = CUDNN_DATA_FLOAT;
    known_setup(&s);
    struct {
        cudnnTensorDescriptor_t x, y;
        cudnnFilterDescriptor_t w;
        cudnnStatus_t want;
    } cases[] = {
        {tensor_4d(f, 2, 6, 6, 5), s.y.desc, s.w_desc, CUDNN_STATUS_BAD_PARAM},  /* x C != 2 * 2 */
        {s.x.desc, s.y.desc, filter_4d(f, 5, 2, 3, 3), CUDNN_STATUS_BAD_PARAM},  /* K % groups */
        {s.x.desc, s.y.desc, filter_4d(f, 6, 2, 9, 3), CUDNN_STATUS_BAD_PARAM},  /* filter > input */
        {s.x.desc, tensor_4d(f, 1, 6, 6, 5), s.w_desc, CUDNN_STATUS_BAD_PARAM},  /* y N */
        {s.x.desc, tensor_4d(f, 2, 3, 6, 5), s.w_desc, CUDNN_STATUS_BAD_PARAM},  /* y C */
        {s.x.desc, tensor_4d(f, 2, 6, 5, 5), s.w_desc, CUDNN_STATUS_NOT_SUPPORTED}, /* y H */
        {s.x.desc, tensor_4d(CUDNN_DATA_HALF, 2, 6, 6, 5), s.w_desc, CUDNN_STATUS_BAD_PARAM},
        {s.x.desc, s.y.desc, filter_4d(CUDNN_DATA_BFLOAT16, 6, 2, 3, 3), CUDNN_STATUS_BAD_PARAM},
        {tensor_4d(CUDNN_DATA_DOUBLE, 2, 4, 6, 5), tensor_4d(CUDNN_DATA_DOUBLE, 2, 6, 6, 5),
         filter_4d(CUDNN_DATA_DOUBLE, 6, 2, 3, 3), CUDNN_STATUS_NOT_SUPPORTED},
        {tensor_4d(CUDNN_DATA_INT8, 2, 4, 6, 5), s.y.desc, filter_4d(CUDNN_DATA_INT8, 6, 2, 3, 3),
         CUDNN_STATUS_NOT_SUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(forward_with(&s, s.handle, cases[i].x, cases[i].w, s.conv, cases[i].y, algo,
                                   s.y.data) == cases[i].want,
                      "case %zu", i);
        if (cases[i].x != s.x.desc)
            cudnnDestroyTensorDescriptor(cases[i].x);
        if (cases[i].y != s.y.desc)
            cudnnDestroyTensorDescriptor(cases[i].y);
        if (cases[i].w != s.w_desc)
            cudnnDestroyFilterDescriptor(cases[i].w);
    }
    setup_free(&s);
}
END_TEST

START_TEST(forward_unsupported_configurations)
{
    struct setup s;
    const int algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    const int one[1] = {1}, zero[1] = {0}, dims3[3] = {2, 4, 5}, strides3[3] = {20, 5, 1};
    const int w3[3] = {6, 2, 3}, y3[3] = {2, 6, 3}, y_strides3[3] = {18, 3, 1};
    known_setup(&s);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(s.conv, 1, 1, 1, 1, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_HALF),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_NOT_SUPPORTED); /* FLOAT data, HALF compute */
    cudnnTensorDescriptor_t x3, y3d;
    cudnnFilterDescriptor_t w3d;
    cudnnCreateTensorDescriptor(&x3);
    cudnnCreateTensorDescriptor(&y3d);
    cudnnCreateFilterDescriptor(&w3d);
    cudnnSetTensorNdDescriptor(x3, CUDNN_DATA_FLOAT, 3, dims3, strides3);
    cudnnSetTensorNdDescriptor(y3d, CUDNN_DATA_FLOAT, 3, y3, y_strides3);
    cudnnSetFilterNdDescriptor(w3d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, w3);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(s.conv, 1, zero, one, one,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(forward_with(&s, s.handle, x3, w3d, s.conv, y3d, algo, s.y.data),
                     CUDNN_STATUS_NOT_SUPPORTED); /* 1-d convolution: rank 3 */
    ck_assert_int_eq(forward_with(&s, s.handle, s.x.desc, s.w_desc, s.conv, s.y.desc, algo, s.y.data),
                     CUDNN_STATUS_BAD_PARAM); /* 1 spatial axis, rank-4 tensors */
    cudnnDestroyTensorDescriptor(x3);
    cudnnDestroyTensorDescriptor(y3d);
    cudnnDestroyFilterDescriptor(w3d);
    setup_free(&s);
}
END_TEST

/* Runs the known bias-activation with one piece replaced; returns its status. */
static cudnnStatus_t bias_activation_with(struct setup *s, struct epilogue *e, int algo,
                                          cudnnTensorDescriptor_t z, cudnnTensorDescriptor_t bias,
                                          cudnnActivationDescriptor_t act)
{
    float one = 1.0f;
    size_t bytes;
    void *ws = forward_workspace(s, algo, &bytes);
    cudnnStatus_t status = cudnnConvolutionBiasActivationForward(
        s->handle, &one, s->x.desc, s->x.data, s->w_desc, s->w.data, s->conv,
        (cudnnConvolutionFwdAlgo_t)algo, ws, bytes, &one, z, e->z.data, bias, e->bias.data, act,
        s->y.desc, s->y.data);
    free(ws);
    return status;
}

START_TEST(bias_activation_unsupported)
{
    static const cudnnActivationMode_t others[5] = {
        CUDNN_ACTIVATION_SIGMOID, CUDNN_ACTIVATION_TANH, CUDNN_ACTIVATION_CLIPPED_RELU,
        CUDNN_ACTIVATION_ELU, CUDNN_ACTIVATION_SWISH};
    const int precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    const cudnnDataType_t f = CUDNN_DATA_FLOAT;
    struct setup s;
    struct epilogue e;
    known_setup(&s);
    epilogue_init(&e, &s, 1, CUDNN_ACTIVATION_IDENTITY);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, e.bias.desc, e.act),
                     CUDNN_STATUS_SUCCESS);
    for (int algo = 0; algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; algo++)
        if (algo != precomp)
            ck_assert_int_eq(bias_activation_with(&s, &e, algo, e.z.desc, e.bias.desc, e.act),
                             CUDNN_STATUS_NOT_SUPPORTED);
    for (int m = 0; m < 5; m++) {
        cudnnSetActivationDescriptor(e.act, others[m], CUDNN_NOT_PROPAGATE_NAN, 1.0);
        ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, e.bias.desc, e.act),
                         CUDNN_STATUS_NOT_SUPPORTED);
    }
    cudnnSetActivationDescriptor(e.act, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, e.bias.desc, e.act),
                     CUDNN_STATUS_NOT_SUPPORTED);
    cudnnSetActivationDescriptor(e.act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0);
    cudnnTensorDescriptor_t wrong_bias = tensor_4d(f, 1, 5, 1, 1);
    cudnnTensorDescriptor_t half_bias = tensor_4d(CUDNN_DATA_HALF, 1, 6, 1, 1);
    cudnnTensorDescriptor_t wrong_z = tensor_4d(f, 2, 6, 6, 4);
    cudnnTensorDescriptor_t strided_bias;
    cudnnCreateTensorDescriptor(&strided_bias);
    ck_assert_int_eq(cudnnSetTensor4dDescriptorEx(strided_bias, f, 1, 6, 1, 1, 12, 2, 1, 1),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, strided_bias, e.act),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, wrong_bias, e.act),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, half_bias, e.act),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, wrong_z, e.bias.desc, e.act),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, NULL, e.bias.desc, e.act),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(bias_activation_with(&s, &e, precomp, e.z.desc, e.bias.desc, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyTensorDescriptor(wrong_bias);
    cudnnDestroyTensorDescriptor(half_bias);
    cudnnDestroyTensorDescriptor(wrong_z);
    cudnnDestroyTensorDescriptor(strided_bias);
    epilogue_free(&e);
    setup_free(&s);
}
END_TEST

START_TEST(backward_bad_arguments)
{
    struct setup s;
    float one = 1.0f, zero = 0.0f;
    const int data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    const int filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
    known_setup(&s);
    ref_fill(&s.y, &s.rng, -64, 64);
    cudnnTensorDescriptor_t short_dy = tensor_4d(CUDNN_DATA_FLOAT, 2, 6, 5, 5);
    cudnnTensorDescriptor_t wide_dx = tensor_4d(CUDNN_DATA_FLOAT, 2, 8, 6, 5);
    ck_assert_int_eq(cudnnConvolutionBackwardData(s.handle, &one, s.w_desc, s.w.data, short_dy,
                                                  s.y.data, s.conv, data_algo, NULL, 0, &zero,
                                                  s.x.desc, s.x.data),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnConvolutionBackwardData(s.handle, &one, s.w_desc, s.w.data, s.y.desc,
                                                  s.y.data, s.conv, data_algo, NULL, 0, &zero,
                                                  wide_dx, s.x.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardData(s.handle, &one, s.w_desc, NULL, s.y.desc,
                                                  s.y.data, s.conv, data_algo, NULL, 0, &zero,
                                                  s.x.desc, s.x.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardData(s.handle, &one, s.w_desc, s.w.data, s.y.desc,
                                                  s.y.data, s.conv, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                                  NULL, 0, &zero, s.x.desc, s.x.data),
                     CUDNN_STATUS_BAD_PARAM); /* ALGO_1 needs workspace */
    ck_assert_int_eq(cudnnConvolutionBackwardFilter(s.handle, &one, s.x.desc, s.x.data, s.y.desc,
                                                    s.y.data, s.conv,
                                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, NULL,
                                                    0, &zero, s.w_desc, s.w.data),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnConvolutionBackwardFilter(s.handle, &one, s.x.desc, s.x.data, s.y.desc,
                                                    s.y.data, s.conv, filter_algo, NULL, 0, NULL,
                                                    s.w_desc, s.w.data),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardFilter(NULL, &one, s.x.desc, s.x.data, s.y.desc,
                                                    s.y.data, s.conv, filter_algo, NULL, 0, &zero,
                                                    s.w_desc, s.w.data),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyTensorDescriptor(short_dy);
    cudnnDestroyTensorDescriptor(wide_dx);
    setup_free(&s);
}
END_TEST

START_TEST(backward_bias_bad_arguments)
{
    cudnnHandle_t handle;
    float one = 1.0f, dy[2 * 3 * 2 * 2] = {0}, db[4] = {0};
    double dy_double[2 * 3 * 2 * 2] = {0}, db_double[3] = {0};
    ck_assert_int_eq(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    cudnnTensorDescriptor_t dy_desc = tensor_4d(CUDNN_DATA_FLOAT, 2, 3, 2, 2);
    cudnnTensorDescriptor_t db_desc = tensor_4d(CUDNN_DATA_FLOAT, 1, 3, 1, 1);
    cudnnTensorDescriptor_t db_wide = tensor_4d(CUDNN_DATA_FLOAT, 1, 4, 1, 1);
    cudnnTensorDescriptor_t db_tall = tensor_4d(CUDNN_DATA_FLOAT, 1, 3, 2, 1);
    cudnnTensorDescriptor_t db_half = tensor_4d(CUDNN_DATA_HALF, 1, 3, 1, 1);
    cudnnTensorDescriptor_t dy_dbl = tensor_4d(CUDNN_DATA_DOUBLE, 2, 3, 2, 2);
    cudnnTensorDescriptor_t db_dbl = tensor_4d(CUDNN_DATA_DOUBLE, 1, 3, 1, 1);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_desc, dy, &one, db_desc, db),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_desc, dy, &one, db_wide, db),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_desc, dy, &one, db_tall, db),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_desc, dy, &one, db_half, db),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_dbl, dy_double, &one, db_dbl,
                                                  db_double),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(handle, &one, dy_desc, NULL, &one, db_desc, db),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnConvolutionBackwardBias(NULL, &one, dy_desc, dy, &one, db_desc, db),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnTensorDescriptor_t all[7] = {dy_desc, db_desc, db_wide, db_tall, db_half, dy_dbl, db_dbl};
    for (int i = 0; i < 7; i++)
        cudnnDestroyTensorDescriptor(all[i]);
    cudnnDestroy(handle);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("conv compute");
    TCase *compute = tcase_create("compute");
    TCase *algos = tcase_create("algorithms");
    TCase *errors = tcase_create("bad arguments");
    tcase_add_loop_test(compute, forward_random, 0, FORWARD_CASES);
    tcase_add_test(compute, forward_mode_by_hand);
    tcase_add_loop_test(compute, bias_activation_random, 0, BIAS_ACTIVATION_CASES);
    tcase_add_loop_test(compute, backward_data_random, 0, BACKWARD_DATA_CASES);
    tcase_add_loop_test(compute, backward_filter_random, 0, BACKWARD_FILTER_CASES);
    tcase_add_loop_test(compute, backward_bias_random, 0, BACKWARD_BIAS_CASES);
    tcase_add_test(algos, workspace_sizes);
    tcase_add_test(algos, workspace_used_and_enforced);
    tcase_add_test(algos, algorithm_counts);
    tcase_add_test(algos, forward_heuristics);
    tcase_add_test(algos, backward_heuristics);
    tcase_add_test(algos, forward_find_ex);
    tcase_add_test(algos, backward_find_ex);
    tcase_add_test(errors, forward_bad_pointers);
    tcase_add_test(errors, forward_bad_shapes_and_types);
    tcase_add_test(errors, forward_unsupported_configurations);
    tcase_add_test(errors, bias_activation_unsupported);
    tcase_add_test(errors, backward_bad_arguments);
    tcase_add_test(errors, backward_bias_bad_arguments);
    suite_add_tcase(suite, compute);
    suite_add_tcase(suite, algos);
    suite_add_tcase(suite, errors);
    return run_suite(suite);
}
