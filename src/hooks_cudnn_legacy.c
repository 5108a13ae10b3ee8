/* Interposers for the legacy cuDNN calls that take part in pairing: convolution forward
 * (plain and bias-activation), BatchNorm inference, the backward calls, and cudnnDestroy.
 * Each hook snapshots what the planner needs, tells the planner, and forwards to the real
 * function with the caller's exact arguments; it never changes a result (observe mode).
 * The list of hooked functions is include/convbn/hooks.def; this file only implements them. */
#include "convbn/log.h"
#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"
#include "convbn/stats.h"

#define EXPORT __attribute__((visibility("default")))

/* Returns 1 when the shim should inspect this call, 0 when it must only forward it
 * (shim code already on the stack, mode off, or the descriptor getters are missing). */
static int inspecting(void)
{
    convbn_init();
    return !convbn_guard_busy() && convbn_cfg.mode != CONVBN_MODE_OFF &&
           convbn_real_cudnn_resolve();
}

/* Returns 1 when the real function for a hook was found (resolving on first use). */
#define REAL_FOUND(name) (convbn_real_cudnn_resolve(), real_##name != NULL)

static cudaStream_t stream_of(cudnnHandle_t handle)
{
    cudaStream_t stream = NULL;
    if (real_cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS)
        return NULL;
    return stream;
}

static void log_call(const char *name, cudaStream_t stream)
{
    if (convbn_cfg.log_level >= 2)
        convbn_logf("call %s stream=%p", name, (void *)stream);
}

/* Flushes what a GPU-work call on handle's stream could observe; returns the stream. */
static cudaStream_t before_gpu_work(const char *name, cudnnHandle_t handle)
{
    cudaStream_t stream = stream_of(handle);
    log_call(name, stream);
    convbn_planner_flush(stream);
    return stream;
}

static int snapshot_conv(struct convbn_conv_call *c, cudnnHandle_t handle, cudaStream_t stream,
                         cudnnTensorDescriptor_t x_desc, const void *x,
                         cudnnFilterDescriptor_t w_desc, const void *w,
                         cudnnConvolutionDescriptor_t conv_desc, int algo,
                         cudnnTensorDescriptor_t y_desc, void *y)
{
    c->api = CONVBN_API_LEGACY;
    c->handle = handle;
    c->stream = stream;
    c->algo = algo;
    c->x_ptr = x;
    c->w_ptr = w;
    c->y_ptr = y;
    return convbn_snapshot_tensor(x_desc, &c->x) || convbn_snapshot_filter(w_desc, &c->w) ||
                   convbn_snapshot_conv(conv_desc, &c->conv) ||
                   convbn_snapshot_tensor(y_desc, &c->y)
               ? -1
               : 0;
}

EXPORT cudnnStatus_t cudnnConvolutionForward(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
    const cudnnTensorDescriptor_t yDesc, void *y)
{
    if (!REAL_FOUND(cudnnConvolutionForward))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnConvolutionForward(handle, alpha, xDesc, x, wDesc, w, convDesc, algo,
                                            workSpace, workSpaceSizeInBytes, beta, yDesc, y);
    convbn_guard_enter();
    cudaStream_t stream = before_gpu_work("cudnnConvolutionForward", handle);
    cudnnStatus_t st = real_cudnnConvolutionForward(handle, alpha, xDesc, x, wDesc, w, convDesc,
                                                    algo, workSpace, workSpaceSizeInBytes, beta,
                                                    yDesc, y);
    struct convbn_conv_call conv = {.kind = CONVBN_CONV_PLAIN};
    if (st == CUDNN_STATUS_SUCCESS &&
        snapshot_conv(&conv, handle, stream, xDesc, x, wDesc, w, convDesc, algo, yDesc, y) == 0) {
        conv.alpha = convbn_read_scalar(alpha, conv.y.type);
        conv.beta = convbn_read_scalar(beta, conv.y.type);
        convbn_planner_conv(&conv);
    }
    convbn_guard_leave();
    return st;
}

static int snapshot_bias_act(struct convbn_conv_call *c, const void *alpha2,
                             cudnnTensorDescriptor_t bias_desc, const void *bias,
                             cudnnActivationDescriptor_t act_desc)
{
    cudnnActivationMode_t mode;
    cudnnNanPropagation_t nan_opt;
    double coef;
    if (convbn_snapshot_tensor(bias_desc, &c->bias) ||
        real_cudnnGetActivationDescriptor(act_desc, &mode, &nan_opt, &coef) != CUDNN_STATUS_SUCCESS)
        return -1;
    c->bias_ptr = bias;
    c->alpha2 = convbn_read_scalar(alpha2, c->y.type);
    c->activation = mode;
    return 0;
}

EXPORT cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *alpha2, const cudnnTensorDescriptor_t zDesc, const void *z,
    const cudnnTensorDescriptor_t biasDesc, const void *bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc, void *y)
{
    if (!REAL_FOUND(cudnnConvolutionBiasActivationForward))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnConvolutionBiasActivationForward(
            handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes,
            alpha2, zDesc, z, biasDesc, bias, activationDesc, yDesc, y);
    convbn_guard_enter();
    cudaStream_t stream = before_gpu_work("cudnnConvolutionBiasActivationForward", handle);
    cudnnStatus_t st = real_cudnnConvolutionBiasActivationForward(
        handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes,
        alpha2, zDesc, z, biasDesc, bias, activationDesc, yDesc, y);
    struct convbn_conv_call conv = {.kind = CONVBN_CONV_BIAS_ACT};
    if (st == CUDNN_STATUS_SUCCESS &&
        snapshot_conv(&conv, handle, stream, xDesc, x, wDesc, w, convDesc, algo, yDesc, y) == 0 &&
        snapshot_bias_act(&conv, alpha2, biasDesc, bias, activationDesc) == 0) {
        conv.alpha = convbn_read_scalar(alpha1, conv.y.type);
        convbn_planner_conv(&conv);
    }
    convbn_guard_leave();
    return st;
}

static int snapshot_bn(struct convbn_bn_call *bn, cudnnTensorDescriptor_t x_desc,
                       cudnnTensorDescriptor_t y_desc, cudnnTensorDescriptor_t param_desc)
{
    return convbn_snapshot_tensor(x_desc, &bn->x) || convbn_snapshot_tensor(y_desc, &bn->y) ||
                   convbn_snapshot_tensor(param_desc, &bn->params)
               ? -1
               : 0;
}

/* Matches a BN inference against its stream's candidate and records the pair. */
static void observe_bn(struct convbn_bn_call *bn, const void *alpha, const void *beta,
                       cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t y_desc,
                       cudnnTensorDescriptor_t param_desc)
{
    struct convbn_conv_call conv;
    if (snapshot_bn(bn, x_desc, y_desc, param_desc) != 0) {
        convbn_planner_flush(bn->stream);
        return;
    }
    bn->alpha = convbn_read_scalar(alpha, bn->x.type);
    bn->beta = convbn_read_scalar(beta, bn->x.type);
    if (convbn_planner_take_match(bn, &conv))
        convbn_stats_pair(&conv, bn, convbn_pair_reason(&conv, bn));
}

EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc, void *y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale, const void *bnBias,
    const void *estimatedMean, const void *estimatedVariance, double epsilon)
{
    if (!REAL_FOUND(cudnnBatchNormalizationForwardInference))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnBatchNormalizationForwardInference(
            handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
            estimatedMean, estimatedVariance, epsilon);
    convbn_guard_enter();
    struct convbn_bn_call bn = {
        .api = CONVBN_API_LEGACY, .handle = handle, .stream = stream_of(handle), .mode = mode,
        .x_ptr = x, .y_ptr = y, .scale = bnScale, .bias = bnBias, .mean = estimatedMean,
        .var = estimatedVariance, .eps = epsilon};
    log_call("cudnnBatchNormalizationForwardInference", bn.stream);
    observe_bn(&bn, alpha, beta, xDesc, yDesc, bnScaleBiasMeanVarDesc);
    cudnnStatus_t st = real_cudnnBatchNormalizationForwardInference(
        handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
        estimatedMean, estimatedVariance, epsilon);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnConvolutionBackwardData(
    cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionBwdDataAlgo_t algo,
    void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
    const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    if (!REAL_FOUND(cudnnConvolutionBackwardData))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnConvolutionBackwardData(handle, alpha, wDesc, w, dyDesc, dy, convDesc,
                                                 algo, workSpace, workSpaceSizeInBytes, beta,
                                                 dxDesc, dx);
    convbn_guard_enter();
    before_gpu_work("cudnnConvolutionBackwardData", handle);
    cudnnStatus_t st = real_cudnnConvolutionBackwardData(handle, alpha, wDesc, w, dyDesc, dy,
                                                         convDesc, algo, workSpace,
                                                         workSpaceSizeInBytes, beta, dxDesc, dx);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionBwdFilterAlgo_t algo,
    void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
    const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    if (!REAL_FOUND(cudnnConvolutionBackwardFilter))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnConvolutionBackwardFilter(handle, alpha, xDesc, x, dyDesc, dy, convDesc,
                                                   algo, workSpace, workSpaceSizeInBytes, beta,
                                                   dwDesc, dw);
    convbn_guard_enter();
    before_gpu_work("cudnnConvolutionBackwardFilter", handle);
    cudnnStatus_t st = real_cudnnConvolutionBackwardFilter(handle, alpha, xDesc, x, dyDesc, dy,
                                                           convDesc, algo, workSpace,
                                                           workSpaceSizeInBytes, beta, dwDesc, dw);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alphaDataDiff,
    const void *betaDataDiff, const void *alphaParamDiff, const void *betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
    const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScale, void *dBnScaleResult,
    void *dBnBiasResult, double epsilon, const void *savedMean, const void *savedInvVariance)
{
    if (!REAL_FOUND(cudnnBatchNormalizationBackward))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnBatchNormalizationBackward(
            handle, mode, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, x,
            dyDesc, dy, dxDesc, dx, dBnScaleBiasDesc, bnScale, dBnScaleResult, dBnBiasResult,
            epsilon, savedMean, savedInvVariance);
    convbn_guard_enter();
    before_gpu_work("cudnnBatchNormalizationBackward", handle);
    cudnnStatus_t st = real_cudnnBatchNormalizationBackward(
        handle, mode, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, x,
        dyDesc, dy, dxDesc, dx, dBnScaleBiasDesc, bnScale, dBnScaleResult, dBnBiasResult, epsilon,
        savedMean, savedInvVariance);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnBatchNormalizationBackwardEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps,
    const void *alphaDataDiff, const void *betaDataDiff, const void *alphaParamDiff,
    const void *betaParamDiff, const cudnnTensorDescriptor_t xDesc, const void *xData,
    const cudnnTensorDescriptor_t yDesc, const void *yData, const cudnnTensorDescriptor_t dyDesc,
    const void *dyData, const cudnnTensorDescriptor_t dzDesc, void *dzData,
    const cudnnTensorDescriptor_t dxDesc, void *dxData,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScaleData,
    const void *bnBiasData, void *dBnScaleData, void *dBnBiasData, double epsilon,
    const void *savedMean, const void *savedInvVariance,
    const cudnnActivationDescriptor_t activationDesc, void *workSpace, size_t workSpaceSizeInBytes,
    void *reserveSpace, size_t reserveSpaceSizeInBytes)
{
    if (!REAL_FOUND(cudnnBatchNormalizationBackwardEx))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!inspecting())
        return real_cudnnBatchNormalizationBackwardEx(
            handle, mode, bnOps, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff,
            xDesc, xData, yDesc, yData, dyDesc, dyData, dzDesc, dzData, dxDesc, dxData,
            dBnScaleBiasDesc, bnScaleData, bnBiasData, dBnScaleData, dBnBiasData, epsilon,
            savedMean, savedInvVariance, activationDesc, workSpace, workSpaceSizeInBytes,
            reserveSpace, reserveSpaceSizeInBytes);
    convbn_guard_enter();
    before_gpu_work("cudnnBatchNormalizationBackwardEx", handle);
    cudnnStatus_t st = real_cudnnBatchNormalizationBackwardEx(
        handle, mode, bnOps, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc,
        xData, yDesc, yData, dyDesc, dyData, dzDesc, dzData, dxDesc, dxData, dBnScaleBiasDesc,
        bnScaleData, bnBiasData, dBnScaleData, dBnBiasData, epsilon, savedMean, savedInvVariance,
        activationDesc, workSpace, workSpaceSizeInBytes, reserveSpace, reserveSpaceSizeInBytes);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!REAL_FOUND(cudnnDestroy))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (inspecting()) {
        log_call("cudnnDestroy", NULL);
        convbn_planner_forget_handle(handle);
    }
    return real_cudnnDestroy(handle);
}
