/* Batch normalization of the cuDNN emulation: cudnnDeriveBNTensorDescriptor, forward inference,
 * forward training (running statistics, saved mean and inverse standard deviation), backward,
 * their Ex forms for CUDNN_BATCHNORM_OPS_BN and the Ex workspace/reserve-space size queries.
 * Modes PER_ACTIVATION (one parameter per C x spatial position, statistics over N) and SPATIAL /
 * SPATIAL_PERSISTENT (one per channel, statistics over N x spatial), 4-d and 5-d x of FLOAT,
 * HALF or BFLOAT16 with FLOAT parameters.  Inputs are read completely before any output is
 * written, so in-place calls work.  Owns no state; must not modify the caller's descriptors
 * (except the one cudnnDeriveBNTensorDescriptor is asked to fill) or write outside the
 * elements the output descriptors describe. */
#include <math.h>
#include <stdlib.h>

#include "emu_cudnn.h"

/* Shape of x as batch normalization sees it; element e of x in logical order is
 * ((n * channels + c) * spatial + s). */
struct bn_geometry {
    size_t batch;
    size_t channels;
    size_t spatial;
    int per_activation;
};

static struct bn_geometry geometry_of(const struct cudnnTensorStruct *x, cudnnBatchNormMode_t mode)
{
    struct bn_geometry g = {(size_t)x->dims[0], (size_t)x->dims[1], 1,
                            mode == CUDNN_BATCHNORM_PER_ACTIVATION};
    for (int i = 2; i < x->nb_dims; i++)
        g.spatial *= (size_t)x->dims[i];
    return g;
}

static size_t element_count(const struct bn_geometry *g)
{
    return g->batch * g->channels * g->spatial;
}

/* Number of parameters (scale, bias, mean, variance each). */
static size_t slot_count(const struct bn_geometry *g)
{
    return g->per_activation ? g->channels * g->spatial : g->channels;
}

/* Number of x elements each parameter normalizes. */
static double samples_per_slot(const struct bn_geometry *g)
{
    return (double)(g->per_activation ? g->batch : g->batch * g->spatial);
}

/* The parameter of x element e (logical order). */
static size_t slot_of(const struct bn_geometry *g, size_t e)
{
    size_t s = e % g->spatial, c = (e / g->spatial) % g->channels;
    return g->per_activation ? c * g->spatial + s : c;
}

static int mode_valid(cudnnBatchNormMode_t mode)
{
    return mode == CUDNN_BATCHNORM_PER_ACTIVATION || mode == CUDNN_BATCHNORM_SPATIAL ||
           mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
}

static int rank_supported(const struct cudnnTensorStruct *x)
{
    return x->nb_dims == 4 || x->nb_dims == 5;
}

/* cuDNN keeps the parameters of HALF and BFLOAT16 (and FLOAT) data in FLOAT. */
static cudnnDataType_t param_type_for(cudnnDataType_t x_type)
{
    return emu_type_supported(x_type) ? CUDNN_DATA_FLOAT : x_type;
}

/* 1xCx1x1(x1) for the spatial modes, 1xCxHxW / 1xCxDxHxW per activation. */
static void derived_dims(const struct cudnnTensorStruct *x, cudnnBatchNormMode_t mode, int *dims)
{
    for (int i = 0; i < x->nb_dims; i++)
        dims[i] = i == 1 || (i >= 2 && mode == CUDNN_BATCHNORM_PER_ACTIVATION) ? x->dims[i] : 1;
}

/* Returns 1 if p is set and has the type and dims cudnnDeriveBNTensorDescriptor gives for x. */
static int params_match(const struct cudnnTensorStruct *x, cudnnBatchNormMode_t mode,
                        const struct cudnnTensorStruct *p)
{
    int dims[CUDNN_DIM_MAX];
    if (!emu_tensor_ready(p) || p->nb_dims != x->nb_dims || p->type != param_type_for(x->type))
        return 0;
    derived_dims(x, mode, dims);
    for (int i = 0; i < x->nb_dims; i++)
        if (p->dims[i] != dims[i])
            return 0;
    return 1;
}

/* Returns 1 if other (y, dy or dx) is set and has x's dims and type. */
static int shape_matches(const struct cudnnTensorStruct *x, const struct cudnnTensorStruct *other)
{
    return emu_tensor_ready(other) && emu_same_dims(x, other) && x->type == other->type;
}

/* shape_matches, and other's data pointer is non-NULL. */
static int data_matches(const struct cudnnTensorStruct *x, const struct cudnnTensorStruct *other,
                        const void *data)
{
    return data && shape_matches(x, other);
}

/* The checks every batch normalization call shares; returns 1 if all pass. */
static int common_args_valid(cudnnHandle_t handle, cudnnBatchNormMode_t mode,
                             const struct cudnnTensorStruct *x, const void *x_data,
                             const struct cudnnTensorStruct *params, double epsilon)
{
    return emu_handle_valid(handle) && mode_valid(mode) && epsilon >= CUDNN_BN_MIN_EPSILON &&
           emu_tensor_ready(x) && x_data && rank_supported(x) && params_match(x, mode, params);
}

/* Called once every BAD_PARAM condition has passed: is x's type one the emulation computes? */
static cudnnStatus_t type_status(const struct cudnnTensorStruct *x)
{
    return emu_type_supported(x->type) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}

/* Both pointers NULL or both non-NULL. */
static int paired(const void *a, const void *b)
{
    return (a == NULL) == (b == NULL);
}

/* Fills derivedBnDesc (created by the caller, who keeps owning it) with the parameter tensor of
 * x for mode: packed, FLOAT for FLOAT/HALF/BFLOAT16 x.  Returns CUDNN_STATUS_BAD_PARAM for a
 * NULL or unset descriptor, an unknown mode, or x that is not 4-d or 5-d. */
cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derivedBnDesc,
                                            const cudnnTensorDescriptor_t xDesc,
                                            cudnnBatchNormMode_t mode)
{
    int dims[CUDNN_DIM_MAX];
    if (!derivedBnDesc || !emu_tensor_ready(xDesc) || !mode_valid(mode) || !rank_supported(xDesc))
        return CUDNN_STATUS_BAD_PARAM;
    derived_dims(xDesc, mode, dims);
    derivedBnDesc->type = param_type_for(xDesc->type);
    derivedBnDesc->nb_dims = xDesc->nb_dims;
    int stride = 1;
    for (int i = xDesc->nb_dims - 1; i >= 0; i--) {
        derivedBnDesc->dims[i] = dims[i];
        derivedBnDesc->strides[i] = stride;
        stride *= dims[i];
    }
    derivedBnDesc->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* mean[p] and biased variance var[p] of x over each parameter's samples (two passes). */
static void slot_statistics(const struct bn_geometry *g, const float *x, double *mean, double *var)
{
    size_t slots = slot_count(g), count = element_count(g);
    double samples = samples_per_slot(g);
    for (size_t p = 0; p < slots; p++)
        mean[p] = var[p] = 0.0;
    for (size_t e = 0; e < count; e++)
        mean[slot_of(g, e)] += x[e];
    for (size_t p = 0; p < slots; p++)
        mean[p] /= samples;
    for (size_t e = 0; e < count; e++) {
        double d = x[e] - mean[slot_of(g, e)];
        var[slot_of(g, e)] += d * d;
    }
    for (size_t p = 0; p < slots; p++)
        var[p] /= samples;
}

/* y = scale * (x - mean) * inv_std + bias, in place over x (logical order). */
static void normalize(const struct bn_geometry *g, float *x, const float *scale, const float *bias,
                      const double *mean, const double *inv_std)
{
    for (size_t e = 0; e < element_count(g); e++) {
        size_t p = slot_of(g, e);
        x[e] = (float)(scale[p] * ((x[e] - mean[p]) * inv_std[p]) + bias[p]);
    }
}

void emu_bn_normalize_spatial(const struct cudnnTensorStruct *x, float *values,
                              const float *scale, const float *bias, const double *mean,
                              const double *inv_std)
{
    struct bn_geometry g = geometry_of(x, CUDNN_BATCHNORM_SPATIAL);
    normalize(&g, values, scale, bias, mean, inv_std);
}

static void narrow(const double *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)in[i];
}

static cudnnStatus_t run_inference(cudnnBatchNormMode_t mode, float alpha, float beta,
                                   const struct cudnnTensorStruct *x_desc, const void *x,
                                   const struct cudnnTensorStruct *y_desc, void *y,
                                   const struct cudnnTensorStruct *p_desc,
                                   const void *const *params, double epsilon)
{
    struct bn_geometry g = geometry_of(x_desc, mode);
    size_t slots = slot_count(&g);
    float *values = malloc((element_count(&g) + 4 * slots) * sizeof(float));
    double *mean_inv = malloc(2 * slots * sizeof(double));
    if (!values || !mean_inv) {
        free(values);
        free(mean_inv);
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    }
    float *p_values = values + element_count(&g); /* scale, bias, mean, variance */
    for (int i = 0; i < 4; i++)
        emu_gather(p_desc, params[i], p_desc, p_values + (size_t)i * slots);
    for (size_t p = 0; p < slots; p++) {
        mean_inv[p] = p_values[2 * slots + p];
        mean_inv[slots + p] = 1.0 / sqrt((double)p_values[3 * slots + p] + epsilon);
    }
    emu_gather(x_desc, x, x_desc, values);
    normalize(&g, values, p_values, p_values + slots, mean_inv, mean_inv + slots);
    emu_scatter_blend(y_desc, y, values, alpha, beta);
    free(values);
    free(mean_inv);
    return CUDNN_STATUS_SUCCESS;
}

/* y = alpha * (scale * (x - mean) / sqrt(variance + epsilon) + bias) + beta * y with the given
 * (running) mean and variance; x and y have the same dims and type, any strides, x == y allowed.
 * Returns CUDNN_STATUS_BAD_PARAM for bad arguments (see common_args_valid), NOT_SUPPORTED for
 * x types other than FLOAT, HALF and BFLOAT16.  The caller owns all buffers. */
cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
    void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, const void *estimatedMean, const void *estimatedVariance, double epsilon)
{
    if (!common_args_valid(handle, mode, xDesc, x, bnScaleBiasMeanVarDesc, epsilon) || !alpha ||
        !beta || !data_matches(xDesc, yDesc, y) || !bnScale || !bnBias || !estimatedMean ||
        !estimatedVariance)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = type_status(xDesc);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    const void *params[4] = {bnScale, bnBias, estimatedMean, estimatedVariance};
    return run_inference(mode, *(const float *)alpha, *(const float *)beta, xDesc, x, yDesc, y,
                         bnScaleBiasMeanVarDesc, params, epsilon);
}

/* Everything forward training reads and writes besides the descriptors' shared checks. */
struct bn_training {
    cudnnBatchNormMode_t mode;
    float alpha, beta;
    const struct cudnnTensorStruct *x_desc, *y_desc, *p_desc;
    const void *x, *scale, *bias;
    void *y, *running_mean, *running_var, *save_mean, *save_inv_var;
    double factor, epsilon;
};

/* running = factor * batch + (1 - factor) * running; the old value is not read when factor == 1,
 * so a first call may pass uninitialized running buffers. */
static void update_running(const struct bn_training *t, void *running, const double *batch,
                           float *scratch, size_t slots)
{
    if (t->factor != 1.0)
        emu_gather(t->p_desc, running, t->p_desc, scratch);
    for (size_t p = 0; p < slots; p++) {
        double old = t->factor != 1.0 ? (1.0 - t->factor) * scratch[p] : 0.0;
        scratch[p] = (float)(t->factor * batch[p] + old);
    }
    emu_scatter_blend(t->p_desc, running, scratch, 1.0f, 0.0f);
}

/* Writes the saved statistics and the running averages (variance made unbiased, as cuDNN
 * tracks it; a single sample per parameter keeps the biased value). */
static void store_statistics(const struct bn_training *t, const struct bn_geometry *g,
                             double *mean, double *var, const double *inv_std, float *scratch)
{
    size_t slots = slot_count(g);
    double samples = samples_per_slot(g);
    if (t->save_mean) {
        narrow(mean, scratch, slots);
        emu_scatter_blend(t->p_desc, t->save_mean, scratch, 1.0f, 0.0f);
        narrow(inv_std, scratch, slots);
        emu_scatter_blend(t->p_desc, t->save_inv_var, scratch, 1.0f, 0.0f);
    }
    if (!t->running_mean)
        return;
    for (size_t p = 0; p < slots && samples > 1.0; p++)
        var[p] *= samples / (samples - 1.0);
    update_running(t, t->running_mean, mean, scratch, slots);
    update_running(t, t->running_var, var, scratch, slots);
}

static cudnnStatus_t run_training(const struct bn_training *t)
{
    struct bn_geometry g = geometry_of(t->x_desc, t->mode);
    size_t slots = slot_count(&g);
    float *values = malloc((element_count(&g) + 3 * slots) * sizeof(float));
    double *stats = malloc(3 * slots * sizeof(double)); /* mean, variance, inverse std */
    if (!values || !stats) {
        free(values);
        free(stats);
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    }
    float *scale = values + element_count(&g), *bias = scale + slots, *scratch = bias + slots;
    double *mean = stats, *var = stats + slots, *inv_std = stats + 2 * slots;
    emu_gather(t->x_desc, t->x, t->x_desc, values);
    emu_gather(t->p_desc, t->scale, t->p_desc, scale);
    emu_gather(t->p_desc, t->bias, t->p_desc, bias);
    slot_statistics(&g, values, mean, var);
    for (size_t p = 0; p < slots; p++)
        inv_std[p] = 1.0 / sqrt(var[p] + t->epsilon);
    normalize(&g, values, scale, bias, mean, inv_std);
    emu_scatter_blend(t->y_desc, t->y, values, t->alpha, t->beta);
    store_statistics(t, &g, mean, var, inv_std, scratch);
    free(values);
    free(stats);
    return CUDNN_STATUS_SUCCESS;
}

/* y = alpha * BN(x) + beta * y with the batch's own statistics (biased variance).  Also writes
 * resultSaveMean / resultSaveInvVariance (1 / sqrt(var + epsilon)) and updates
 * resultRunningMean / resultRunningVariance (unbiased variance) with exponentialAverageFactor;
 * each of the two pairs may be NULL, but only as a pair (else CUDNN_STATUS_BAD_PARAM).  Other
 * statuses as cudnnBatchNormalizationForwardInference.  The caller owns all buffers. */
cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc,
    void *y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, double exponentialAverageFactor, void *resultRunningMean,
    void *resultRunningVariance, double epsilon, void *resultSaveMean,
    void *resultSaveInvVariance)
{
    if (!common_args_valid(handle, mode, xDesc, x, bnScaleBiasMeanVarDesc, epsilon) || !alpha ||
        !beta || !data_matches(xDesc, yDesc, y) || !bnScale || !bnBias ||
        !paired(resultRunningMean, resultRunningVariance) ||
        !paired(resultSaveMean, resultSaveInvVariance))
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = type_status(xDesc);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    struct bn_training t = {
        .mode = mode, .alpha = *(const float *)alpha, .beta = *(const float *)beta,
        .x_desc = xDesc, .y_desc = yDesc, .p_desc = bnScaleBiasMeanVarDesc,
        .x = x, .scale = bnScale, .bias = bnBias, .y = y,
        .running_mean = resultRunningMean, .running_var = resultRunningVariance,
        .save_mean = resultSaveMean, .save_inv_var = resultSaveInvVariance,
        .factor = exponentialAverageFactor, .epsilon = epsilon};
    return run_training(&t);
}

/* Everything the backward pass reads and writes besides the descriptors' shared checks. */
struct bn_backward {
    cudnnBatchNormMode_t mode;
    float alpha_data, beta_data, alpha_param, beta_param;
    const struct cudnnTensorStruct *x_desc, *dy_desc, *dx_desc, *p_desc;
    const void *x, *dy, *scale, *saved_mean, *saved_inv_var;
    void *dx, *dscale, *dbias;
    double epsilon;
};

/* mean and inverse std per parameter: the saved ones when given, else recomputed from x. */
static void backward_statistics(const struct bn_backward *b, const struct bn_geometry *g,
                                const float *x, double *mean, double *inv_std, float *scratch)
{
    size_t slots = slot_count(g);
    if (!b->saved_mean) {
        slot_statistics(g, x, mean, inv_std);
        for (size_t p = 0; p < slots; p++)
            inv_std[p] = 1.0 / sqrt(inv_std[p] + b->epsilon);
        return;
    }
    emu_gather(b->p_desc, b->saved_mean, b->p_desc, scratch);
    for (size_t p = 0; p < slots; p++)
        mean[p] = scratch[p];
    emu_gather(b->p_desc, b->saved_inv_var, b->p_desc, scratch);
    for (size_t p = 0; p < slots; p++)
        inv_std[p] = scratch[p];
}

/* dbias = sum dy, dscale = sum dy * xhat per parameter; then dx (over dy, in place):
 * dx = scale * inv_std / m * (m * dy - dbias - xhat * dscale), m samples per parameter. */
static void backward_gradients(const struct bn_geometry *g, const float *x, float *dy,
                               const float *scale, const double *mean, const double *inv_std,
                               double *dscale, double *dbias)
{
    size_t count = element_count(g);
    double m = samples_per_slot(g);
    for (size_t p = 0; p < slot_count(g); p++)
        dscale[p] = dbias[p] = 0.0;
    for (size_t e = 0; e < count; e++) {
        size_t p = slot_of(g, e);
        dbias[p] += dy[e];
        dscale[p] += dy[e] * (x[e] - mean[p]) * inv_std[p];
    }
    for (size_t e = 0; e < count; e++) {
        size_t p = slot_of(g, e);
        double xhat = (x[e] - mean[p]) * inv_std[p];
        dy[e] = (float)(scale[p] * inv_std[p] / m * (m * dy[e] - dbias[p] - xhat * dscale[p]));
    }
}

static void store_param_grads(const struct bn_backward *b, size_t slots, const double *dscale,
                              const double *dbias, float *scratch)
{
    narrow(dscale, scratch, slots);
    emu_scatter_blend(b->p_desc, b->dscale, scratch, b->alpha_param, b->beta_param);
    narrow(dbias, scratch, slots);
    emu_scatter_blend(b->p_desc, b->dbias, scratch, b->alpha_param, b->beta_param);
}

static cudnnStatus_t run_backward(const struct bn_backward *b)
{
    struct bn_geometry g = geometry_of(b->x_desc, b->mode);
    size_t count = element_count(&g), slots = slot_count(&g);
    float *values = malloc((2 * count + 2 * slots) * sizeof(float));
    double *stats = malloc(4 * slots * sizeof(double)); /* mean, inverse std, dscale, dbias */
    if (!values || !stats) {
        free(values);
        free(stats);
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    }
    float *x = values, *dy = values + count, *scale = dy + count, *scratch = scale + slots;
    emu_gather(b->x_desc, b->x, b->x_desc, x);
    emu_gather(b->dy_desc, b->dy, b->dy_desc, dy);
    emu_gather(b->p_desc, b->scale, b->p_desc, scale);
    backward_statistics(b, &g, x, stats, stats + slots, scratch);
    backward_gradients(&g, x, dy, scale, stats, stats + slots, stats + 2 * slots,
                       stats + 3 * slots);
    emu_scatter_blend(b->dx_desc, b->dx, dy, b->alpha_data, b->beta_data);
    store_param_grads(b, slots, stats + 2 * slots, stats + 3 * slots, scratch);
    free(values);
    free(stats);
    return CUDNN_STATUS_SUCCESS;
}

/* dx = alphaDataDiff * dL/dx + betaDataDiff * dx, and dBnScaleResult / dBnBiasResult blended
 * likewise with alphaParamDiff / betaParamDiff, for y = BN(x) with the batch's statistics:
 * savedMean / savedInvVariance from the forward pass, or both NULL to recompute them from x
 * and epsilon (only one NULL: CUDNN_STATUS_BAD_PARAM).  x, dy and dx have the same dims and type,
 * any strides, dx may alias dy.  The caller owns all buffers. */
cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alphaDataDiff,
    const void *betaDataDiff, const void *alphaParamDiff, const void *betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
    const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScale, void *dBnScaleResult,
    void *dBnBiasResult, double epsilon, const void *savedMean, const void *savedInvVariance)
{
    if (!common_args_valid(handle, mode, xDesc, x, dBnScaleBiasDesc, epsilon) || !alphaDataDiff ||
        !betaDataDiff || !alphaParamDiff || !betaParamDiff || !data_matches(xDesc, dyDesc, dy) ||
        !data_matches(xDesc, dxDesc, dx) || !bnScale || !dBnScaleResult || !dBnBiasResult ||
        !paired(savedMean, savedInvVariance))
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = type_status(xDesc);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    struct bn_backward b = {
        .mode = mode, .alpha_data = *(const float *)alphaDataDiff,
        .beta_data = *(const float *)betaDataDiff, .alpha_param = *(const float *)alphaParamDiff,
        .beta_param = *(const float *)betaParamDiff, .x_desc = xDesc, .dy_desc = dyDesc,
        .dx_desc = dxDesc, .p_desc = dBnScaleBiasDesc, .x = x, .dy = dy, .scale = bnScale,
        .saved_mean = savedMean, .saved_inv_var = savedInvVariance, .dx = dx,
        .dscale = dBnScaleResult, .dbias = dBnBiasResult, .epsilon = epsilon};
    return run_backward(&b);
}

/* CUDNN_BATCHNORM_OPS_BN is emulated; the fused activation forms are not. */
static cudnnStatus_t ops_status(cudnnBatchNormOps_t ops)
{
    if (ops == CUDNN_BATCHNORM_OPS_BN)
        return CUDNN_STATUS_SUCCESS;
    if (ops == CUDNN_BATCHNORM_OPS_BN_ACTIVATION || ops == CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION)
        return CUDNN_STATUS_NOT_SUPPORTED;
    return CUDNN_STATUS_BAD_PARAM;
}

/* cudnnBatchNormalizationForwardTraining for bnOps CUDNN_BATCHNORM_OPS_BN (z, the activation,
 * workspace and reserve space are not used); the fused ops give CUDNN_STATUS_NOT_SUPPORTED. */
cudnnStatus_t cudnnBatchNormalizationForwardTrainingEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps, const void *alpha,
    const void *beta, const cudnnTensorDescriptor_t xDesc, const void *xData,
    const cudnnTensorDescriptor_t zDesc, const void *zData, const cudnnTensorDescriptor_t yDesc,
    void *yData, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, double exponentialAverageFactor, void *resultRunningMean,
    void *resultRunningVariance, double epsilon, void *resultSaveMean, void *resultSaveInvVariance,
    cudnnActivationDescriptor_t activationDesc, void *workspace, size_t workSpaceSizeInBytes,
    void *reserveSpace, size_t reserveSpaceSizeInBytes)
{
    (void)zDesc, (void)zData, (void)activationDesc, (void)workspace, (void)workSpaceSizeInBytes;
    (void)reserveSpace, (void)reserveSpaceSizeInBytes;
    cudnnStatus_t status = ops_status(bnOps);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    return cudnnBatchNormalizationForwardTraining(
        handle, mode, alpha, beta, xDesc, xData, yDesc, yData, bnScaleBiasMeanVarDesc, bnScale,
        bnBias, exponentialAverageFactor, resultRunningMean, resultRunningVariance, epsilon,
        resultSaveMean, resultSaveInvVariance);
}

/* cudnnBatchNormalizationBackward for bnOps CUDNN_BATCHNORM_OPS_BN (y, dz, bias, the activation,
 * workspace and reserve space are not used); the fused ops give CUDNN_STATUS_NOT_SUPPORTED. */
cudnnStatus_t cudnnBatchNormalizationBackwardEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps,
    const void *alphaDataDiff, const void *betaDataDiff, const void *alphaParamDiff,
    const void *betaParamDiff, const cudnnTensorDescriptor_t xDesc, const void *xData,
    const cudnnTensorDescriptor_t yDesc, const void *yData, const cudnnTensorDescriptor_t dyDesc,
    const void *dyData, const cudnnTensorDescriptor_t dzDesc, void *dzData,
    const cudnnTensorDescriptor_t dxDesc, void *dxData,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScaleData,
    const void *bnBiasData, void *dBnScaleData, void *dBnBiasData, double epsilon,
    const void *savedMean, const void *savedInvVariance, cudnnActivationDescriptor_t activationDesc,
    void *workSpace, size_t workSpaceSizeInBytes, void *reserveSpace,
    size_t reserveSpaceSizeInBytes)
{
    (void)yDesc, (void)yData, (void)dzDesc, (void)dzData, (void)bnBiasData, (void)activationDesc;
    (void)workSpace, (void)workSpaceSizeInBytes, (void)reserveSpace, (void)reserveSpaceSizeInBytes;
    cudnnStatus_t status = ops_status(bnOps);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    return cudnnBatchNormalizationBackward(
        handle, mode, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, xData,
        dyDesc, dyData, dxDesc, dxData, dBnScaleBiasDesc, bnScaleData, dBnScaleData, dBnBiasData,
        epsilon, savedMean, savedInvVariance);
}

/* The checks the Ex size queries share; sizes are 0 because the emulation needs no scratch. */
static cudnnStatus_t answer_size_query(cudnnHandle_t handle, cudnnBatchNormMode_t mode,
                                       cudnnBatchNormOps_t ops, const struct cudnnTensorStruct *x,
                                       int others_valid, size_t *size)
{
    if (!emu_handle_valid(handle) || !mode_valid(mode) || !emu_tensor_ready(x) ||
        !rank_supported(x) || !others_valid || !size)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = ops_status(ops);
    if (status == CUDNN_STATUS_SUCCESS)
        status = type_status(x);
    if (status == CUDNN_STATUS_SUCCESS)
        *size = 0;
    return status;
}

/* Stores in *sizeInBytes the workspace cudnnBatchNormalizationForwardTrainingEx needs (0). */
cudnnStatus_t cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps,
    const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t zDesc,
    const cudnnTensorDescriptor_t yDesc, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc,
    const cudnnActivationDescriptor_t activationDesc, size_t *sizeInBytes)
{
    (void)zDesc, (void)activationDesc;
    int others_valid = emu_tensor_ready(xDesc) && shape_matches(xDesc, yDesc) &&
                       params_match(xDesc, mode, bnScaleBiasMeanVarDesc);
    return answer_size_query(handle, mode, bnOps, xDesc, others_valid, sizeInBytes);
}

/* Stores in *sizeInBytes the workspace cudnnBatchNormalizationBackwardEx needs (0). */
cudnnStatus_t cudnnGetBatchNormalizationBackwardExWorkspaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps,
    const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t yDesc,
    const cudnnTensorDescriptor_t dyDesc, const cudnnTensorDescriptor_t dzDesc,
    const cudnnTensorDescriptor_t dxDesc, const cudnnTensorDescriptor_t dBnScaleBiasDesc,
    const cudnnActivationDescriptor_t activationDesc, size_t *sizeInBytes)
{
    (void)yDesc, (void)dzDesc, (void)activationDesc;
    int others_valid = emu_tensor_ready(xDesc) && shape_matches(xDesc, dyDesc) &&
                       shape_matches(xDesc, dxDesc) &&
                       params_match(xDesc, mode, dBnScaleBiasDesc);
    return answer_size_query(handle, mode, bnOps, xDesc, others_valid, sizeInBytes);
}

/* Stores in *sizeInBytes the reserve space the training Ex functions need (0). */
cudnnStatus_t cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t xDesc,
    size_t *sizeInBytes)
{
    (void)activationDesc;
    return answer_size_query(handle, mode, bnOps, xDesc, 1, sizeInBytes);
}
