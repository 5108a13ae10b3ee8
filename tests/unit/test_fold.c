/* Unit tests for the fold (src/fold.c, src/fold_host.c, src/fold_cuda.c without a driver): the
 * host twin against a naive double-precision reference written here, its round-to-nearest-even
 * stores against this file's own rounding, its fp32 operation order, argument checks, and the
 * dispatch in a process without libcuda.
 *
 * Tolerances against the double reference (ref) of W' and b':
 *   float results:       |got - ref| <= 1e-6 * |ref| for W' (a product: a handful of fp32
 *                        roundings, each at most 6e-8 relative); for b', whose sum may cancel,
 *                        |got - ref| <= 1e-6 * m with m = |bn_alpha| * (|beta| + |s| * (|cb| + |mean|)).
 *   half and bfloat16:   within one ulp of the type at ref: |got - ref| <= ulp(ref), plus the
 *                        same 1e-6 * m fp32 term for b'. */
#include <check.h>
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "convbn/fold.h"
#include "support/run_suite.h"

#define SLACK 4        /* sentinel elements after every output */
#define SENTINEL 0xA5

/* ---- This file's own number formats: decoding, encoding and RNE rounding in double ---- */

struct type_info {
    int type;
    size_t size;
    int precision; /* significand bits, the implicit one included */
    int emin;      /* exponent of the smallest normal */
    double max;    /* largest finite value */
};

static const struct type_info types[] = {
    {CUDNN_DATA_FLOAT, 4, 24, -126, FLT_MAX},
    {CUDNN_DATA_HALF, 2, 11, -14, 65504.0},
    {CUDNN_DATA_BFLOAT16, 2, 8, -126, 0x1.fep127},
};

static const struct type_info *info(int type)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type)
            return &types[i];
    ck_abort_msg("unknown type %d", type);
    return NULL;
}

/* Rounds x to the nearest value of the type, ties to even, overflowing to infinity. */
static double round_to(const struct type_info *t, double x)
{
    if (x == 0 || !isfinite(x))
        return x;
    int e = ilogb(x);
    if (e < t->emin)
        e = t->emin;
    double r = ldexp(nearbyint(ldexp(x, t->precision - 1 - e)), e - (t->precision - 1));
    return fabs(r) > t->max ? copysign(INFINITY, x) : r;
}

/* Returns the spacing of the type's values at x (subnormal spacing below the normal range). */
static double ulp(const struct type_info *t, double x)
{
    int e = x == 0 ? t->emin : ilogb(x);
    return ldexp(1.0, (e < t->emin ? t->emin : e) - (t->precision - 1));
}

static double half_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double mag = exp == 31 ? (mant ? NAN : INFINITY)
                 : exp == 0 ? ldexp(mant, -24)
                            : ldexp(1024 + mant, exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

/* Encodes a value that half represents exactly. */
static uint16_t half_bits(double x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    x = fabs(x);
    if (isinf(x))
        return sign | 0x7c00;
    if (x == 0)
        return sign;
    int e = ilogb(x);
    if (e < -14)
        return sign | (uint16_t)ldexp(x, 24);
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)((ldexp(x, -e) - 1.0) * 1024);
}

static double get(int type, const void *buf, long long i)
{
    const uint8_t *p = (const uint8_t *)buf + (size_t)i * info(type)->size;
    float f;
    uint16_t h;
    uint32_t u;
    switch (type) {
    case CUDNN_DATA_FLOAT:
        memcpy(&f, p, 4);
        return f;
    case CUDNN_DATA_HALF:
        memcpy(&h, p, 2);
        return half_value(h);
    default:
        memcpy(&h, p, 2);
        u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
        return f;
    }
}

/* Stores x, which must be exactly representable in type. */
static void put(int type, void *buf, long long i, double x)
{
    uint8_t *p = (uint8_t *)buf + (size_t)i * info(type)->size;
    float f = (float)x;
    uint32_t u;
    uint16_t h;
    ck_assert_msg(isnan(x) || round_to(info(type), x) == x, "%a not representable", x);
    switch (type) {
    case CUDNN_DATA_FLOAT:
        memcpy(p, &f, 4);
        break;
    case CUDNN_DATA_HALF:
        h = half_bits(x);
        memcpy(p, &h, 2);
        break;
    default:
        memcpy(&u, &f, 4);
        h = (uint16_t)(u >> 16);
        memcpy(p, &h, 2);
    }
}

static uint16_t bits16(const void *buf, long long i)
{
    uint16_t h;
    memcpy(&h, (const uint8_t *)buf + 2 * i, 2);
    return h;
}

/* ---- Test cases: inputs, outputs with sentinels, and the reference check ---- */

static uint32_t rng = 12345;

static double uniform(double lo, double hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (rng >> 8) / 16777216.0;
}

struct fold_case {
    struct convbn_fold_args a;
    float *gamma, *beta, *mean, *var;
    void *bias, *w, *w_out, *b_out;
};

static void *alloc_filled(int type, long long n, double lo, double hi)
{
    void *p = malloc((size_t)(n + SLACK) * info(type)->size);
    ck_assert_ptr_nonnull(p);
    for (long long i = 0; i < n; i++)
        put(type, p, i, round_to(info(type), uniform(lo, hi)));
    return p;
}

static void *alloc_sentinel(int type, long long n)
{
    void *p = malloc((size_t)(n + SLACK) * info(type)->size);
    ck_assert_ptr_nonnull(p);
    memset(p, SENTINEL, (size_t)(n + SLACK) * info(type)->size);
    return p;
}

/* bias_type < 0: no conv bias. */
static void make_case(struct fold_case *c, int k, long long per_k, int w_type, int bias_type,
                      int b_type, int inv_std)
{
    memset(c, 0, sizeof *c);
    c->gamma = alloc_filled(CUDNN_DATA_FLOAT, k, -1.5, 1.5);
    c->beta = alloc_filled(CUDNN_DATA_FLOAT, k, -1.0, 1.0);
    c->mean = alloc_filled(CUDNN_DATA_FLOAT, k, -1.0, 1.0);
    c->var = alloc_filled(CUDNN_DATA_FLOAT, k, inv_std ? 0.5 : 0.1, inv_std ? 3.0 : 2.0);
    c->bias = bias_type < 0 ? NULL : alloc_filled(bias_type, k, -1.0, 1.0);
    c->w = alloc_filled(w_type, k * per_k, -1.0, 1.0);
    c->w_out = alloc_sentinel(w_type, k * per_k);
    c->b_out = alloc_sentinel(b_type, k);
    c->a = (struct convbn_fold_args){
        .gamma = c->gamma, .beta = c->beta, .mean = c->mean, .var = c->var,
        .conv_bias = c->bias, .conv_bias_type = bias_type, .w = c->w, .w_out = c->w_out,
        .w_type = w_type, .b_out = c->b_out, .b_type = b_type, .k = k, .per_k = per_k,
        .eps = 1e-5f, .conv_alpha = 1.25f, .bn_alpha = 0.75f, .inv_std = inv_std,
    };
}

static void free_case(struct fold_case *c)
{
    free(c->gamma);
    free(c->beta);
    free(c->mean);
    free(c->var);
    free(c->bias);
    free(c->w);
    free(c->w_out);
    free(c->b_out);
}

static int all_sentinel(const void *buf, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        if (((const uint8_t *)buf)[i] != SENTINEL)
            return 0;
    return 1;
}

/* Returns 1 when the SLACK elements after the first n are untouched. */
static int sentinels_intact(const void *buf, int type, long long n)
{
    size_t size = info(type)->size;
    return all_sentinel((const uint8_t *)buf + (size_t)n * size, SLACK * size);
}

static double reference_s(const struct convbn_fold_args *a, int k)
{
    double g = a->gamma[k], v = a->var[k];
    return a->inv_std ? g * v : g / sqrt(v + (double)a->eps);
}

static void check_weights(const struct fold_case *c)
{
    const struct convbn_fold_args *a = &c->a;
    const struct type_info *t = info(a->w_type);
    for (int k = 0; k < a->k; k++) {
        double scale = (double)a->bn_alpha * a->conv_alpha * reference_s(a, k);
        for (long long e = 0; e < a->per_k; e++) {
            long long i = k * a->per_k + e;
            double ref = get(a->w_type, c->w, i) * scale, got = get(a->w_type, c->w_out, i);
            double tol = a->w_type == CUDNN_DATA_FLOAT ? 1e-6 * fabs(ref) : ulp(t, ref);
            ck_assert_msg(fabs(got - ref) <= tol, "W'[%d,%lld] = %a, reference %a", k, e, got, ref);
        }
    }
    ck_assert_msg(sentinels_intact(c->w_out, a->w_type, a->k * a->per_k), "write past W'");
}

static void check_bias(const struct fold_case *c)
{
    const struct convbn_fold_args *a = &c->a;
    const struct type_info *t = info(a->b_type);
    for (int k = 0; k < a->k; k++) {
        double s = reference_s(a, k), cb = a->conv_bias ? get(a->conv_bias_type, c->bias, k) : 0;
        double ref = a->bn_alpha * (a->beta[k] + s * (cb - a->mean[k]));
        double m = fabs(a->bn_alpha) * (fabs(a->beta[k]) + fabs(s) * (fabs(cb) + fabs(a->mean[k])));
        double tol = 1e-6 * m + (a->b_type == CUDNN_DATA_FLOAT ? 0 : ulp(t, ref));
        double got = get(a->b_type, c->b_out, k);
        ck_assert_msg(fabs(got - ref) <= tol, "b'[%d] = %a, reference %a", k, got, ref);
    }
    ck_assert_msg(sentinels_intact(c->b_out, a->b_type, a->k), "write past b'");
}

static void ck_assert_fold_matches_reference(struct fold_case *c)
{
    ck_assert_int_eq(convbn_fold_host(&c->a), 0);
    check_weights(c);
    check_bias(c);
}

/* ---- Tests ---- */

static const int type_list[] = {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, CUDNN_DATA_BFLOAT16};

/* Loop index i: weight type i / 12, conv bias (none, float, half, bf16) (i / 3) % 4, b' type i % 3. */
START_TEST(types_and_conv_bias)
{
    struct fold_case c;
    int bias = (_i / 3) % 4;
    make_case(&c, 16, 27, type_list[_i / 12], bias ? type_list[bias - 1] : -1, type_list[_i % 3], 0);
    ck_assert_fold_matches_reference(&c);
    free_case(&c);
}
END_TEST

START_TEST(inverse_std_form)
{
    struct fold_case c;
    make_case(&c, 8, 9, type_list[_i], CUDNN_DATA_FLOAT, type_list[_i], 1);
    ck_assert_fold_matches_reference(&c);
    free_case(&c);
}
END_TEST

/* Shapes: single channel and element, depthwise (per_k = R*S) and grouped (per_k = C/G*R*S). */
static const struct { int k; long long per_k; } shapes[] = {
    {1, 1}, {1, 300}, {64, 1}, {32, 9}, {12, 4 * 3 * 3}, {5, 7 * 7 * 3},
};

START_TEST(shapes_and_unit_alphas)
{
    for (int t = 0; t < 3; t++) {
        struct fold_case c;
        make_case(&c, shapes[_i].k, shapes[_i].per_k, type_list[t], type_list[t], type_list[t], 0);
        if (_i % 2) {
            c.a.conv_alpha = 1.0f;
            c.a.bn_alpha = 1.0f;
        }
        ck_assert_fold_matches_reference(&c);
        free_case(&c);
    }
}
END_TEST

START_TEST(negative_bn_alpha)
{
    struct fold_case c;
    make_case(&c, 4, 3, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, 0);
    c.a.conv_alpha = 2.0f;
    c.a.bn_alpha = -0.5f;
    ck_assert_fold_matches_reference(&c);
    free_case(&c);
}
END_TEST

/* Every value of a 16-bit weight type times an exactly known fp32 scale (gamma = scale,
 * var = 1, eps = 0), stored with RNE: compared bit for bit with this file's rounding of the
 * fp32 product.  The scales make exact round trips, ties, subnormals, values just below the
 * overflow threshold, and overflow. */
static void ck_assert_all_values_round_right(int type, float scale)
{
    enum { N = 65536 };
    float gamma = scale, one = 1.0f, zero = 0.0f;
    uint16_t *w = malloc(N * 2), *w_out = malloc(N * 2);
    ck_assert(w && w_out);
    for (int i = 0; i < N; i++)
        w[i] = (uint16_t)i;
    float b_out;
    struct convbn_fold_args a = {
        .gamma = &gamma, .beta = &zero, .mean = &zero, .var = &one, .w = w, .w_out = w_out,
        .w_type = type, .b_out = &b_out, .b_type = CUDNN_DATA_FLOAT, .k = 1, .per_k = N,
        .eps = 0.0f, .conv_alpha = 1.0f, .bn_alpha = 1.0f,
    };
    ck_assert_int_eq(convbn_fold_host(&a), 0);
    for (int i = 0; i < N; i++) {
        double x = get(type, w, i);
        if (isnan(x)) {
            ck_assert_uint_eq(w_out[i], 0x7fff);
            continue;
        }
        double want = round_to(info(type), (float)x * scale), got = get(type, w_out, i);
        ck_assert_msg(got == want && signbit(got) == signbit(want),
                      "type %d: %a * %a stored as %a, want %a", type, x, scale, got, want);
    }
    free(w);
    free(w_out);
}

static const float rne_scales[] = {
    1.0f, 1.0f + 0x1p-13f, 1.0f + 0x1p-11f, 1.0f + 0x1p-8f, 0.5f, 3.0f, 0x1p-10f, 0x1.8p-120f,
};

START_TEST(half_stores_round_to_nearest_even)
{
    ck_assert_all_values_round_right(CUDNN_DATA_HALF, rne_scales[_i]);
}
END_TEST

START_TEST(bf16_stores_round_to_nearest_even)
{
    ck_assert_all_values_round_right(CUDNN_DATA_BFLOAT16, rne_scales[_i]);
}
END_TEST

/* The twin must compute in fp32, in the kernel's order, with sqrtf: checked bit for bit
 * against the same formula written out here one rounded step at a time. */
START_TEST(fp32_operation_order)
{
    struct fold_case c;
    make_case(&c, 32, 5, CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, _i);
    c.a.conv_alpha = 1.1f;
    c.a.bn_alpha = 0.9f;
    ck_assert_int_eq(convbn_fold_host(&c.a), 0);
    const float *w = c.w, *w_out = c.w_out, *b_out = c.b_out;
    for (int k = 0; k < 32; k++) {
        volatile float sum = c.var[k] + c.a.eps, root = sqrtf(sum);
        volatile float s = c.a.inv_std ? c.gamma[k] * c.var[k] : c.gamma[k] / root;
        volatile float alphas = c.a.bn_alpha * c.a.conv_alpha, scale = alphas * s;
        for (int e = 0; e < 5; e++) {
            volatile float want = w[k * 5 + e] * scale;
            ck_assert_msg(w_out[k * 5 + e] == want, "W'[%d,%d] = %a, want %a", k, e, w_out[k * 5 + e], want);
        }
        volatile float diff = (float)get(CUDNN_DATA_HALF, c.bias, k) - c.mean[k];
        volatile float prod = s * diff, sum2 = c.beta[k] + prod, want_b = c.a.bn_alpha * sum2;
        ck_assert_msg(b_out[k] == want_b, "b'[%d] = %a, want %a", k, b_out[k], want_b);
    }
    free_case(&c);
}
END_TEST

START_TEST(in_place_equals_out_of_place)
{
    struct fold_case c;
    make_case(&c, 8, 10, type_list[_i], -1, type_list[_i], 0);
    size_t bytes = 80 * info(type_list[_i])->size;
    ck_assert_int_eq(convbn_fold_host(&c.a), 0);
    c.a.w_out = c.w;
    ck_assert_int_eq(convbn_fold_host(&c.a), 0);
    ck_assert_int_eq(memcmp(c.w, c.w_out, bytes), 0);
    free_case(&c);
}
END_TEST

START_TEST(nan_scale_stores_canonical_nan)
{
    struct fold_case c;
    make_case(&c, 2, 3, type_list[_i], -1, type_list[_i], 0);
    c.var[1] = -1.0f; /* sqrtf of a negative: s[1] is NaN */
    ck_assert_int_eq(convbn_fold_host(&c.a), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(isnan(get(type_list[_i], c.w_out, i)) == (i >= 3), "W'[%d]", i);
        if (i >= 3 && type_list[_i] != CUDNN_DATA_FLOAT)
            ck_assert_uint_eq(bits16(c.w_out, i), 0x7fff);
    }
    ck_assert(!isnan(get(type_list[_i], c.b_out, 0)));
    ck_assert(isnan(get(type_list[_i], c.b_out, 1)));
    free_case(&c);
}
END_TEST

/* Each bad argument set must give -1 from both entry points and write nothing. */
START_TEST(bad_arguments_rejected)
{
    struct fold_case c;
    make_case(&c, 4, 6, CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, CUDNN_DATA_HALF, 0);
    const struct convbn_fold_args good = c.a;
    struct convbn_fold_args bad[16];
    int n = 0;
    for (; n < 16; n++)
        bad[n] = good;
    n = 0;
    bad[n++].gamma = NULL;
    bad[n++].beta = NULL;
    bad[n++].mean = NULL;
    bad[n++].var = NULL;
    bad[n++].w = NULL;
    bad[n++].w_out = NULL;
    bad[n++].b_out = NULL;
    bad[n++].k = 0;
    bad[n++].k = -3;
    bad[n++].per_k = 0;
    bad[n++].per_k = -6;
    bad[n++].per_k = 0x7fffffffffffffffLL / 2; /* k * per_k overflows */
    bad[n++].w_type = CUDNN_DATA_DOUBLE;
    bad[n++].b_type = CUDNN_DATA_INT8;
    bad[n++].conv_bias_type = CUDNN_DATA_DOUBLE;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(convbn_fold_host(&bad[i]) == -1, "host accepted bad set %d", i);
        ck_assert_msg(convbn_fold_run(&bad[i], NULL) == -1, "run accepted bad set %d", i);
        ck_assert_msg(convbn_fold_check(&bad[i]) == -1, "check accepted bad set %d", i);
    }
    ck_assert_int_eq(convbn_fold_host(NULL), -1);
    ck_assert_int_eq(convbn_fold_run(NULL, NULL), -1);
    ck_assert_msg(all_sentinel(c.w_out, (24 + SLACK) * 2), "W' written");
    ck_assert_msg(all_sentinel(c.b_out, (4 + SLACK) * 2), "b' written");
    ck_assert_int_eq(convbn_fold_host(&good), 0); /* the unmodified set is accepted */
    free_case(&c);
}
END_TEST

START_TEST(bias_type_ignored_without_bias)
{
    struct fold_case c;
    make_case(&c, 3, 2, CUDNN_DATA_FLOAT, -1, CUDNN_DATA_FLOAT, 0);
    c.a.conv_bias_type = CUDNN_DATA_DOUBLE;
    ck_assert_fold_matches_reference(&c);
    free_case(&c);
}
END_TEST

/* In this process no libcuda is loaded, so the fold runs on the host twin. */
START_TEST(run_uses_host_twin_without_driver)
{
    ck_assert_ptr_null(dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY));
    ck_assert_str_eq(convbn_fold_backend(), "host");
    ck_assert_int_eq(convbn_fold_cuda_state(), CONVBN_FOLD_CUDA_ABSENT);
    ck_assert_int_eq(convbn_fold_cuda_run(&(struct convbn_fold_args){0}, NULL), -1);
    struct fold_case c;
    make_case(&c, 8, 12, CUDNN_DATA_BFLOAT16, CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, 0);
    ck_assert_int_eq(convbn_fold_run(&c.a, (void *)0x1234), 0);
    check_weights(&c);
    check_bias(&c);
    void *w_run = malloc(96 * 2), *b_run = malloc(8 * 4);
    ck_assert(w_run && b_run);
    memcpy(w_run, c.w_out, 96 * 2);
    memcpy(b_run, c.b_out, 8 * 4);
    ck_assert_int_eq(convbn_fold_host(&c.a), 0);
    ck_assert_int_eq(memcmp(w_run, c.w_out, 96 * 2), 0);
    ck_assert_int_eq(memcmp(b_run, c.b_out, 8 * 4), 0);
    ck_assert_ptr_null(dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY)); /* still not loaded */
    free(w_run);
    free(b_run);
    free_case(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fold");
    TCase *tc = tcase_create("fold");
    tcase_add_loop_test(tc, types_and_conv_bias, 0, 36);
    tcase_add_loop_test(tc, inverse_std_form, 0, 3);
    tcase_add_loop_test(tc, shapes_and_unit_alphas, 0, (int)(sizeof shapes / sizeof shapes[0]));
    tcase_add_test(tc, negative_bn_alpha);
    tcase_add_loop_test(tc, half_stores_round_to_nearest_even, 0,
                        (int)(sizeof rne_scales / sizeof rne_scales[0]));
    tcase_add_loop_test(tc, bf16_stores_round_to_nearest_even, 0,
                        (int)(sizeof rne_scales / sizeof rne_scales[0]));
    tcase_add_loop_test(tc, fp32_operation_order, 0, 2);
    tcase_add_loop_test(tc, in_place_equals_out_of_place, 0, 3);
    tcase_add_loop_test(tc, nan_scale_stores_canonical_nan, 0, 3);
    tcase_add_test(tc, bad_arguments_rejected);
    tcase_add_test(tc, bias_type_ignored_without_bias);
    tcase_add_test(tc, run_uses_host_twin_without_driver);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
