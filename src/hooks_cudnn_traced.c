/* Interposers for the cuDNN compute calls whose geometry the trace records but that take no
 * part in pairing: convolution backward data and filter, BatchNorm training and backward
 * (plain and Ex), and cudnnOpTensor.  Each flushes like a generated `work` wrapper
 * (convbn_work_enter), describes the call to the trace recorder when tracing, and forwards
 * the caller's exact arguments with the guard held.  These are `custom` entries of
 * src/cudnn_calls.list; the recorder (trace.c) decides nothing here and changes nothing. */
#include "convbn/geometry.h"
#include "convbn/hooks.h"
#include "convbn/real.h"
#include "convbn/records.h"
#include "convbn/trace.h"

#define EXPORT __attribute__((visibility("default")))

/* Returns CUDNN_STATUS_NOT_INITIALIZED from the hook when the real function is missing. */
#define ENSURE_REAL(name)                                                                      \
    do {                                                                                       \
        if (!CONVBN_REAL_READY(name)) {                                                        \
            convbn_real_cudnn_resolve();                                                       \
            if (!real_##name)                                                                  \
                return CUDNN_STATUS_NOT_INITIALIZED;                                           \
        }                                                                                      \
    } while (0)

/* Each returns 1 when the descriptor was read into the operand (whose buf is set). */
static int read_tensor(struct convbn_trace_tensor *t, cudnnTensorDescriptor_t desc)
{
    return convbn_snapshot_tensor(desc, &t->geom) == 0;
}

static int read_filter(struct convbn_trace_filter *f, cudnnFilterDescriptor_t desc)
{
    return convbn_snapshot_filter(desc, &f->geom) == 0;
}

/* Reads alpha and beta (double for DOUBLE data, float otherwise), sets the stream of handle
 * and records op; as opaque when `readable` is 0 (a descriptor could not be read). */
static void record(struct convbn_trace_op *op, cudnnHandle_t handle, int readable,
                   const void *alpha, const void *beta, int data_type)
{
    op->alpha = convbn_read_scalar(alpha, data_type);
    op->beta = convbn_read_scalar(beta, data_type);
    op->stream = convbn_stream_of(handle);
    if (!readable)
        op->kind = CONVBN_TRACE_OPAQUE;
    convbn_trace_record(op);
}

EXPORT cudnnStatus_t cudnnConvolutionBackwardData(
    cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdDataAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *beta, const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    ENSURE_REAL(cudnnConvolutionBackwardData);
    int guarded = convbn_work_enter("cudnnConvolutionBackwardData", handle);
    if (guarded && convbn_tracing()) {
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_CONV_BWD_DATA, .name = "cudnnConvolutionBackwardData",
            .caller = __builtin_return_address(0), .w.buf = w, .dy.buf = dy, .dx.buf = dx,
            .algo = algo};
        int ok = read_filter(&op.w, wDesc) && read_tensor(&op.dy, dyDesc) &&
                 read_tensor(&op.dx, dxDesc) && convbn_snapshot_conv(convDesc, &op.conv) == 0;
        record(&op, handle, ok, alpha, beta, op.dx.geom.type);
    }
    cudnnStatus_t st = real_cudnnConvolutionBackwardData(handle, alpha, wDesc, w, dyDesc, dy,
                                                         convDesc, algo, workSpace,
                                                         workSpaceSizeInBytes, beta, dxDesc, dx);
    convbn_work_end(guarded);
    return st;
}

EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *beta, const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    ENSURE_REAL(cudnnConvolutionBackwardFilter);
    int guarded = convbn_work_enter("cudnnConvolutionBackwardFilter", handle);
    if (guarded && convbn_tracing()) {
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_CONV_BWD_FILTER, .name = "cudnnConvolutionBackwardFilter",
            .caller = __builtin_return_address(0), .x.buf = x, .dy.buf = dy, .w.buf = dw,
            .algo = algo};
        int ok = read_tensor(&op.x, xDesc) && read_tensor(&op.dy, dyDesc) &&
                 read_filter(&op.w, dwDesc) && convbn_snapshot_conv(convDesc, &op.conv) == 0;
        record(&op, handle, ok, alpha, beta, op.w.geom.type);
    }
    cudnnStatus_t st = real_cudnnConvolutionBackwardFilter(handle, alpha, xDesc, x, dyDesc, dy,
                                                           convDesc, algo, workSpace,
                                                           workSpaceSizeInBytes, beta, dwDesc, dw);
    convbn_work_end(guarded);
    return st;
}

/* Records a BatchNorm training step whose pointers and scalars op already holds. */
static void trace_bn_training(struct convbn_trace_op *op, cudnnHandle_t handle, int bn_only,
                              const void *alpha, const void *beta, cudnnTensorDescriptor_t x_desc,
                              cudnnTensorDescriptor_t y_desc, cudnnTensorDescriptor_t params_desc)
{
    int ok = bn_only && read_tensor(&op->x, x_desc) && read_tensor(&op->y, y_desc) &&
             read_tensor(&op->params, params_desc);
    record(op, handle, ok, alpha, beta, op->x.geom.type);
}

EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc, void *y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale, const void *bnBias,
    double exponentialAverageFactor, void *resultRunningMean, void *resultRunningVariance,
    double epsilon, void *resultSaveMean, void *resultSaveInvVariance)
{
    ENSURE_REAL(cudnnBatchNormalizationForwardTraining);
    int guarded = convbn_work_enter("cudnnBatchNormalizationForwardTraining", handle);
    if (guarded && convbn_tracing()) {
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_BN_TRAINING, .name = "cudnnBatchNormalizationForwardTraining",
            .caller = __builtin_return_address(0), .mode = mode, .x.buf = x, .y.buf = y,
            .scale = bnScale, .bn_bias = bnBias, .mean = resultRunningMean,
            .var = resultRunningVariance, .eps = epsilon, .factor = exponentialAverageFactor,
            .saved_mean = resultSaveMean, .saved_inv_var = resultSaveInvVariance};
        trace_bn_training(&op, handle, 1, alpha, beta, xDesc, yDesc, bnScaleBiasMeanVarDesc);
    }
    cudnnStatus_t st = real_cudnnBatchNormalizationForwardTraining(
        handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
        exponentialAverageFactor, resultRunningMean, resultRunningVariance, epsilon,
        resultSaveMean, resultSaveInvVariance);
    convbn_work_end(guarded);
    return st;
}

/* With bnOps other than CUDNN_BATCHNORM_OPS_BN (fused add/activation) the call is opaque. */
EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTrainingEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps, const void *alpha,
    const void *beta, const cudnnTensorDescriptor_t xDesc, const void *xData,
    const cudnnTensorDescriptor_t zDesc, const void *zData, const cudnnTensorDescriptor_t yDesc,
    void *yData, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale,
    const void *bnBias, double exponentialAverageFactor, void *resultRunningMean,
    void *resultRunningVariance, double epsilon, void *resultSaveMean, void *resultSaveInvVariance,
    cudnnActivationDescriptor_t activationDesc, void *workspace, size_t workSpaceSizeInBytes,
    void *reserveSpace, size_t reserveSpaceSizeInBytes)
{
    ENSURE_REAL(cudnnBatchNormalizationForwardTrainingEx);
    int guarded = convbn_work_enter("cudnnBatchNormalizationForwardTrainingEx", handle);
    if (guarded && convbn_tracing()) {
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_BN_TRAINING, .name = "cudnnBatchNormalizationForwardTrainingEx",
            .caller = __builtin_return_address(0), .mode = mode, .x.buf = xData, .y.buf = yData,
            .scale = bnScale, .bn_bias = bnBias, .mean = resultRunningMean,
            .var = resultRunningVariance, .eps = epsilon, .factor = exponentialAverageFactor,
            .saved_mean = resultSaveMean, .saved_inv_var = resultSaveInvVariance};
        trace_bn_training(&op, handle, bnOps == CUDNN_BATCHNORM_OPS_BN, alpha, beta, xDesc, yDesc,
                          bnScaleBiasMeanVarDesc);
    }
    cudnnStatus_t st = real_cudnnBatchNormalizationForwardTrainingEx(
        handle, mode, bnOps, alpha, beta, xDesc, xData, zDesc, zData, yDesc, yData,
        bnScaleBiasMeanVarDesc, bnScale, bnBias, exponentialAverageFactor, resultRunningMean,
        resultRunningVariance, epsilon, resultSaveMean, resultSaveInvVariance, activationDesc,
        workspace, workSpaceSizeInBytes, reserveSpace, reserveSpaceSizeInBytes);
    convbn_work_end(guarded);
    return st;
}

/* Records a BatchNorm backward step whose pointers and scalars op already holds; the
 * parameter-gradient scaling factors are read like the data ones. */
static void trace_bn_backward(struct convbn_trace_op *op, cudnnHandle_t handle, int bn_only,
                              const void *const scaling[4], cudnnTensorDescriptor_t x_desc,
                              cudnnTensorDescriptor_t dy_desc, cudnnTensorDescriptor_t dx_desc,
                              cudnnTensorDescriptor_t params_desc)
{
    int ok = bn_only && read_tensor(&op->x, x_desc) && read_tensor(&op->dy, dy_desc) &&
             read_tensor(&op->dx, dx_desc) && read_tensor(&op->params, params_desc);
    op->alpha_param = convbn_read_scalar(scaling[2], op->x.geom.type);
    op->beta_param = convbn_read_scalar(scaling[3], op->x.geom.type);
    record(op, handle, ok, scaling[0], scaling[1], op->x.geom.type);
}

EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alphaDataDiff,
    const void *betaDataDiff, const void *alphaParamDiff, const void *betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t dyDesc,
    const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void *bnScale, void *dBnScaleResult,
    void *dBnBiasResult, double epsilon, const void *savedMean, const void *savedInvVariance)
{
    ENSURE_REAL(cudnnBatchNormalizationBackward);
    int guarded = convbn_work_enter("cudnnBatchNormalizationBackward", handle);
    if (guarded && convbn_tracing()) {
        const void *const scaling[4] = {alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff};
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_BN_BACKWARD, .name = "cudnnBatchNormalizationBackward",
            .caller = __builtin_return_address(0), .mode = mode, .x.buf = x, .dy.buf = dy,
            .dx.buf = dx, .scale = bnScale, .dscale = dBnScaleResult, .dbias = dBnBiasResult,
            .eps = epsilon, .saved_mean = savedMean, .saved_inv_var = savedInvVariance};
        trace_bn_backward(&op, handle, 1, scaling, xDesc, dyDesc, dxDesc, dBnScaleBiasDesc);
    }
    cudnnStatus_t st = real_cudnnBatchNormalizationBackward(
        handle, mode, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, x, dyDesc,
        dy, dxDesc, dx, dBnScaleBiasDesc, bnScale, dBnScaleResult, dBnBiasResult, epsilon,
        savedMean, savedInvVariance);
    convbn_work_end(guarded);
    return st;
}

/* With bnOps other than CUDNN_BATCHNORM_OPS_BN (fused add/activation) the call is opaque. */
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
    cudnnActivationDescriptor_t activationDesc, void *workSpace, size_t workSpaceSizeInBytes,
    void *reserveSpace, size_t reserveSpaceSizeInBytes)
{
    ENSURE_REAL(cudnnBatchNormalizationBackwardEx);
    int guarded = convbn_work_enter("cudnnBatchNormalizationBackwardEx", handle);
    if (guarded && convbn_tracing()) {
        const void *const scaling[4] = {alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff};
        struct convbn_trace_op op = {
            .kind = CONVBN_TRACE_BN_BACKWARD, .name = "cudnnBatchNormalizationBackwardEx",
            .caller = __builtin_return_address(0), .mode = mode, .x.buf = xData,
            .dy.buf = dyData, .dx.buf = dxData, .scale = bnScaleData, .dscale = dBnScaleData,
            .dbias = dBnBiasData, .eps = epsilon, .saved_mean = savedMean,
            .saved_inv_var = savedInvVariance};
        trace_bn_backward(&op, handle, bnOps == CUDNN_BATCHNORM_OPS_BN, scaling, xDesc, dyDesc,
                          dxDesc, dBnScaleBiasDesc);
    }
    cudnnStatus_t st = real_cudnnBatchNormalizationBackwardEx(
        handle, mode, bnOps, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc,
        xData, yDesc, yData, dyDesc, dyData, dzDesc, dzData, dxDesc, dxData, dBnScaleBiasDesc,
        bnScaleData, bnBiasData, dBnScaleData, dBnBiasData, epsilon, savedMean, savedInvVariance,
        activationDesc, workSpace, workSpaceSizeInBytes, reserveSpace, reserveSpaceSizeInBytes);
    convbn_work_end(guarded);
    return st;
}

/* Returns 1 when the op-tensor descriptor was read into op->mode and op->compute. */
static int read_op_tensor(struct convbn_trace_op *op, cudnnOpTensorDescriptor_t desc)
{
    cudnnOpTensorOp_t which;
    cudnnDataType_t compute;
    cudnnNanPropagation_t nan_opt;
    if (!real_cudnnGetOpTensorDescriptor ||
        real_cudnnGetOpTensorDescriptor(desc, &which, &compute, &nan_opt) != CUDNN_STATUS_SUCCESS)
        return 0;
    op->mode = which;
    op->compute = compute;
    return 1;
}

/* C = op(alpha1 * A, alpha2 * B) + beta * C. */
EXPORT cudnnStatus_t cudnnOpTensor(cudnnHandle_t handle, const cudnnOpTensorDescriptor_t opTensorDesc,
                                   const void *alpha1, const cudnnTensorDescriptor_t aDesc,
                                   const void *A, const void *alpha2,
                                   const cudnnTensorDescriptor_t bDesc, const void *B,
                                   const void *beta, const cudnnTensorDescriptor_t cDesc, void *C)
{
    ENSURE_REAL(cudnnOpTensor);
    int guarded = convbn_work_enter("cudnnOpTensor", handle);
    if (guarded && convbn_tracing()) {
        struct convbn_trace_op op = {.kind = CONVBN_TRACE_OP_TENSOR, .name = "cudnnOpTensor",
                                     .caller = __builtin_return_address(0), .a.buf = A,
                                     .b.buf = B, .c.buf = C};
        int ok = read_op_tensor(&op, opTensorDesc) && read_tensor(&op.a, aDesc) &&
                 read_tensor(&op.b, bDesc) && read_tensor(&op.c, cDesc);
        op.alpha2 = convbn_read_scalar(alpha2, op.c.geom.type);
        record(&op, handle, ok, alpha1, beta, op.c.geom.type);
    }
    cudnnStatus_t st = real_cudnnOpTensor(handle, opTensorDesc, alpha1, aDesc, A, alpha2, bDesc, B,
                                          beta, cDesc, C);
    convbn_work_end(guarded);
    return st;
}
