/* Test-side strided tensors for the emulation's Check suites (tests/emu/test_*.c).  Element
 * encoding (the compiler's _Float16 for HALF, frexp rounding for BFLOAT16, decoding from the
 * IEEE bit layouts) and addressing (plain stride arithmetic) are written here without any
 * emulation helper, so references built on them are independent of the code under test.
 * A ref_tensor always has five logical axes n, c, d, h, w; a 4-d tensor has d == 1 and is
 * described to cuDNN as n, c, h, w.  Gaps between elements are filled with NaN, so a function
 * that reads them shows NaN, and ref_gaps_intact tells whether one wrote into them. */
#ifndef CONVBN_TESTS_REF_TENSOR_H
#define CONVBN_TESTS_REF_TENSOR_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

enum ref_layout { REF_NCHW, REF_NHWC, REF_NCHW_PADDED, REF_NHWC_PADDED, REF_LAYOUTS };

struct ref_tensor {
    cudnnDataType_t type;
    int nb_dims;                 /* 4 or 5 */
    int dims[5];                 /* n, c, d, h, w (d == 1 for 4-d) */
    long strides[5];             /* in elements; the d stride of a 4-d tensor is 0 */
    size_t span;                 /* elements allocated, gaps included */
    unsigned char *is_element;   /* span flags: 1 where an element lives */
    void *data;
    void *before;                /* copy taken by ref_snapshot */
    cudnnTensorDescriptor_t desc;
};

/* xorshift64* generator; *state must start non-zero. */
static inline uint32_t ref_next(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 2685821657736338717ull) >> 32);
}

/* Uniform integer in [lo, hi]. */
static inline int ref_int(uint64_t *state, int lo, int hi)
{
    return lo + (int)(ref_next(state) % (uint32_t)(hi - lo + 1));
}

/* k / 32 for k in [lo, hi] (|k| < 256): exact in FLOAT, HALF and BFLOAT16. */
static inline double ref_value(uint64_t *state, int lo, int hi)
{
    return ref_int(state, lo, hi) / 32.0;
}

static inline size_t ref_type_size(cudnnDataType_t type)
{
    return type == CUDNN_DATA_FLOAT ? 4 : type == CUDNN_DATA_DOUBLE ? 8 : 2;
}

static inline uint16_t ref_half_bits(double v)
{
    _Float16 h = (_Float16)v;
    uint16_t bits;
    memcpy(&bits, &h, sizeof bits);
    return bits;
}

static inline double ref_half_value(uint16_t bits)
{
    int exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
    double sign = bits & 0x8000 ? -1.0 : 1.0;
    if (exponent == 0x1f)
        return mantissa ? NAN : sign * INFINITY;
    if (exponent == 0)
        return sign * ldexp(mantissa, -24);
    return sign * ldexp(1024 + mantissa, exponent - 25);
}

/* Rounds v to 8 significant bits (nearest, ties to even) and returns the bfloat16 bits. */
static inline uint16_t ref_bf16_bits(double v)
{
    float f = (float)v;
    if (isnan(v))
        return 0x7fc0;
    if (v != 0.0 && !isinf(v)) {
        int exponent;
        double mantissa = frexp(v, &exponent);
        f = (float)ldexp(nearbyint(mantissa * 256.0) / 256.0, exponent);
    }
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

static inline double ref_bf16_value(uint16_t bits)
{
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Element at offset (in elements) of a buffer of the given type, as a double. */
static inline double ref_load(const void *data, cudnnDataType_t type, long offset)
{
    if (type == CUDNN_DATA_FLOAT)
        return ((const float *)data)[offset];
    if (type == CUDNN_DATA_DOUBLE)
        return ((const double *)data)[offset];
    uint16_t bits = ((const uint16_t *)data)[offset];
    return type == CUDNN_DATA_HALF ? ref_half_value(bits) : ref_bf16_value(bits);
}

static inline void ref_store(void *data, cudnnDataType_t type, long offset, double v)
{
    if (type == CUDNN_DATA_FLOAT)
        ((float *)data)[offset] = (float)v;
    else if (type == CUDNN_DATA_DOUBLE)
        ((double *)data)[offset] = v;
    else
        ((uint16_t *)data)[offset] = type == CUDNN_DATA_HALF ? ref_half_bits(v) : ref_bf16_bits(v);
}

/* Plain nested loops over every logical index (n, c, d, h, w) of tensor t. */
#define REF_FOR_EACH(t, n, c, d, h, w)                 \
    for (int n = 0; n < (t)->dims[0]; n++)             \
        for (int c = 0; c < (t)->dims[1]; c++)         \
            for (int d = 0; d < (t)->dims[2]; d++)     \
                for (int h = 0; h < (t)->dims[3]; h++) \
                    for (int w = 0; w < (t)->dims[4]; w++)

/* Offset of (n, c, d, h, w). */
static inline long ref_offset(const struct ref_tensor *t, int n, int c, int d, int h, int w)
{
    return n * t->strides[0] + c * t->strides[1] + d * t->strides[2] + h * t->strides[3] +
           w * t->strides[4];
}

/* Offset of (n, c, d, h, w) read through broadcasting: axes of extent 1 take index 0. */
static inline long ref_offset_broadcast(const struct ref_tensor *t, int n, int c, int d, int h,
                                        int w)
{
    return ref_offset(t, t->dims[0] == 1 ? 0 : n, t->dims[1] == 1 ? 0 : c,
                      t->dims[2] == 1 ? 0 : d, t->dims[3] == 1 ? 0 : h, t->dims[4] == 1 ? 0 : w);
}

static inline double ref_get(const struct ref_tensor *t, int n, int c, int d, int h, int w)
{
    return ref_load(t->data, t->type, ref_offset(t, n, c, d, h, w));
}

static inline void ref_put(struct ref_tensor *t, int n, int c, int d, int h, int w, double v)
{
    ref_store(t->data, t->type, ref_offset(t, n, c, d, h, w), v);
}

/* Strides for layout: packed NCHW / NHWC order, or the same with 1-2 elements of padding
 * after every axis. */
static inline void ref_layout_strides(struct ref_tensor *t, enum ref_layout layout,
                                      uint64_t *rng)
{
    static const int nchw_inner_first[5] = {4, 3, 2, 1, 0};
    static const int nhwc_inner_first[5] = {1, 4, 3, 2, 0};
    int nhwc = layout == REF_NHWC || layout == REF_NHWC_PADDED;
    int padded = layout == REF_NCHW_PADDED || layout == REF_NHWC_PADDED;
    long stride = 1;
    for (int i = 0; i < 5; i++) {
        int axis = nhwc ? nhwc_inner_first[i] : nchw_inner_first[i];
        if (axis == 2 && t->nb_dims == 4) {
            t->strides[2] = 0;
            continue;
        }
        t->strides[axis] = stride;
        stride *= t->dims[axis] + (padded ? ref_int(rng, 1, 2) : 0);
    }
}

static inline void ref_mark_elements(struct ref_tensor *t)
{
    t->is_element = calloc(t->span, 1);
    ck_assert_ptr_nonnull(t->is_element);
    REF_FOR_EACH(t, n, c, d, h, w)
        t->is_element[ref_offset(t, n, c, d, h, w)] = 1;
}

/* Remembers the buffer so that ref_gaps_intact can compare its gaps against it. */
static inline void ref_snapshot(struct ref_tensor *t)
{
    size_t bytes = t->span * ref_type_size(t->type);
    free(t->before);
    t->before = malloc(bytes);
    ck_assert_ptr_nonnull(t->before);
    memcpy(t->before, t->data, bytes);
}

/* Describes the tensor to cuDNN with cudnnSetTensorNdDescriptor. */
static inline void ref_describe(struct ref_tensor *t)
{
    static const int axes4[4] = {0, 1, 3, 4}, axes5[5] = {0, 1, 2, 3, 4};
    const int *axes = t->nb_dims == 4 ? axes4 : axes5;
    int dims[5], strides[5];
    for (int i = 0; i < t->nb_dims; i++) {
        dims[i] = t->dims[axes[i]];
        strides[i] = (int)t->strides[axes[i]];
    }
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&t->desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetTensorNdDescriptor(t->desc, t->type, t->nb_dims, dims, strides),
                     CUDNN_STATUS_SUCCESS);
}

/* Allocates a tensor of dims (n, c, d, h, w; d must be 1 when nb_dims == 4) laid out as layout,
 * every position NaN, and describes it.  Free with ref_tensor_free. */
static inline void ref_tensor_init(struct ref_tensor *t, cudnnDataType_t type, int nb_dims,
                                   const int dims[5], enum ref_layout layout, uint64_t *rng)
{
    memset(t, 0, sizeof *t);
    t->type = type;
    t->nb_dims = nb_dims;
    memcpy(t->dims, dims, sizeof t->dims);
    ref_layout_strides(t, layout, rng);
    t->span = 1;
    for (int i = 0; i < 5; i++)
        t->span += (size_t)(dims[i] - 1) * (size_t)t->strides[i];
    t->data = malloc(t->span * ref_type_size(type));
    ck_assert_ptr_nonnull(t->data);
    for (size_t i = 0; i < t->span; i++)
        ref_store(t->data, type, (long)i, NAN);
    ref_mark_elements(t);
    ref_snapshot(t);
    ref_describe(t);
}

static inline void ref_tensor_free(struct ref_tensor *t)
{
    cudnnDestroyTensorDescriptor(t->desc);
    free(t->data);
    free(t->before);
    free(t->is_element);
}

/* Sets every element to ref_value(rng, lo, hi) (gaps stay NaN). */
static inline void ref_fill(struct ref_tensor *t, uint64_t *rng, int lo, int hi)
{
    for (size_t i = 0; i < t->span; i++)
        if (t->is_element[i])
            ref_store(t->data, t->type, (long)i, ref_value(rng, lo, hi));
}

/* Sets every element to NaN. */
static inline void ref_fill_nan(struct ref_tensor *t)
{
    for (size_t i = 0; i < t->span; i++)
        if (t->is_element[i])
            ref_store(t->data, t->type, (long)i, NAN);
}

/* Returns 1 if no byte outside the elements changed since ref_tensor_init. */
static inline int ref_gaps_intact(const struct ref_tensor *t)
{
    size_t size = ref_type_size(t->type);
    for (size_t i = 0; i < t->span; i++)
        if (!t->is_element[i] &&
            memcmp((const char *)t->data + i * size, (const char *)t->before + i * size, size))
            return 0;
    return 1;
}

static inline size_t ref_count(const struct ref_tensor *t)
{
    return (size_t)t->dims[0] * t->dims[1] * t->dims[2] * t->dims[3] * t->dims[4];
}

/* Logical index of (n, c, d, h, w): row-major over the five axes. */
static inline size_t ref_index(const struct ref_tensor *t, int n, int c, int d, int h, int w)
{
    return ((((size_t)n * t->dims[1] + c) * t->dims[2] + d) * t->dims[3] + h) * t->dims[4] + w;
}

/* Absolute and relative tolerance for results stored as type (one rounding to the type plus
 * float arithmetic on the way). */
static inline double ref_tolerance(cudnnDataType_t type)
{
    switch (type) {
    case CUDNN_DATA_HALF: return 4e-3;
    case CUDNN_DATA_BFLOAT16: return 3e-2;
    default: return 1e-4;
    }
}

static inline int ref_close(cudnnDataType_t type, double got, double want)
{
    double tol = ref_tolerance(type);
    return fabs(got - want) <= tol + tol * fabs(want);
}

/* Asserts that every element of t is within tolerance of want[ref_index(...)] and that no gap
 * changed since ref_tensor_init. */
static inline void ref_expect(const struct ref_tensor *t, const double *want, const char *what)
{
    REF_FOR_EACH(t, n, c, d, h, w) {
        double got = ref_get(t, n, c, d, h, w);
        double expected = want[ref_index(t, n, c, d, h, w)];
        ck_assert_msg(ref_close(t->type, got, expected), "%s[%d,%d,%d,%d,%d] = %.9g, want %.9g",
                      what, n, c, d, h, w, got, expected);
    }
    ck_assert_msg(ref_gaps_intact(t), "%s: a gap between elements was written", what);
}

#endif
