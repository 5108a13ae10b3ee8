/* Check suite for the emulation's batch normalization (cudnn_batchnorm.c): the derived parameter
 * descriptor, forward inference in the three modes, forward training (saved statistics, running
 * mean and unbiased running variance), backward (with and without saved statistics), the Ex
 * forms and their size queries, and argument checking.  Each result is compared with naive
 * loops over (n, c, d, h, w) written here with explicit stride arithmetic (ref_tensor.h) and
 * double arithmetic; shapes, layouts (NCHW, NHWC, padded; x and y independent), ranks (4-d,
 * 5-d), types (FLOAT, HALF, BFLOAT16 data with FLOAT parameters) and alpha/beta come from a
 * generator seeded by the loop index; beta == 0 runs use NaN-filled outputs.  Tolerances:
 * ref_tolerance of the output's type (1e-4 FLOAT, 4e-3 HALF, 3e-2 BFLOAT16, abs + rel). */
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
static const cudnnBatchNormMode_t modes[3] = {CUDNN_BATCHNORM_PER_ACTIVATION,
                                              CUDNN_BATCHNORM_SPATIAL,
                                              CUDNN_BATCHNORM_SPATIAL_PERSISTENT};

static uint64_t seed_for(int i)
{
    return 0x2545f4914f6cdd1dull * (uint64_t)(i + 7);
}

static enum ref_layout random_layout(uint64_t *rng)
{
    return (enum ref_layout)ref_int(rng, 0, REF_LAYOUTS - 1);
}

/* Random n (at least min_batch), c, d, h, w (d == 1 for 4-d). */
static void random_dims(uint64_t *rng, int nb_dims, int min_batch, int dims[5])
{
    dims[0] = ref_int(rng, min_batch, 3);
    dims[1] = ref_int(rng, 1, 4);
    dims[2] = nb_dims == 5 ? ref_int(rng, 1, 3) : 1;
    dims[3] = ref_int(rng, 1, 4);
    dims[4] = ref_int(rng, 1, 4);
}

static double *reference_for(const struct ref_tensor *t)
{
    double *want = calloc(ref_count(t), sizeof *want);
    ck_assert_ptr_nonnull(want);
    return want;
}

/* A FLOAT parameter tensor of the shape mode gives x (1xCx1x1 or 1xCxHxW, 4-d or 5-d). */
static void init_param(struct ref_tensor *p, cudnnBatchNormMode_t mode,
                       const struct ref_tensor *x, uint64_t *rng)
{
    int dims[5] = {1, x->dims[1], 1, 1, 1};
    for (int a = 2; a < 5 && mode == CUDNN_BATCHNORM_PER_ACTIVATION; a++)
        dims[a] = x->dims[a];
    ref_tensor_init(p, CUDNN_DATA_FLOAT, x->nb_dims, dims, REF_NCHW, rng);
}

/* The parameter of x element (n, c, d, h, w), read from p. */
static double param_get(const struct ref_tensor *p, int c, int d, int h, int w)
{
    return ref_load(p->data, p->type, ref_offset_broadcast(p, 0, c, d, h, w));
}

/* Logical index in p of the parameter of x element (n, c, d, h, w). */
static size_t param_slot(const struct ref_tensor *p, int c, int d, int h, int w)
{
    return ref_index(p, 0, c, p->dims[2] == 1 ? 0 : d, p->dims[3] == 1 ? 0 : h,
                     p->dims[4] == 1 ? 0 : w);
}

/* Per-parameter mean, biased variance and sample count of x, by plain loops. */
static void reference_statistics(const struct ref_tensor *x, const struct ref_tensor *p,
                                 double *mean, double *var, double *samples)
{
    size_t slots = ref_count(p);
    for (size_t s = 0; s < slots; s++)
        mean[s] = var[s] = samples[s] = 0.0;
    REF_FOR_EACH(x, n, c, d, h, w) {
        size_t s = param_slot(p, c, d, h, w);
        mean[s] += ref_get(x, n, c, d, h, w);
        samples[s] += 1.0;
    }
    for (size_t s = 0; s < slots; s++)
        mean[s] /= samples[s];
    REF_FOR_EACH(x, n, c, d, h, w) {
        size_t s = param_slot(p, c, d, h, w);
        double dev = ref_get(x, n, c, d, h, w) - mean[s];
        var[s] += dev * dev;
    }
    for (size_t s = 0; s < slots; s++)
        var[s] /= samples[s];
}

/* A parameter tensor's values as doubles in logical order (caller frees). */
static double *param_values(const struct ref_tensor *p)
{
    double *values = reference_for(p);
    REF_FOR_EACH(p, n, c, d, h, w)
        values[ref_index(p, n, c, d, h, w)] = ref_get(p, n, c, d, h, w);
    return values;
}

/* Everything one batch normalization case works on. */
struct bn_case {
    cudnnBatchNormMode_t mode;
    struct ref_tensor x, y, scale, bias, mean, var;
    float alpha, beta;
    double epsilon;
};

/* Builds a random case: x filled, y filled unless beta == 0 (then NaN), parameters filled with
 * variances > 0.  min_batch bounds N from below. */
static void init_case(struct bn_case *t, int i, uint64_t *rng, int min_batch)
{
    static const double epsilons[4] = {1e-5, 1e-3, 0.25, 2e-2};
    int dims[5], nb = 4 + (i / 9) % 2;
    t->mode = modes[i % 3];
    random_dims(rng, nb, min_batch, dims);
    ref_tensor_init(&t->x, data_types[(i / 3) % 3], nb, dims, random_layout(rng), rng);
    ref_tensor_init(&t->y, t->x.type, nb, dims, random_layout(rng), rng);
    init_param(&t->scale, t->mode, &t->x, rng);
    init_param(&t->bias, t->mode, &t->x, rng);
    init_param(&t->mean, t->mode, &t->x, rng);
    init_param(&t->var, t->mode, &t->x, rng);
    t->alpha = (float)ref_value(rng, -64, 64);
    t->beta = i % 4 == 0 ? 0.0f : (float)ref_value(rng, -64, 64);
    t->epsilon = epsilons[ref_int(rng, 0, 3)];
    ref_fill(&t->x, rng, -255, 255);
    if (t->beta != 0.0f)
        ref_fill(&t->y, rng, -255, 255);
    ref_fill(&t->scale, rng, -64, 64);
    ref_fill(&t->bias, rng, -128, 128);
    ref_fill(&t->mean, rng, -128, 128);
    ref_fill(&t->var, rng, 1, 255);
}

static void free_case(struct bn_case *t)
{
    struct ref_tensor *all[] = {&t->x, &t->y, &t->scale, &t->bias, &t->mean, &t->var};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ref_tensor_free(all[i]);
}

/* want = alpha * (scale * (x - mean) * inv_std + bias) + beta * out, inv_std per slot; out is
 * the tensor the result goes to (y, or x in place), read before the call. */
static double *reference_normalized(const struct bn_case *t, const struct ref_tensor *out,
                                    const double *mean, const double *inv_std)
{
    double *want = reference_for(out);
    REF_FOR_EACH(&t->x, n, c, d, h, w) {
        size_t s = param_slot(&t->scale, c, d, h, w);
        double xhat = (ref_get(&t->x, n, c, d, h, w) - mean[s]) * inv_std[s];
        double v = param_get(&t->scale, c, d, h, w) * xhat + param_get(&t->bias, c, d, h, w);
        double prior = t->beta != 0.0f ? t->beta * ref_get(out, n, c, d, h, w) : 0.0;
        want[ref_index(out, n, c, d, h, w)] = t->alpha * v + prior;
    }
    return want;
}

static cudnnStatus_t run_inference(struct bn_case *t, void *y, cudnnTensorDescriptor_t y_desc)
{
    return cudnnBatchNormalizationForwardInference(
        handle, t->mode, &t->alpha, &t->beta, t->x.desc, t->x.data, y_desc, y, t->scale.desc,
        t->scale.data, t->bias.data, t->mean.data, t->var.data, t->epsilon);
}

/* Inference reference (the given mean and variance, not the batch's) for output out. */
static double *reference_inference(const struct bn_case *t, const struct ref_tensor *out)
{
    double *mean = param_values(&t->mean), *inv_std = param_values(&t->var);
    for (size_t s = 0; s < ref_count(&t->var); s++)
        inv_std[s] = 1.0 / sqrt(inv_std[s] + t->epsilon);
    double *want = reference_normalized(t, out, mean, inv_std);
    free(mean);
    free(inv_std);
    return want;
}

START_TEST(derive_gives_parameter_shape)
{
    uint64_t rng = seed_for(_i);
    cudnnBatchNormMode_t mode = modes[_i % 3];
    int nb = 4 + (_i / 3) % 2, dims[5], got_dims[5], got_strides[5], got_nb;
    struct ref_tensor x, expected;
    cudnnDataType_t got_type;
    cudnnTensorDescriptor_t derived;
    random_dims(&rng, nb, 1, dims);
    ref_tensor_init(&x, data_types[(_i / 6) % 3], nb, dims, random_layout(&rng), &rng);
    init_param(&expected, mode, &x, &rng);
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&derived), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(derived, x.desc, mode), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetTensorNdDescriptor(derived, 5, &got_type, &got_nb, got_dims,
                                                got_strides),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(got_type, CUDNN_DATA_FLOAT);
    ck_assert_int_eq(got_nb, nb);
    for (int i = 0, axis = 0; axis < 5; axis++) {
        if (axis == 2 && nb == 4)
            continue;
        ck_assert_int_eq(got_dims[i], expected.dims[axis]);
        ck_assert_int_eq(got_strides[i], expected.strides[axis]);
        i++;
    }
    cudnnDestroyTensorDescriptor(derived);
    ref_tensor_free(&x);
    ref_tensor_free(&expected);
}
END_TEST

static cudnnTensorDescriptor_t packed_desc(cudnnDataType_t type, int nb_dims, const int *dims)
{
    cudnnTensorDescriptor_t desc;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&desc), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetTensorNdDescriptorEx(desc, CUDNN_TENSOR_NCHW, type, nb_dims, dims),
                     CUDNN_STATUS_SUCCESS);
    return desc;
}

START_TEST(derive_rejects_bad_arguments)
{
    const int dims4[4] = {2, 3, 2, 2}, dims3[3] = {2, 3, 4};
    cudnnTensorDescriptor_t x = packed_desc(CUDNN_DATA_HALF, 4, dims4);
    cudnnTensorDescriptor_t x3 = packed_desc(CUDNN_DATA_FLOAT, 3, dims3), derived, unset;
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&derived), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(derived, x, (cudnnBatchNormMode_t)5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(derived, x3, CUDNN_BATCHNORM_SPATIAL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(derived, unset, CUDNN_BATCHNORM_SPATIAL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(derived, NULL, CUDNN_BATCHNORM_SPATIAL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(NULL, x, CUDNN_BATCHNORM_SPATIAL),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnTensorDescriptor_t all[] = {x, x3, derived, unset};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cudnnDestroyTensorDescriptor(all[i]);
}
END_TEST

START_TEST(inference_matches_reference)
{
    uint64_t rng = seed_for(100 + _i);
    struct bn_case t;
    init_case(&t, _i, &rng, 1);
    if (_i % 5 == 1)
        t.epsilon = CUDNN_BN_MIN_EPSILON;
    double *want = reference_inference(&t, &t.y);
    ck_assert_int_eq(run_inference(&t, t.y.data, t.y.desc), CUDNN_STATUS_SUCCESS);
    ref_expect(&t.y, want, "y");
    free(want);
    free_case(&t);
}
END_TEST

START_TEST(inference_in_place)
{
    uint64_t rng = seed_for(200 + _i);
    struct bn_case t;
    init_case(&t, _i, &rng, 1);
    t.beta = (float)ref_value(&rng, 1, 64);
    double *want = reference_inference(&t, &t.x);
    ck_assert_int_eq(run_inference(&t, t.x.data, t.x.desc), CUDNN_STATUS_SUCCESS);
    ref_expect(&t.x, want, "x");
    free(want);
    free_case(&t);
}
END_TEST

/* Descriptors and buffers for the argument-checking tests: a FLOAT x of 2x3x2x2 and its
 * spatial parameters; every buffer is larger than any tensor described. */
struct bad_args {
    cudnnTensorDescriptor_t x, param;
    float buffers[8][64];
    float one, zero;
};

static void init_bad_args(struct bad_args *b)
{
    const int dims[4] = {2, 3, 2, 2};
    b->x = packed_desc(CUDNN_DATA_FLOAT, 4, dims);
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&b->param), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDeriveBNTensorDescriptor(b->param, b->x, CUDNN_BATCHNORM_SPATIAL),
                     CUDNN_STATUS_SUCCESS);
    b->one = 1.0f;
    b->zero = 0.0f;
}

static void free_bad_args(struct bad_args *b)
{
    cudnnDestroyTensorDescriptor(b->x);
    cudnnDestroyTensorDescriptor(b->param);
}

static cudnnStatus_t inference_with(struct bad_args *b, cudnnHandle_t h, cudnnBatchNormMode_t mode,
                                    cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t y,
                                    cudnnTensorDescriptor_t param, const void *mean,
                                    double epsilon)
{
    return cudnnBatchNormalizationForwardInference(h, mode, &b->one, &b->zero, x, b->buffers[0], y,
                                                   b->buffers[1], param, b->buffers[2],
                                                   b->buffers[3], mean, b->buffers[5], epsilon);
}

START_TEST(inference_rejects_bad_arguments)
{
    struct bad_args b;
    init_bad_args(&b);
    const int other[4] = {2, 3, 2, 1}, chan[4] = {1, 3, 1, 1}, full[4] = {1, 3, 2, 2};
    const int dims5[5] = {2, 3, 1, 2, 2}, chan5[5] = {1, 3, 1, 1, 1};
    cudnnTensorDescriptor_t half_y = packed_desc(CUDNN_DATA_HALF, 4, (const int[]){2, 3, 2, 2});
    cudnnTensorDescriptor_t other_y = packed_desc(CUDNN_DATA_FLOAT, 4, other);
    cudnnTensorDescriptor_t half_param = packed_desc(CUDNN_DATA_HALF, 4, chan);
    cudnnTensorDescriptor_t act_param = packed_desc(CUDNN_DATA_FLOAT, 4, full);
    cudnnTensorDescriptor_t x5 = packed_desc(CUDNN_DATA_FLOAT, 5, dims5);
    cudnnTensorDescriptor_t param5 = packed_desc(CUDNN_DATA_FLOAT, 5, chan5);
    cudnnTensorDescriptor_t dbl_x = packed_desc(CUDNN_DATA_DOUBLE, 4, (const int[]){2, 3, 2, 2});
    cudnnTensorDescriptor_t dbl_param = packed_desc(CUDNN_DATA_DOUBLE, 4, chan);
    const cudnnBatchNormMode_t S = CUDNN_BATCHNORM_SPATIAL;
    const void *mean = b.buffers[4];
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, b.x, b.param, mean, 1e-5),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(inference_with(&b, NULL, S, b.x, b.x, b.param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, (cudnnBatchNormMode_t)9, b.x, b.x, b.param, mean,
                                    1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, b.x, b.param, mean, -1e-3),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, b.x, b.param, NULL, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, half_y, b.param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, other_y, b.param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, b.x, half_param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, b.x, b.x, act_param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, CUDNN_BATCHNORM_PER_ACTIVATION, b.x, b.x, b.param,
                                    mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, x5, x5, b.param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, x5, x5, param5, mean, 1e-5),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(inference_with(&b, handle, S, NULL, b.x, b.param, mean, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(inference_with(&b, handle, S, dbl_x, dbl_x, dbl_param, mean, 1e-5),
                     CUDNN_STATUS_NOT_SUPPORTED);
    cudnnTensorDescriptor_t all[] = {half_y, other_y, half_param, act_param, x5, param5, dbl_x,
                                     dbl_param};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cudnnDestroyTensorDescriptor(all[i]);
    free_bad_args(&b);
}
END_TEST

/* Training outputs besides y: saved statistics and running averages. */
struct bn_training_outputs {
    struct ref_tensor save_mean, save_inv_std, running_mean, running_var;
    double factor;
    int with_saves, with_running;
};

static void init_outputs(struct bn_training_outputs *o, const struct bn_case *t, int i,
                         uint64_t *rng)
{
    static const double factors[3] = {1.0, 0.1, 0.5};
    init_param(&o->save_mean, t->mode, &t->x, rng);
    init_param(&o->save_inv_std, t->mode, &t->x, rng);
    init_param(&o->running_mean, t->mode, &t->x, rng);
    init_param(&o->running_var, t->mode, &t->x, rng);
    o->factor = factors[i % 3];
    o->with_saves = i % 5 != 4;
    o->with_running = i % 7 != 6;
    if (o->factor != 1.0) { /* factor 1 must not read the running buffers: they stay NaN */
        ref_fill(&o->running_mean, rng, -128, 128);
        ref_fill(&o->running_var, rng, 1, 255);
    }
}

static void free_outputs(struct bn_training_outputs *o)
{
    ref_tensor_free(&o->save_mean);
    ref_tensor_free(&o->save_inv_std);
    ref_tensor_free(&o->running_mean);
    ref_tensor_free(&o->running_var);
}

static cudnnStatus_t run_training(struct bn_case *t, struct bn_training_outputs *o)
{
    return cudnnBatchNormalizationForwardTraining(
        handle, t->mode, &t->alpha, &t->beta, t->x.desc, t->x.data, t->y.desc, t->y.data,
        t->scale.desc, t->scale.data, t->bias.data, o->factor,
        o->with_running ? o->running_mean.data : NULL, o->with_running ? o->running_var.data : NULL,
        t->epsilon, o->with_saves ? o->save_mean.data : NULL,
        o->with_saves ? o->save_inv_std.data : NULL);
}

/* running = factor * batch + (1 - factor) * running, read before the call. */
static double *reference_running(const struct ref_tensor *running, const double *batch,
                                 double factor)
{
    double *want = reference_for(running);
    REF_FOR_EACH(running, n, c, d, h, w) {
        size_t s = ref_index(running, n, c, d, h, w);
        double old = factor != 1.0 ? (1.0 - factor) * ref_get(running, n, c, d, h, w) : 0.0;
        want[s] = factor * batch[s] + old;
    }
    return want;
}

static void expect_training_outputs(struct bn_training_outputs *o, const double *mean,
                                    const double *inv_std, const double *want_running_mean,
                                    const double *want_running_var)
{
    if (o->with_saves) {
        ref_expect(&o->save_mean, mean, "saveMean");
        ref_expect(&o->save_inv_std, inv_std, "saveInvVariance");
    }
    if (o->with_running) {
        ref_expect(&o->running_mean, want_running_mean, "runningMean");
        ref_expect(&o->running_var, want_running_var, "runningVariance");
    }
}

START_TEST(training_matches_reference)
{
    uint64_t rng = seed_for(300 + _i);
    struct bn_case t;
    struct bn_training_outputs o;
    init_case(&t, _i, &rng, 2);
    init_outputs(&o, &t, _i, &rng);
    size_t slots = ref_count(&t.scale);
    double *mean = reference_for(&t.scale), *var = reference_for(&t.scale);
    double *samples = reference_for(&t.scale), *inv_std = reference_for(&t.scale);
    reference_statistics(&t.x, &t.scale, mean, var, samples);
    for (size_t s = 0; s < slots; s++)
        inv_std[s] = 1.0 / sqrt(var[s] + t.epsilon);
    double *want_y = reference_normalized(&t, &t.y, mean, inv_std);
    double *want_mean = reference_running(&o.running_mean, mean, o.factor);
    for (size_t s = 0; s < slots; s++)
        var[s] *= samples[s] / (samples[s] - 1.0);
    double *want_var = reference_running(&o.running_var, var, o.factor);
    ck_assert_int_eq(run_training(&t, &o), CUDNN_STATUS_SUCCESS);
    ref_expect(&t.y, want_y, "y");
    expect_training_outputs(&o, mean, inv_std, want_mean, want_var);
    double *all[] = {mean, var, samples, inv_std, want_y, want_mean, want_var};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free_outputs(&o);
    free_case(&t);
}
END_TEST

static cudnnStatus_t training_with(struct bad_args *b, cudnnTensorDescriptor_t param,
                                   void *running_mean, void *running_var, void *save_mean,
                                   void *save_inv, double epsilon)
{
    return cudnnBatchNormalizationForwardTraining(
        handle, CUDNN_BATCHNORM_SPATIAL, &b->one, &b->zero, b->x, b->buffers[0], b->x,
        b->buffers[1], param, b->buffers[2], b->buffers[3], 0.5, running_mean, running_var,
        epsilon, save_mean, save_inv);
}

START_TEST(training_rejects_bad_arguments)
{
    struct bad_args b;
    init_bad_args(&b);
    cudnnTensorDescriptor_t half_param = packed_desc(CUDNN_DATA_HALF, 4, (const int[]){1, 3, 1, 1});
    void *rm = b.buffers[4], *rv = b.buffers[5], *sm = b.buffers[6], *si = b.buffers[7];
    ck_assert_int_eq(training_with(&b, b.param, rm, rv, sm, si, 1e-5), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(training_with(&b, b.param, NULL, NULL, NULL, NULL, 1e-5),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(training_with(&b, b.param, rm, NULL, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(training_with(&b, b.param, NULL, rv, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(training_with(&b, b.param, rm, rv, sm, NULL, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(training_with(&b, b.param, rm, rv, NULL, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(training_with(&b, b.param, rm, rv, sm, si, -1.0), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(training_with(&b, half_param, rm, rv, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBatchNormalizationForwardTraining(
                         handle, CUDNN_BATCHNORM_SPATIAL, &b.one, &b.zero, b.x, b.buffers[0], b.x,
                         b.buffers[1], b.param, NULL, b.buffers[3], 0.5, rm, rv, 1e-5, sm, si),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyTensorDescriptor(half_param);
    free_bad_args(&b);
}
END_TEST

/* Inputs and outputs of one backward case on top of a bn_case (x, scale; y unused). */
struct bn_backward_case {
    struct ref_tensor dy, dx, dscale, dbias, saved_mean, saved_inv_std;
    float alpha_data, beta_data, alpha_param, beta_param;
    int with_saved;
};

static void init_backward(struct bn_backward_case *b, const struct bn_case *t, int i,
                          uint64_t *rng)
{
    const struct ref_tensor *x = &t->x;
    ref_tensor_init(&b->dy, x->type, x->nb_dims, x->dims, random_layout(rng), rng);
    ref_tensor_init(&b->dx, x->type, x->nb_dims, x->dims, random_layout(rng), rng);
    init_param(&b->dscale, t->mode, x, rng);
    init_param(&b->dbias, t->mode, x, rng);
    init_param(&b->saved_mean, t->mode, x, rng);
    init_param(&b->saved_inv_std, t->mode, x, rng);
    b->alpha_data = (float)ref_value(rng, -64, 64);
    b->beta_data = i % 4 == 1 ? 0.0f : (float)ref_value(rng, -64, 64);
    b->alpha_param = (float)ref_value(rng, -64, 64);
    b->beta_param = i % 4 == 2 ? 0.0f : (float)ref_value(rng, -64, 64);
    b->with_saved = i % 2;
    ref_fill(&b->dy, rng, -255, 255);
    if (b->beta_data != 0.0f)
        ref_fill(&b->dx, rng, -255, 255);
    if (b->beta_param != 0.0f) {
        ref_fill(&b->dscale, rng, -255, 255);
        ref_fill(&b->dbias, rng, -255, 255);
    }
    ref_fill(&b->saved_mean, rng, -64, 64);
    ref_fill(&b->saved_inv_std, rng, 4, 64);
}

static void free_backward(struct bn_backward_case *b)
{
    struct ref_tensor *all[] = {&b->dy, &b->dx, &b->dscale, &b->dbias, &b->saved_mean,
                                &b->saved_inv_std};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ref_tensor_free(all[i]);
}

/* Sample counts, and the mean and inverse std the backward pass uses: the saved ones, or
 * recomputed from x. */
static void backward_statistics(const struct bn_case *t, const struct bn_backward_case *b,
                                double *mean, double *inv_std, double *samples)
{
    size_t slots = ref_count(&t->scale);
    reference_statistics(&t->x, &t->scale, mean, inv_std, samples);
    for (size_t s = 0; s < slots; s++)
        inv_std[s] = 1.0 / sqrt(inv_std[s] + t->epsilon);
    if (!b->with_saved)
        return;
    REF_FOR_EACH(&b->saved_mean, n, c, d, h, w) {
        size_t s = ref_index(&b->saved_mean, n, c, d, h, w);
        mean[s] = ref_get(&b->saved_mean, n, c, d, h, w);
        inv_std[s] = ref_get(&b->saved_inv_std, n, c, d, h, w);
    }
}

/* Unblended dbias = sum dy and dscale = sum dy * xhat per slot. */
static void reference_param_grads(const struct bn_case *t, const struct bn_backward_case *b,
                                  const double *mean, const double *inv_std, double *dscale,
                                  double *dbias)
{
    REF_FOR_EACH(&t->x, n, c, d, h, w) {
        size_t s = param_slot(&t->scale, c, d, h, w);
        double g = ref_get(&b->dy, n, c, d, h, w);
        dbias[s] += g;
        dscale[s] += g * (ref_get(&t->x, n, c, d, h, w) - mean[s]) * inv_std[s];
    }
}

/* Blended dx from the unblended parameter gradients. */
static double *reference_dx(const struct bn_case *t, const struct bn_backward_case *b,
                            const double *mean, const double *inv_std, const double *dscale,
                            const double *dbias, const double *samples)
{
    double *want = reference_for(&b->dx);
    REF_FOR_EACH(&t->x, n, c, d, h, w) {
        size_t s = param_slot(&t->scale, c, d, h, w);
        double m = samples[s], xhat = (ref_get(&t->x, n, c, d, h, w) - mean[s]) * inv_std[s];
        double g = ref_get(&b->dy, n, c, d, h, w);
        double dx = param_get(&t->scale, c, d, h, w) * inv_std[s] / m *
                    (m * g - dbias[s] - xhat * dscale[s]);
        double prior = b->beta_data != 0.0f ? b->beta_data * ref_get(&b->dx, n, c, d, h, w) : 0.0;
        want[ref_index(&b->dx, n, c, d, h, w)] = b->alpha_data * dx + prior;
    }
    return want;
}

/* Blends unblended parameter gradients with the prior content of out (read before the call). */
static void blend_param(const struct bn_backward_case *b, const struct ref_tensor *out,
                        double *grad)
{
    REF_FOR_EACH(out, n, c, d, h, w) {
        size_t s = ref_index(out, n, c, d, h, w);
        double prior = b->beta_param != 0.0f ? b->beta_param * ref_get(out, n, c, d, h, w) : 0.0;
        grad[s] = b->alpha_param * grad[s] + prior;
    }
}

static cudnnStatus_t run_backward(struct bn_case *t, struct bn_backward_case *b, void *dx,
                                  cudnnTensorDescriptor_t dx_desc)
{
    return cudnnBatchNormalizationBackward(
        handle, t->mode, &b->alpha_data, &b->beta_data, &b->alpha_param, &b->beta_param,
        t->x.desc, t->x.data, b->dy.desc, b->dy.data, dx_desc, dx, t->scale.desc, t->scale.data,
        b->dscale.data, b->dbias.data, t->epsilon, b->with_saved ? b->saved_mean.data : NULL,
        b->with_saved ? b->saved_inv_std.data : NULL);
}

/* Runs the backward pass with dx written to tensor dx (b->dx, or b->dy in place) and checks
 * dx, dscale and dbias. */
static void ck_assert_backward(struct bn_case *t, struct bn_backward_case *b, struct ref_tensor *dx)
{
    double *mean = reference_for(&t->scale), *inv_std = reference_for(&t->scale);
    double *dscale = reference_for(&t->scale), *dbias = reference_for(&t->scale);
    double *samples = reference_for(&t->scale);
    backward_statistics(t, b, mean, inv_std, samples);
    reference_param_grads(t, b, mean, inv_std, dscale, dbias);
    double *want_dx = reference_dx(t, b, mean, inv_std, dscale, dbias, samples);
    blend_param(b, &b->dscale, dscale);
    blend_param(b, &b->dbias, dbias);
    ck_assert_int_eq(run_backward(t, b, dx->data, dx->desc), CUDNN_STATUS_SUCCESS);
    ref_expect(dx, want_dx, "dx");
    ref_expect(&b->dscale, dscale, "dscale");
    ref_expect(&b->dbias, dbias, "dbias");
    double *all[] = {mean, inv_std, dscale, dbias, samples, want_dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

START_TEST(backward_matches_reference)
{
    uint64_t rng = seed_for(400 + _i);
    struct bn_case t;
    struct bn_backward_case b;
    init_case(&t, _i, &rng, 2);
    init_backward(&b, &t, _i, &rng);
    ck_assert_backward(&t, &b, &b.dx);
    free_backward(&b);
    free_case(&t);
}
END_TEST

START_TEST(backward_in_place)
{
    uint64_t rng = seed_for(500 + _i);
    struct bn_case t;
    struct bn_backward_case b;
    init_case(&t, _i, &rng, 2);
    init_backward(&b, &t, _i, &rng);
    b.beta_data = 0.0f;
    ck_assert_backward(&t, &b, &b.dy);
    free_backward(&b);
    free_case(&t);
}
END_TEST

static cudnnStatus_t backward_with(struct bad_args *b, cudnnTensorDescriptor_t dy,
                                   cudnnTensorDescriptor_t param, void *dscale,
                                   const void *saved_mean, const void *saved_inv, double epsilon)
{
    return cudnnBatchNormalizationBackward(
        handle, CUDNN_BATCHNORM_SPATIAL, &b->one, &b->zero, &b->one, &b->zero, b->x, b->buffers[0],
        dy, b->buffers[1], b->x, b->buffers[2], param, b->buffers[3], dscale, b->buffers[5],
        epsilon, saved_mean, saved_inv);
}

START_TEST(backward_rejects_bad_arguments)
{
    struct bad_args b;
    init_bad_args(&b);
    cudnnTensorDescriptor_t half_dy = packed_desc(CUDNN_DATA_HALF, 4, (const int[]){2, 3, 2, 2});
    cudnnTensorDescriptor_t other_dy = packed_desc(CUDNN_DATA_FLOAT, 4, (const int[]){2, 3, 1, 2});
    void *ds = b.buffers[4], *sm = b.buffers[6], *si = b.buffers[7];
    ck_assert_int_eq(backward_with(&b, b.x, b.param, ds, sm, si, 1e-5), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(backward_with(&b, b.x, b.param, ds, NULL, NULL, 1e-5), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(backward_with(&b, b.x, b.param, ds, sm, NULL, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, b.x, b.param, ds, NULL, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, b.x, b.param, NULL, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, b.x, b.param, ds, sm, si, -1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, half_dy, b.param, ds, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, other_dy, b.param, ds, sm, si, 1e-5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(backward_with(&b, b.x, b.x, ds, sm, si, 1e-5), CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyTensorDescriptor(half_dy);
    cudnnDestroyTensorDescriptor(other_dy);
    free_bad_args(&b);
}
END_TEST

/* A copy of t's whole buffer (caller frees), to compare two runs bit for bit. */
static void *copy_of(const struct ref_tensor *t)
{
    size_t bytes = t->span * ref_type_size(t->type);
    void *copy = malloc(bytes);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, t->data, bytes);
    return copy;
}

static int same_bytes(const struct ref_tensor *t, const void *copy)
{
    return memcmp(t->data, copy, t->span * ref_type_size(t->type)) == 0;
}

static void restore(struct ref_tensor *t, const void *copy)
{
    memcpy(t->data, copy, t->span * ref_type_size(t->type));
}

START_TEST(training_ex_equals_training)
{
    uint64_t rng = seed_for(600 + _i);
    struct bn_case t;
    struct bn_training_outputs o;
    init_case(&t, _i, &rng, 2);
    init_outputs(&o, &t, _i, &rng);
    o.with_saves = o.with_running = 1;
    void *y0 = copy_of(&t.y), *rm0 = copy_of(&o.running_mean), *rv0 = copy_of(&o.running_var);
    ck_assert_int_eq(run_training(&t, &o), CUDNN_STATUS_SUCCESS);
    struct ref_tensor *outputs[5] = {&t.y, &o.save_mean, &o.save_inv_std, &o.running_mean,
                                     &o.running_var};
    void *first[5];
    for (int i = 0; i < 5; i++)
        first[i] = copy_of(outputs[i]);
    restore(&t.y, y0);
    restore(&o.running_mean, rm0);
    restore(&o.running_var, rv0);
    ref_fill_nan(&o.save_mean);
    ref_fill_nan(&o.save_inv_std);
    ck_assert_int_eq(cudnnBatchNormalizationForwardTrainingEx(
                         handle, t.mode, CUDNN_BATCHNORM_OPS_BN, &t.alpha, &t.beta, t.x.desc,
                         t.x.data, NULL, NULL, t.y.desc, t.y.data, t.scale.desc, t.scale.data,
                         t.bias.data, o.factor, o.running_mean.data, o.running_var.data,
                         t.epsilon, o.save_mean.data, o.save_inv_std.data, NULL, NULL, 0, NULL, 0),
                     CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(same_bytes(outputs[i], first[i]), "output %d differs", i);
        free(first[i]);
    }
    free(y0);
    free(rm0);
    free(rv0);
    free_outputs(&o);
    free_case(&t);
}
END_TEST

START_TEST(backward_ex_equals_backward)
{
    uint64_t rng = seed_for(700 + _i);
    struct bn_case t;
    struct bn_backward_case b;
    init_case(&t, _i, &rng, 2);
    init_backward(&b, &t, _i, &rng);
    void *dx0 = copy_of(&b.dx), *dscale0 = copy_of(&b.dscale), *dbias0 = copy_of(&b.dbias);
    ck_assert_int_eq(run_backward(&t, &b, b.dx.data, b.dx.desc), CUDNN_STATUS_SUCCESS);
    void *dx = copy_of(&b.dx), *dscale = copy_of(&b.dscale), *dbias = copy_of(&b.dbias);
    restore(&b.dx, dx0);
    restore(&b.dscale, dscale0);
    restore(&b.dbias, dbias0);
    ck_assert_int_eq(cudnnBatchNormalizationBackwardEx(
                         handle, t.mode, CUDNN_BATCHNORM_OPS_BN, &b.alpha_data, &b.beta_data,
                         &b.alpha_param, &b.beta_param, t.x.desc, t.x.data, NULL, NULL, b.dy.desc,
                         b.dy.data, NULL, NULL, b.dx.desc, b.dx.data, t.scale.desc, t.scale.data,
                         NULL, b.dscale.data, b.dbias.data, t.epsilon,
                         b.with_saved ? b.saved_mean.data : NULL,
                         b.with_saved ? b.saved_inv_std.data : NULL, NULL, NULL, 0, NULL, 0),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(same_bytes(&b.dx, dx) && same_bytes(&b.dscale, dscale) &&
              same_bytes(&b.dbias, dbias));
    void *copies[] = {dx0, dscale0, dbias0, dx, dscale, dbias};
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
        free(copies[i]);
    free_backward(&b);
    free_case(&t);
}
END_TEST

START_TEST(ex_forms_take_plain_batchnorm_only)
{
    struct bad_args b;
    init_bad_args(&b);
    const cudnnBatchNormMode_t S = CUDNN_BATCHNORM_SPATIAL;
    const cudnnBatchNormOps_t BN = CUDNN_BATCHNORM_OPS_BN, ACT = CUDNN_BATCHNORM_OPS_BN_ACTIVATION;
    const cudnnBatchNormOps_t ADD = CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION;
    size_t size = 99;
    ck_assert_int_eq(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
                         handle, S, BN, b.x, NULL, b.x, b.param, NULL, &size),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(size, 0);
    size = 99;
    ck_assert_int_eq(cudnnGetBatchNormalizationBackwardExWorkspaceSize(
                         handle, S, BN, b.x, NULL, b.x, NULL, b.x, b.param, NULL, &size),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(size, 0);
    size = 99;
    ck_assert_int_eq(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(handle, S, BN, NULL, b.x,
                                                                          &size),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(handle, S, ACT, NULL, b.x,
                                                                          &size),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(handle, S, BN, NULL, b.x,
                                                                          NULL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
                         handle, S, BN, b.x, NULL, b.x, b.x, NULL, &size),
                     CUDNN_STATUS_BAD_PARAM);
    float *buf = b.buffers[0];
    ck_assert_int_eq(cudnnBatchNormalizationForwardTrainingEx(
                         handle, S, ADD, &b.one, &b.zero, b.x, buf, b.x, buf, b.x, b.buffers[1],
                         b.param, buf, buf, 0.5, NULL, NULL, 1e-5, NULL, NULL, NULL, NULL, 0, NULL,
                         0),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnBatchNormalizationForwardTrainingEx(
                         handle, S, (cudnnBatchNormOps_t)7, &b.one, &b.zero, b.x, buf, NULL, NULL,
                         b.x, b.buffers[1], b.param, buf, buf, 0.5, NULL, NULL, 1e-5, NULL, NULL,
                         NULL, NULL, 0, NULL, 0),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBatchNormalizationBackwardEx(
                         handle, S, ACT, &b.one, &b.zero, &b.one, &b.zero, b.x, buf, b.x, buf, b.x,
                         buf, NULL, NULL, b.x, b.buffers[1], b.param, buf, buf, b.buffers[2],
                         b.buffers[3], 1e-5, NULL, NULL, NULL, NULL, 0, NULL, 0),
                     CUDNN_STATUS_NOT_SUPPORTED);
    free_bad_args(&b);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, create_handle, destroy_handle);
    return tc;
}

static Suite *batchnorm_suite(void)
{
    Suite *s = suite_create("emu_batchnorm");
    TCase *derive = tcase("derive"), *inference = tcase("inference");
    TCase *training = tcase("training"), *backward = tcase("backward"), *ex = tcase("ex");
    tcase_add_loop_test(derive, derive_gives_parameter_shape, 0, 18);
    tcase_add_test(derive, derive_rejects_bad_arguments);
    tcase_add_loop_test(inference, inference_matches_reference, 0, 72);
    tcase_add_loop_test(inference, inference_in_place, 0, 18);
    tcase_add_test(inference, inference_rejects_bad_arguments);
    tcase_add_loop_test(training, training_matches_reference, 0, 72);
    tcase_add_test(training, training_rejects_bad_arguments);
    tcase_add_loop_test(backward, backward_matches_reference, 0, 72);
    tcase_add_loop_test(backward, backward_in_place, 0, 18);
    tcase_add_test(backward, backward_rejects_bad_arguments);
    tcase_add_loop_test(ex, training_ex_equals_training, 0, 9);
    tcase_add_loop_test(ex, backward_ex_equals_backward, 0, 9);
    tcase_add_test(ex, ex_forms_take_plain_batchnorm_only);
    suite_add_tcase(s, derive);
    suite_add_tcase(s, inference);
    suite_add_tcase(s, training);
    suite_add_tcase(s, backward);
    suite_add_tcase(s, ex);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(batchnorm_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
