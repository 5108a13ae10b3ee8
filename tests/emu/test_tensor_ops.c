/* Check suite for the emulation's element-wise tensor functions (cudnn_tensor_ops.c) and its
 * activation and op-tensor descriptors (cudnn_activation_desc.c).  Each result is compared with
 * a naive loop over (n, c, d, h, w) written here with explicit stride arithmetic (ref_tensor.h);
 * shapes, layouts (NCHW, NHWC, padded), ranks (4-d, 5-d), types (FLOAT, HALF, BFLOAT16) and
 * alpha/beta come from a generator seeded by the loop index.  beta == 0 runs use NaN-filled
 * outputs.  Tolerances: ref_tolerance (1e-4 FLOAT, 4e-3 HALF, 3e-2 BFLOAT16, abs + rel). */
#include "ref_tensor.h"

static cudnnHandle_t handle;

static void create_handle(void)
{
    ck_assert_int_eq(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
}

static void destroy_handle(void)
{
    ck_assert_int_eq(cudnnDestroy(handle), CUDNN_STATUS_SUCCESS);
}

static const cudnnDataType_t data_types[3] = {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF,
                                              CUDNN_DATA_BFLOAT16};

static uint64_t seed_for(int i)
{
    return 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
}

static enum ref_layout random_layout(uint64_t *rng)
{
    return (enum ref_layout)ref_int(rng, 0, REF_LAYOUTS - 1);
}

/* Random n, c, d, h, w (d == 1 for 4-d). */
static void random_dims(uint64_t *rng, int nb_dims, int dims[5])
{
    dims[0] = ref_int(rng, 1, 3);
    dims[1] = ref_int(rng, 1, 5);
    dims[2] = nb_dims == 5 ? ref_int(rng, 1, 3) : 1;
    dims[3] = ref_int(rng, 1, 5);
    dims[4] = ref_int(rng, 1, 5);
}

/* Dims that broadcast to dims: pattern 0 the same, 1 per channel, 2 one value, 3 random axes
 * of extent 1. */
static void broadcast_dims(uint64_t *rng, int pattern, const int dims[5], int out[5])
{
    for (int a = 0; a < 5; a++) {
        if (pattern == 0)
            out[a] = dims[a];
        else if (pattern == 1)
            out[a] = a == 1 ? dims[1] : 1;
        else if (pattern == 2)
            out[a] = 1;
        else
            out[a] = ref_int(rng, 0, 1) ? dims[a] : 1;
    }
}

static double *reference_for(const struct ref_tensor *t)
{
    double *want = malloc(ref_count(t) * sizeof *want);
    ck_assert_ptr_nonnull(want);
    return want;
}

/* A packed NCHW descriptor for the argument-checking tests; the caller destroys it. */
static cudnnTensorDescriptor_t packed_desc(cudnnDataType_t type, int nb_dims, const int *dims)
{
    cudnnTensorDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetTensorNdDescriptorEx(desc, CUDNN_TENSOR_NCHW, type, nb_dims, dims),
                     CUDNN_STATUS_SUCCESS);
    return desc;
}

/* Scratch memory for argument-checking calls, larger than any tensor they describe. */
static double scratch_a[512], scratch_b[512], scratch_c[512];

START_TEST(add_tensor_matches_reference)
{
    uint64_t rng = seed_for(_i);
    int nb = 4 + _i % 2, c_dims[5], a_dims[5];
    cudnnDataType_t type = data_types[(_i / 2) % 3];
    struct ref_tensor a, c;
    random_dims(&rng, nb, c_dims);
    broadcast_dims(&rng, (_i / 6) % 4, c_dims, a_dims);
    ref_tensor_init(&a, type, nb, a_dims, random_layout(&rng), &rng);
    ref_tensor_init(&c, type, nb, c_dims, random_layout(&rng), &rng);
    float alpha = (float)ref_value(&rng, -64, 64);
    float beta = _i % 4 == 0 ? 0.0f : (float)ref_value(&rng, -64, 64);
    ref_fill(&a, &rng, -255, 255);
    if (beta != 0.0f)
        ref_fill(&c, &rng, -255, 255);
    double *want = reference_for(&c);
    REF_FOR_EACH(&c, n, k, d, h, w) {
        double bias = ref_load(a.data, a.type, ref_offset_broadcast(&a, n, k, d, h, w));
        double prior = beta != 0.0f ? beta * ref_get(&c, n, k, d, h, w) : 0.0;
        want[ref_index(&c, n, k, d, h, w)] = alpha * bias + prior;
    }
    ck_assert_int_eq(cudnnAddTensor(handle, &alpha, a.desc, a.data, &beta, c.desc, c.data),
                     CUDNN_STATUS_SUCCESS);
    ref_expect(&c, want, "C");
    free(want);
    ref_tensor_free(&a);
    ref_tensor_free(&c);
}
END_TEST

START_TEST(add_tensor_rejects_bad_arguments)
{
    const int c4[4] = {2, 3, 2, 2}, bias4[4] = {1, 3, 1, 1}, wrong4[4] = {1, 2, 1, 1};
    const int c5[5] = {2, 3, 1, 2, 2}, c3[3] = {2, 3, 4};
    cudnnTensorDescriptor_t c = packed_desc(CUDNN_DATA_FLOAT, 4, c4);
    cudnnTensorDescriptor_t bias = packed_desc(CUDNN_DATA_FLOAT, 4, bias4);
    cudnnTensorDescriptor_t bias_half = packed_desc(CUDNN_DATA_HALF, 4, bias4);
    cudnnTensorDescriptor_t wrong = packed_desc(CUDNN_DATA_FLOAT, 4, wrong4);
    cudnnTensorDescriptor_t rank5 = packed_desc(CUDNN_DATA_FLOAT, 5, c5);
    cudnnTensorDescriptor_t rank3 = packed_desc(CUDNN_DATA_FLOAT, 3, c3);
    cudnnTensorDescriptor_t dbl = packed_desc(CUDNN_DATA_DOUBLE, 4, c4);
    cudnnTensorDescriptor_t unset;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    float one = 1.0f;
    void *A = scratch_a, *C = scratch_c;
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias, A, &one, c, C), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnAddTensor(NULL, &one, bias, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, NULL, bias, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias, A, NULL, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias, NULL, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias, A, &one, c, NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, NULL, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, unset, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias, A, &one, unset, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, bias_half, A, &one, c, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, wrong, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, c, A, &one, bias, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, rank5, A, &one, c, C), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, rank3, A, &one, rank3, C),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnAddTensor(handle, &one, dbl, A, &one, dbl, C),
                     CUDNN_STATUS_NOT_SUPPORTED);
    cudnnTensorDescriptor_t all[] = {c, bias, bias_half, wrong, rank5, rank3, dbl, unset};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cudnnDestroyTensorDescriptor(all[i]);
}
END_TEST

static const cudnnOpTensorOp_t all_ops[6] = {CUDNN_OP_TENSOR_ADD, CUDNN_OP_TENSOR_MUL,
                                             CUDNN_OP_TENSOR_MIN, CUDNN_OP_TENSOR_MAX,
                                             CUDNN_OP_TENSOR_SQRT, CUDNN_OP_TENSOR_NOT};

static double reference_op(cudnnOpTensorOp_t op, double a, double b)
{
    switch (op) {
    case CUDNN_OP_TENSOR_ADD: return a + b;
    case CUDNN_OP_TENSOR_MUL: return a * b;
    case CUDNN_OP_TENSOR_MIN: return a < b ? a : b;
    case CUDNN_OP_TENSOR_MAX: return a > b ? a : b;
    case CUDNN_OP_TENSOR_SQRT: return sqrt(a);
    default: return 1.0 - a;
    }
}

/* (A and B type, C type) rows of cuDNN's cudnnOpTensor table with a FLOAT compute type. */
static const cudnnDataType_t op_type_rows[7][2] = {
    {CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT},       {CUDNN_DATA_HALF, CUDNN_DATA_HALF},
    {CUDNN_DATA_BFLOAT16, CUDNN_DATA_BFLOAT16}, {CUDNN_DATA_FLOAT, CUDNN_DATA_HALF},
    {CUDNN_DATA_FLOAT, CUDNN_DATA_BFLOAT16},    {CUDNN_DATA_HALF, CUDNN_DATA_FLOAT},
    {CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT}};

static cudnnOpTensorDescriptor_t op_desc(cudnnOpTensorOp_t op, cudnnDataType_t compute,
                                         cudnnNanPropagation_t nan_opt)
{
    cudnnOpTensorDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateOpTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetOpTensorDescriptor(desc, op, compute, nan_opt), CUDNN_STATUS_SUCCESS);
    return desc;
}

START_TEST(op_tensor_matches_reference)
{
    uint64_t rng = seed_for(1000 + _i);
    cudnnOpTensorOp_t op = all_ops[_i % 6];
    const cudnnDataType_t *row = op_type_rows[(_i / 6) % 7];
    int nb = ref_int(&rng, 4, 5), c_dims[5], b_dims[5];
    struct ref_tensor a, b, c;
    random_dims(&rng, nb, c_dims);
    broadcast_dims(&rng, ref_int(&rng, 0, 3), c_dims, b_dims);
    ref_tensor_init(&a, row[0], nb, c_dims, random_layout(&rng), &rng);
    ref_tensor_init(&b, row[0], nb, b_dims, random_layout(&rng), &rng);
    ref_tensor_init(&c, row[1], nb, c_dims, random_layout(&rng), &rng);
    int unary_positive = op == CUDNN_OP_TENSOR_SQRT;
    float alpha1 = (float)ref_value(&rng, unary_positive ? 1 : -64, 64);
    float alpha2 = (float)ref_value(&rng, -64, 64);
    float beta = _i % 4 == 1 ? 0.0f : (float)ref_value(&rng, -64, 64);
    ref_fill(&a, &rng, unary_positive ? 0 : -255, 255);
    ref_fill(&b, &rng, -255, 255);
    if (beta != 0.0f)
        ref_fill(&c, &rng, -255, 255);
    double *want = reference_for(&c);
    REF_FOR_EACH(&c, n, k, d, h, w) {
        double x = alpha1 * ref_get(&a, n, k, d, h, w);
        double y = alpha2 * ref_load(b.data, b.type, ref_offset_broadcast(&b, n, k, d, h, w));
        double prior = beta != 0.0f ? beta * ref_get(&c, n, k, d, h, w) : 0.0;
        want[ref_index(&c, n, k, d, h, w)] = reference_op(op, x, y) + prior;
    }
    cudnnOpTensorDescriptor_t desc = op_desc(op, CUDNN_DATA_FLOAT, CUDNN_NOT_PROPAGATE_NAN);
    ck_assert_int_eq(cudnnOpTensor(handle, desc, &alpha1, a.desc, a.data, &alpha2, b.desc, b.data,
                                   &beta, c.desc, c.data),
                     CUDNN_STATUS_SUCCESS);
    ref_expect(&c, want, "C");
    cudnnDestroyOpTensorDescriptor(desc);
    free(want);
    ref_tensor_free(&a);
    ref_tensor_free(&b);
    ref_tensor_free(&c);
}
END_TEST

/* MAX over A = {NaN, 1, NaN, 2}, B = {1, NaN, NaN, 3} into C. */
static void run_max_with_nans(cudnnNanPropagation_t nan_opt, float C[4])
{
    const int dims[4] = {1, 1, 1, 4};
    float A[4] = {NAN, 1.0f, NAN, 2.0f}, B[4] = {1.0f, NAN, NAN, 3.0f}, one = 1.0f, zero = 0.0f;
    cudnnTensorDescriptor_t t = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    cudnnOpTensorDescriptor_t desc = op_desc(CUDNN_OP_TENSOR_MAX, CUDNN_DATA_FLOAT, nan_opt);
    ck_assert_int_eq(cudnnOpTensor(handle, desc, &one, t, A, &one, t, B, &zero, t, C),
                     CUDNN_STATUS_SUCCESS);
    cudnnDestroyOpTensorDescriptor(desc);
    cudnnDestroyTensorDescriptor(t);
}

START_TEST(op_tensor_min_max_follow_nan_option)
{
    float C[4];
    run_max_with_nans(CUDNN_NOT_PROPAGATE_NAN, C);
    ck_assert(C[0] == 1.0f && C[1] == 1.0f && isnan(C[2]) && C[3] == 3.0f);
    run_max_with_nans(CUDNN_PROPAGATE_NAN, C);
    ck_assert(isnan(C[0]) && isnan(C[1]) && isnan(C[2]) && C[3] == 3.0f);
}
END_TEST

START_TEST(op_tensor_unary_ignores_b)
{
    const int dims[4] = {1, 2, 1, 2};
    float A[4] = {4.0f, 9.0f, 0.25f, 0.0f}, C[4] = {NAN, NAN, NAN, NAN}, one = 1.0f, zero = 0.0f;
    cudnnTensorDescriptor_t t = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    cudnnOpTensorDescriptor_t sqrt_op = op_desc(CUDNN_OP_TENSOR_SQRT, CUDNN_DATA_FLOAT,
                                                CUDNN_NOT_PROPAGATE_NAN);
    cudnnOpTensorDescriptor_t not_op = op_desc(CUDNN_OP_TENSOR_NOT, CUDNN_DATA_FLOAT,
                                               CUDNN_NOT_PROPAGATE_NAN);
    ck_assert_int_eq(cudnnOpTensor(handle, sqrt_op, &one, t, A, &one, NULL, NULL, &zero, t, C),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(C[0] == 2.0f && C[1] == 3.0f && C[2] == 0.5f && C[3] == 0.0f);
    ck_assert_int_eq(cudnnOpTensor(handle, not_op, &one, t, A, &one, NULL, NULL, &zero, t, C),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(C[0] == -3.0f && C[1] == -8.0f && C[2] == 0.75f && C[3] == 1.0f);
    cudnnDestroyOpTensorDescriptor(sqrt_op);
    cudnnDestroyOpTensorDescriptor(not_op);
    cudnnDestroyTensorDescriptor(t);
}
END_TEST

/* Runs ADD with compute type compute over A, B, C of the given types (shapes a, b, c). */
static cudnnStatus_t try_op(cudnnDataType_t compute, cudnnDataType_t ta, const int *a,
                            cudnnDataType_t tb, const int *b, cudnnDataType_t tc, const int *c,
                            int nb_dims)
{
    cudnnTensorDescriptor_t da = packed_desc(ta, nb_dims, a), db = packed_desc(tb, nb_dims, b);
    cudnnTensorDescriptor_t dc = packed_desc(tc, nb_dims, c);
    cudnnOpTensorDescriptor_t op = op_desc(CUDNN_OP_TENSOR_ADD, compute, CUDNN_NOT_PROPAGATE_NAN);
    float one = 1.0f;
    cudnnStatus_t status = cudnnOpTensor(handle, op, &one, da, scratch_a, &one, db, scratch_b,
                                         &one, dc, scratch_c);
    cudnnDestroyOpTensorDescriptor(op);
    cudnnDestroyTensorDescriptor(da);
    cudnnDestroyTensorDescriptor(db);
    cudnnDestroyTensorDescriptor(dc);
    return status;
}

START_TEST(op_tensor_rejects_bad_arguments)
{
    const int full[4] = {2, 3, 2, 2}, chan[4] = {1, 3, 1, 1}, wrong[4] = {1, 2, 1, 1};
    const int full6[6] = {1, 2, 1, 2, 1, 2};
    const cudnnDataType_t F = CUDNN_DATA_FLOAT, H = CUDNN_DATA_HALF, D = CUDNN_DATA_DOUBLE;
    const cudnnDataType_t I8 = CUDNN_DATA_INT8, BF = CUDNN_DATA_BFLOAT16;
    ck_assert_int_eq(try_op(F, F, full, F, chan, F, full, 4), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(try_op(F, F, chan, F, full, F, full, 4), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(F, F, full, F, wrong, F, full, 4), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(H, H, full, H, full, H, full, 4), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(F, H, full, F, full, H, full, 4), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(F, H, full, H, full, BF, full, 4), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(F, F, full6, F, full6, F, full6, 6), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(try_op(D, D, full, D, full, D, full, 4), CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(try_op(F, I8, full, I8, full, F, full, 4), CUDNN_STATUS_NOT_SUPPORTED);
}
END_TEST

START_TEST(op_tensor_rejects_bad_pointers)
{
    const int dims[4] = {1, 2, 2, 2};
    cudnnTensorDescriptor_t t = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    cudnnOpTensorDescriptor_t add = op_desc(CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT,
                                            CUDNN_NOT_PROPAGATE_NAN);
    cudnnOpTensorDescriptor_t unset;
    ck_assert_int_eq(cudnnCreateOpTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    float one = 1.0f;
    void *A = scratch_a, *B = scratch_b, *C = scratch_c;
    ck_assert_int_eq(cudnnOpTensor(NULL, add, &one, t, A, &one, t, B, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, NULL, &one, t, A, &one, t, B, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, unset, &one, t, A, &one, t, B, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, add, &one, t, A, &one, t, NULL, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, add, &one, t, A, &one, NULL, B, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, add, NULL, t, A, &one, t, B, &one, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, add, &one, t, A, &one, t, B, NULL, t, C),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnOpTensor(handle, add, &one, t, A, &one, t, B, &one, t, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyOpTensorDescriptor(add);
    cudnnDestroyOpTensorDescriptor(unset);
    cudnnDestroyTensorDescriptor(t);
}
END_TEST

START_TEST(scale_tensor_matches_reference)
{
    uint64_t rng = seed_for(2000 + _i);
    int nb = 4 + _i % 2, dims[5];
    struct ref_tensor y;
    random_dims(&rng, nb, dims);
    ref_tensor_init(&y, data_types[(_i / 2) % 3], nb, dims, random_layout(&rng), &rng);
    ref_fill(&y, &rng, -255, 255);
    float alpha = (float)ref_value(&rng, -64, 64);
    double *want = reference_for(&y);
    REF_FOR_EACH(&y, n, c, d, h, w)
        want[ref_index(&y, n, c, d, h, w)] = alpha * ref_get(&y, n, c, d, h, w);
    ck_assert_int_eq(cudnnScaleTensor(handle, y.desc, y.data, &alpha), CUDNN_STATUS_SUCCESS);
    ref_expect(&y, want, "y");
    free(want);
    ref_tensor_free(&y);
}
END_TEST

START_TEST(set_tensor_takes_value_of_tensor_type)
{
    uint64_t rng = seed_for(3000 + _i);
    int nb = 4 + _i % 2, dims[5];
    cudnnDataType_t type = data_types[(_i / 2) % 3];
    struct ref_tensor y;
    random_dims(&rng, nb, dims);
    ref_tensor_init(&y, type, nb, dims, random_layout(&rng), &rng);
    double value = ref_value(&rng, -255, 255);
    union { float f; uint16_t bits; } stored;
    if (type == CUDNN_DATA_FLOAT)
        stored.f = (float)value;
    else
        stored.bits = type == CUDNN_DATA_HALF ? ref_half_bits(value) : ref_bf16_bits(value);
    double *want = reference_for(&y);
    for (size_t i = 0; i < ref_count(&y); i++)
        want[i] = value;
    ck_assert_int_eq(cudnnSetTensor(handle, y.desc, y.data, &stored), CUDNN_STATUS_SUCCESS);
    ref_expect(&y, want, "y");
    free(want);
    ref_tensor_free(&y);
}
END_TEST

START_TEST(set_and_scale_reject_bad_arguments)
{
    const int dims[4] = {1, 2, 2, 2};
    cudnnTensorDescriptor_t t = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    cudnnTensorDescriptor_t dbl = packed_desc(CUDNN_DATA_DOUBLE, 4, dims);
    cudnnTensorDescriptor_t unset;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    float one = 1.0f;
    void *y = scratch_c;
    ck_assert_int_eq(cudnnSetTensor(NULL, t, y, &one), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetTensor(handle, unset, y, &one), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetTensor(handle, t, NULL, &one), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetTensor(handle, t, y, NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetTensor(handle, dbl, y, &one), CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnScaleTensor(NULL, t, y, &one), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnScaleTensor(handle, NULL, y, &one), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnScaleTensor(handle, t, y, NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnScaleTensor(handle, dbl, y, &one), CUDNN_STATUS_NOT_SUPPORTED);
    cudnnDestroyTensorDescriptor(t);
    cudnnDestroyTensorDescriptor(dbl);
    cudnnDestroyTensorDescriptor(unset);
}
END_TEST

static const cudnnActivationMode_t computed_modes[6] = {
    CUDNN_ACTIVATION_SIGMOID, CUDNN_ACTIVATION_RELU, CUDNN_ACTIVATION_TANH,
    CUDNN_ACTIVATION_CLIPPED_RELU, CUDNN_ACTIVATION_ELU, CUDNN_ACTIVATION_SWISH};

static const double clip_ceiling = 2.5, elu_alpha = 0.75, swish_beta = 1.5;

static double coef_for(cudnnActivationMode_t mode)
{
    return mode == CUDNN_ACTIVATION_ELU ? elu_alpha : clip_ceiling;
}

static cudnnActivationDescriptor_t activation_desc(cudnnActivationMode_t mode)
{
    cudnnActivationDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateActivationDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetActivationDescriptor(desc, mode, CUDNN_NOT_PROPAGATE_NAN,
                                                  coef_for(mode)),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetActivationDescriptorSwishBeta(desc, swish_beta), CUDNN_STATUS_SUCCESS);
    return desc;
}

static double reference_activation(cudnnActivationMode_t mode, double x)
{
    switch (mode) {
    case CUDNN_ACTIVATION_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case CUDNN_ACTIVATION_RELU: return x > 0.0 ? x : 0.0;
    case CUDNN_ACTIVATION_TANH: return tanh(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return x <= 0.0 ? 0.0 : x < clip_ceiling ? x : clip_ceiling;
    case CUDNN_ACTIVATION_ELU: return x > 0.0 ? x : elu_alpha * (exp(x) - 1.0);
    default: return x / (1.0 + exp(-swish_beta * x));
    }
}

static double reference_slope(cudnnActivationMode_t mode, double x)
{
    double s;
    switch (mode) {
    case CUDNN_ACTIVATION_SIGMOID: s = 1.0 / (1.0 + exp(-x)); return s * (1.0 - s);
    case CUDNN_ACTIVATION_RELU: return x > 0.0 ? 1.0 : 0.0;
    case CUDNN_ACTIVATION_TANH: return 1.0 - tanh(x) * tanh(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return x > 0.0 && x < clip_ceiling ? 1.0 : 0.0;
    case CUDNN_ACTIVATION_ELU: return x > 0.0 ? 1.0 : elu_alpha * exp(x);
    default:
        s = 1.0 / (1.0 + exp(-swish_beta * x));
        return s + swish_beta * x * s * (1.0 - s);
    }
}

START_TEST(activation_forward_matches_reference)
{
    uint64_t rng = seed_for(4000 + _i);
    cudnnActivationMode_t mode = computed_modes[_i % 6];
    int nb = ref_int(&rng, 4, 5), dims[5];
    cudnnDataType_t type = data_types[(_i / 6) % 3];
    struct ref_tensor x, y;
    random_dims(&rng, nb, dims);
    ref_tensor_init(&x, type, nb, dims, random_layout(&rng), &rng);
    ref_tensor_init(&y, type, nb, dims, random_layout(&rng), &rng);
    float alpha = (float)ref_value(&rng, -64, 64);
    float beta = _i % 4 == 2 ? 0.0f : (float)ref_value(&rng, -64, 64);
    ref_fill(&x, &rng, -255, 255);
    if (beta != 0.0f)
        ref_fill(&y, &rng, -255, 255);
    double *want = reference_for(&y);
    REF_FOR_EACH(&y, n, c, d, h, w) {
        double prior = beta != 0.0f ? beta * ref_get(&y, n, c, d, h, w) : 0.0;
        want[ref_index(&y, n, c, d, h, w)] =
            alpha * reference_activation(mode, ref_get(&x, n, c, d, h, w)) + prior;
    }
    cudnnActivationDescriptor_t act = activation_desc(mode);
    ck_assert_int_eq(cudnnActivationForward(handle, act, &alpha, x.desc, x.data, &beta, y.desc,
                                            y.data),
                     CUDNN_STATUS_SUCCESS);
    ref_expect(&y, want, "y");
    cudnnDestroyActivationDescriptor(act);
    free(want);
    ref_tensor_free(&x);
    ref_tensor_free(&y);
}
END_TEST

START_TEST(activation_forward_in_place)
{
    uint64_t rng = seed_for(5000 + _i);
    cudnnActivationMode_t mode = computed_modes[_i % 6];
    int nb = ref_int(&rng, 4, 5), dims[5];
    struct ref_tensor x;
    random_dims(&rng, nb, dims);
    ref_tensor_init(&x, data_types[_i % 3], nb, dims, random_layout(&rng), &rng);
    ref_fill(&x, &rng, -255, 255);
    float alpha = (float)ref_value(&rng, -64, 64), beta = (float)ref_value(&rng, 1, 64);
    double *want = reference_for(&x);
    REF_FOR_EACH(&x, n, c, d, h, w) {
        double v = ref_get(&x, n, c, d, h, w);
        want[ref_index(&x, n, c, d, h, w)] = alpha * reference_activation(mode, v) + beta * v;
    }
    cudnnActivationDescriptor_t act = activation_desc(mode);
    ck_assert_int_eq(cudnnActivationForward(handle, act, &alpha, x.desc, x.data, &beta, x.desc,
                                            x.data),
                     CUDNN_STATUS_SUCCESS);
    ref_expect(&x, want, "x");
    cudnnDestroyActivationDescriptor(act);
    free(want);
    ref_tensor_free(&x);
}
END_TEST

START_TEST(activation_backward_matches_reference)
{
    uint64_t rng = seed_for(6000 + _i);
    cudnnActivationMode_t mode = computed_modes[_i % 6];
    int nb = ref_int(&rng, 4, 5), dims[5];
    cudnnDataType_t type = data_types[(_i / 6) % 3];
    struct ref_tensor x, y, dy, dx;
    random_dims(&rng, nb, dims);
    ref_tensor_init(&x, type, nb, dims, random_layout(&rng), &rng);
    ref_tensor_init(&y, type, nb, dims, random_layout(&rng), &rng);
    ref_tensor_init(&dy, type, nb, dims, random_layout(&rng), &rng);
    ref_tensor_init(&dx, type, nb, dims, random_layout(&rng), &rng);
    float alpha = (float)ref_value(&rng, -64, 64);
    float beta = _i % 4 == 3 ? 0.0f : (float)ref_value(&rng, -64, 64), one = 1.0f, zero = 0.0f;
    ref_fill(&x, &rng, -255, 255);
    ref_fill(&dy, &rng, -255, 255);
    if (beta != 0.0f)
        ref_fill(&dx, &rng, -255, 255);
    double *want = reference_for(&dx);
    REF_FOR_EACH(&dx, n, c, d, h, w) {
        double slope = reference_slope(mode, ref_get(&x, n, c, d, h, w));
        double prior = beta != 0.0f ? beta * ref_get(&dx, n, c, d, h, w) : 0.0;
        want[ref_index(&dx, n, c, d, h, w)] = alpha * ref_get(&dy, n, c, d, h, w) * slope + prior;
    }
    cudnnActivationDescriptor_t act = activation_desc(mode);
    ck_assert_int_eq(cudnnActivationForward(handle, act, &one, x.desc, x.data, &zero, y.desc,
                                            y.data),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnActivationBackward(handle, act, &alpha, y.desc, y.data, dy.desc, dy.data,
                                             x.desc, x.data, &beta, dx.desc, dx.data),
                     CUDNN_STATUS_SUCCESS);
    ref_expect(&dx, want, "dx");
    cudnnDestroyActivationDescriptor(act);
    free(want);
    ref_tensor_free(&x);
    ref_tensor_free(&y);
    ref_tensor_free(&dy);
    ref_tensor_free(&dx);
}
END_TEST

START_TEST(activation_rejects_bad_arguments)
{
    const int dims[4] = {1, 2, 2, 3}, other[4] = {1, 2, 3, 2};
    cudnnTensorDescriptor_t t = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    cudnnTensorDescriptor_t nhwc, half = packed_desc(CUDNN_DATA_HALF, 4, dims);
    cudnnTensorDescriptor_t reshaped = packed_desc(CUDNN_DATA_FLOAT, 4, other);
    cudnnTensorDescriptor_t dbl = packed_desc(CUDNN_DATA_DOUBLE, 4, dims);
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&nhwc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetTensor4dDescriptor(nhwc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 2,
                                                3),
                     CUDNN_STATUS_SUCCESS);
    cudnnActivationDescriptor_t relu = activation_desc(CUDNN_ACTIVATION_RELU);
    cudnnActivationDescriptor_t identity = activation_desc(CUDNN_ACTIVATION_IDENTITY), unset;
    ck_assert_int_eq(cudnnCreateActivationDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    float one = 1.0f;
    void *x = scratch_a, *y = scratch_c;
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, t, x, &one, nhwc, y),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, t, x, &one, nhwc, x),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(NULL, relu, &one, t, x, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, unset, &one, t, x, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, identity, &one, t, x, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, t, x, &one, half, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, t, x, &one, reshaped, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, NULL, t, x, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, t, NULL, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationForward(handle, relu, &one, dbl, x, &one, dbl, y),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnActivationBackward(handle, identity, &one, t, y, t, y, t, x, &one, t, x),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationBackward(handle, relu, &one, t, y, t, y, half, x, &one, t, x),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationBackward(handle, relu, &one, t, y, t, y, t, NULL, &one, t, x),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnActivationBackward(handle, relu, &one, t, y, nhwc, y, t, x, &one, t, y),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyActivationDescriptor(relu);
    cudnnDestroyActivationDescriptor(identity);
    cudnnDestroyActivationDescriptor(unset);
    cudnnTensorDescriptor_t all[] = {t, nhwc, half, reshaped, dbl};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cudnnDestroyTensorDescriptor(all[i]);
}
END_TEST

START_TEST(activation_descriptor_round_trip)
{
    cudnnActivationDescriptor_t desc;
    cudnnActivationMode_t mode;
    cudnnNanPropagation_t nan_opt;
    double coef, beta;
    ck_assert_int_eq(cudnnCreateActivationDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetActivationDescriptor(desc, &mode, &nan_opt, &coef),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetActivationDescriptorSwishBeta(desc, &beta), CUDNN_STATUS_SUCCESS);
    ck_assert(beta == 1.0);
    ck_assert_int_eq(cudnnSetActivationDescriptor(desc, CUDNN_ACTIVATION_CLIPPED_RELU,
                                                  CUDNN_PROPAGATE_NAN, 6.0),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetActivationDescriptor(desc, &mode, &nan_opt, &coef),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(mode == CUDNN_ACTIVATION_CLIPPED_RELU && nan_opt == CUDNN_PROPAGATE_NAN &&
              coef == 6.0);
    ck_assert_int_eq(cudnnSetActivationDescriptorSwishBeta(desc, 0.5), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetActivationDescriptorSwishBeta(desc, &beta), CUDNN_STATUS_SUCCESS);
    ck_assert(beta == 0.5);
    ck_assert_int_eq(cudnnSetActivationDescriptor(desc, (cudnnActivationMode_t)42,
                                                  CUDNN_PROPAGATE_NAN, 0.0),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetActivationDescriptor(desc, CUDNN_ACTIVATION_RELU,
                                                  (cudnnNanPropagation_t)7, 0.0),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetActivationDescriptor(desc, &mode, NULL, &coef),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetActivationDescriptor(NULL, CUDNN_ACTIVATION_RELU,
                                                  CUDNN_PROPAGATE_NAN, 0.0),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnCreateActivationDescriptor(NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDestroyActivationDescriptor(desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDestroyActivationDescriptor(NULL), CUDNN_STATUS_SUCCESS);
}
END_TEST

START_TEST(op_tensor_descriptor_round_trip)
{
    cudnnOpTensorDescriptor_t desc;
    cudnnOpTensorOp_t op;
    cudnnDataType_t type;
    cudnnNanPropagation_t nan_opt;
    ck_assert_int_eq(cudnnCreateOpTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetOpTensorDescriptor(desc, &op, &type, &nan_opt),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetOpTensorDescriptor(desc, CUDNN_OP_TENSOR_MAX, CUDNN_DATA_FLOAT,
                                                CUDNN_PROPAGATE_NAN),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetOpTensorDescriptor(desc, &op, &type, &nan_opt), CUDNN_STATUS_SUCCESS);
    ck_assert(op == CUDNN_OP_TENSOR_MAX && type == CUDNN_DATA_FLOAT &&
              nan_opt == CUDNN_PROPAGATE_NAN);
    ck_assert_int_eq(cudnnSetOpTensorDescriptor(desc, (cudnnOpTensorOp_t)9, CUDNN_DATA_FLOAT,
                                                CUDNN_PROPAGATE_NAN),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetOpTensorDescriptor(desc, NULL, &type, &nan_opt),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnCreateOpTensorDescriptor(NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDestroyOpTensorDescriptor(desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDestroyOpTensorDescriptor(NULL), CUDNN_STATUS_SUCCESS);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, create_handle, destroy_handle);
    return tc;
}

static Suite *tensor_ops_suite(void)
{
    Suite *s = suite_create("emu_tensor_ops");
    TCase *add = tcase("add_tensor"), *op = tcase("op_tensor"), *whole = tcase("set_scale");
    TCase *act = tcase("activation"), *desc = tcase("descriptors");
    tcase_add_loop_test(add, add_tensor_matches_reference, 0, 48);
    tcase_add_test(add, add_tensor_rejects_bad_arguments);
    tcase_add_loop_test(op, op_tensor_matches_reference, 0, 84);
    tcase_add_test(op, op_tensor_min_max_follow_nan_option);
    tcase_add_test(op, op_tensor_unary_ignores_b);
    tcase_add_test(op, op_tensor_rejects_bad_arguments);
    tcase_add_test(op, op_tensor_rejects_bad_pointers);
    tcase_add_loop_test(whole, scale_tensor_matches_reference, 0, 12);
    tcase_add_loop_test(whole, set_tensor_takes_value_of_tensor_type, 0, 12);
    tcase_add_test(whole, set_and_scale_reject_bad_arguments);
    tcase_add_loop_test(act, activation_forward_matches_reference, 0, 36);
    tcase_add_loop_test(act, activation_forward_in_place, 0, 12);
    tcase_add_loop_test(act, activation_backward_matches_reference, 0, 36);
    tcase_add_test(act, activation_rejects_bad_arguments);
    tcase_add_test(desc, activation_descriptor_round_trip);
    tcase_add_test(desc, op_tensor_descriptor_round_trip);
    suite_add_tcase(s, add);
    suite_add_tcase(s, op);
    suite_add_tcase(s, whole);
    suite_add_tcase(s, act);
    suite_add_tcase(s, desc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(tensor_ops_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
