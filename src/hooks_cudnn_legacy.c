/* Interposers for the legacy cuDNN calls that take part in pairing: convolution forward
 * (plain and bias-activation), BatchNorm inference, the conv-bias add, and cudnnDestroy.
 * Each hook snapshots what the planner needs, records the call as the program issued it
 * when tracing, tells the planner, and forwards to the real function with the caller's
 * exact arguments; it never changes a result (observe mode).
 * These are the `custom` entries of src/cudnn_calls.list; every other cuDNN function gets a
 * generated pass-through wrapper (scripts/gen-cudnn-hooks.py writes both the wrappers and
 * the one list of functions, build/gen/cudnn_hooks.def).  This file only implements them. */
#include "convbn/backend_fused.h"
#include "convbn/fusion.h"
#include "convbn/hooks.h"
#include "convbn/log.h"
#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"
#include "convbn/stats.h"
#include "convbn/trace.h"

#define EXPORT __attribute__((visibility("default")))

/* Returns 1 when the real function for a hook was found (resolving on first use). */
#define REAL_FOUND(name) (CONVBN_REAL_READY(name) || (convbn_real_cudnn_resolve(), real_##name))

/* Records a forward convolution (opaque when its descriptors could not be read); z is
 * bias-activation's z operand, NULL for a plain convolution. */
static void trace_conv(const struct convbn_conv_call *c, int known, const char *name,
                       const struct convbn_trace_tensor *z, const void *caller)
{
    struct convbn_trace_op op = {
        .kind = !known ? CONVBN_TRACE_OPAQUE
                : z    ? CONVBN_TRACE_CONV_BIAS_ACT
                       : CONVBN_TRACE_CONV_FWD,
        .api = c->api, .name = name, .stream = c->stream, .caller = caller,
        .x = {c->x, c->x_ptr}, .w = {c->w, c->w_ptr}, .y = {c->y, c->y_ptr},
        .bias = {c->bias, c->bias_ptr}, .conv = c->conv, .algo = c->algo, .alpha = c->alpha,
        .beta = c->beta, .alpha2 = c->alpha2, .activation = c->activation};
    if (z)
        op.z = *z;
    convbn_trace_record(&op);
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
    if (convbn_snapshot_tensor(x_desc, &c->x) || convbn_snapshot_filter(w_desc, &c->w) ||
        convbn_snapshot_conv(conv_desc, &c->conv) || convbn_snapshot_tensor(y_desc, &c->y))
        return -1;
    c->w_bytes = convbn_filter_bytes(&c->w);
    return 0;
}

EXPORT cudnnStatus_t cudnnConvolutionForward(
    cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
    const cudnnTensorDescriptor_t yDesc, void *y)
{
    if (!REAL_FOUND(cudnnConvolutionForward))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!convbn_hook_inspecting())
        return real_cudnnConvolutionForward(handle, alpha, xDesc, x, wDesc, w, convDesc, algo,
                                            workSpace, workSpaceSizeInBytes, beta, yDesc, y);
    convbn_guard_enter();
    cudaStream_t stream = convbn_before_gpu_work("cudnnConvolutionForward", handle);
    struct convbn_conv_call conv = {.kind = CONVBN_CONV_PLAIN};
    int known = snapshot_conv(&conv, handle, stream, xDesc, x, wDesc, w, convDesc, algo, yDesc,
                              y) == 0;
    enum convbn_reason why_not = CONVBN_REASON_UNSUPPORTED;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (known) {
        conv.alpha = convbn_read_scalar(alpha, conv.y.type);
        conv.beta = convbn_read_scalar(beta, conv.y.type);
    }
    if (convbn_tracing())
        trace_conv(&conv, known, "cudnnConvolutionForward", NULL, __builtin_return_address(0));
    if (!known || !convbn_planner_offer(&conv, workSpaceSizeInBytes, &why_not)) {
        st = real_cudnnConvolutionForward(handle, alpha, xDesc, x, wDesc, w, convDesc, algo,
                                          workSpace, workSpaceSizeInBytes, beta, yDesc, y);
        if (st == CUDNN_STATUS_SUCCESS && known)
            convbn_planner_ran(&conv, why_not);
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
    if (!convbn_hook_inspecting())
        return real_cudnnConvolutionBiasActivationForward(
            handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes,
            alpha2, zDesc, z, biasDesc, bias, activationDesc, yDesc, y);
    convbn_guard_enter();
    cudaStream_t stream = convbn_before_gpu_work("cudnnConvolutionBiasActivationForward", handle);
    struct convbn_conv_call conv = {.kind = CONVBN_CONV_BIAS_ACT};
    int known =
        snapshot_conv(&conv, handle, stream, xDesc, x, wDesc, w, convDesc, algo, yDesc, y) == 0 &&
        snapshot_bias_act(&conv, alpha2, biasDesc, bias, activationDesc) == 0;
    enum convbn_reason why_not = CONVBN_REASON_UNSUPPORTED;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (known)
        conv.alpha = convbn_read_scalar(alpha1, conv.y.type);
    if (convbn_tracing()) {
        struct convbn_trace_tensor zt = {.buf = z};
        trace_conv(&conv, known && convbn_trace_tensor_of(zDesc, z, &zt) == 0,
                   "cudnnConvolutionBiasActivationForward", &zt, __builtin_return_address(0));
    }
    if (!known || !convbn_planner_offer(&conv, workSpaceSizeInBytes, &why_not)) {
        st = real_cudnnConvolutionBiasActivationForward(
            handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes,
            alpha2, zDesc, z, biasDesc, bias, activationDesc, yDesc, y);
        if (st == CUDNN_STATUS_SUCCESS && known)
            convbn_planner_ran(&conv, why_not);
    }
    convbn_guard_leave();
    return st;
}

/* Records a BatchNorm inference (opaque when its descriptors could not be read). */
static void trace_bn_inference(const struct convbn_bn_call *bn, int known, const void *caller)
{
    struct convbn_trace_op op = {
        .kind = known ? CONVBN_TRACE_BN_INFERENCE : CONVBN_TRACE_OPAQUE, .api = bn->api,
        .name = "cudnnBatchNormalizationForwardInference", .stream = bn->stream,
        .caller = caller, .mode = bn->mode, .x = {bn->x, bn->x_ptr}, .y = {bn->y, bn->y_ptr},
        .params = {bn->params, NULL}, .scale = bn->scale, .bn_bias = bn->bias, .mean = bn->mean,
        .var = bn->var, .eps = bn->eps, .alpha = bn->alpha, .beta = bn->beta};
    convbn_trace_record(&op);
}

static int snapshot_bn(struct convbn_bn_call *bn, const void *alpha, const void *beta,
                       cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t y_desc,
                       cudnnTensorDescriptor_t param_desc)
{
    if (convbn_snapshot_tensor(x_desc, &bn->x) || convbn_snapshot_tensor(y_desc, &bn->y) ||
        convbn_snapshot_tensor(param_desc, &bn->params) || !alpha || !beta)
        return -1;
    bn->alpha = convbn_read_scalar(alpha, bn->x.type);
    bn->beta = convbn_read_scalar(beta, bn->x.type);
    return 0;
}

EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc, void *y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void *bnScale, const void *bnBias,
    const void *estimatedMean, const void *estimatedVariance, double epsilon)
{
    if (!REAL_FOUND(cudnnBatchNormalizationForwardInference))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!convbn_hook_inspecting())
        return real_cudnnBatchNormalizationForwardInference(
            handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
            estimatedMean, estimatedVariance, epsilon);
    convbn_guard_enter();
    struct convbn_bn_call bn = {
        .api = CONVBN_API_LEGACY, .handle = handle, .stream = convbn_stream_of(handle),
        .mode = mode, .x_ptr = x, .y_ptr = y, .scale = bnScale, .bias = bnBias,
        .mean = estimatedMean, .var = estimatedVariance, .eps = epsilon};
    convbn_log_call("cudnnBatchNormalizationForwardInference", bn.stream);
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    int fused = 0;
    int known = snapshot_bn(&bn, alpha, beta, xDesc, yDesc, bnScaleBiasMeanVarDesc) == 0;
    if (convbn_tracing())
        trace_bn_inference(&bn, known, __builtin_return_address(0));
    if (known)
        fused = convbn_fuse_bn(&bn);
    else
        convbn_planner_flush(bn.stream, "cudnnBatchNormalizationForwardInference");
    if (!fused)
        st = real_cudnnBatchNormalizationForwardInference(
            handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
            estimatedMean, estimatedVariance, epsilon);
    convbn_guard_leave();
    return st;
}

/* Returns 1 if C = 1 * A + 1 * C adds a per-channel bias A of C's type, filling geometries. */
static int is_bias_add(const void *alpha, cudnnTensorDescriptor_t a_desc, const void *beta,
                       cudnnTensorDescriptor_t c_desc, struct convbn_tensor_geom *a,
                       struct convbn_tensor_geom *c)
{
    if (!alpha || !beta || convbn_snapshot_tensor(a_desc, a) || convbn_snapshot_tensor(c_desc, c))
        return 0;
    return a->type == c->type && convbn_read_scalar(alpha, c->type) == 1.0 &&
           convbn_read_scalar(beta, c->type) == 1.0;
}

/* Records C = alpha * A + beta * C (opaque when its descriptors could not be read). */
static void trace_add_tensor(cudaStream_t stream, const void *alpha, cudnnTensorDescriptor_t a_desc,
                             const void *a, const void *beta, cudnnTensorDescriptor_t c_desc,
                             void *c, const void *caller)
{
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_ADD_TENSOR, .api = CONVBN_API_LEGACY,
                                 .name = "cudnnAddTensor", .stream = stream, .caller = caller};
    if (!alpha || !beta || convbn_trace_tensor_of(a_desc, a, &op.a) ||
        convbn_trace_tensor_of(c_desc, c, &op.c))
        op.kind = CONVBN_TRACE_OPAQUE;
    op.alpha = convbn_read_scalar(alpha, op.c.geom.type);
    op.beta = convbn_read_scalar(beta, op.c.geom.type);
    convbn_trace_record(&op);
}

/* C = alpha * A + beta * C.  Caffe adds the conv bias this way before its BN: a per-channel
 * bias onto the pending conv's output is absorbed into the pending conv. */
EXPORT cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void *alpha,
                                    const cudnnTensorDescriptor_t aDesc, const void *A,
                                    const void *beta, const cudnnTensorDescriptor_t cDesc, void *C)
{
    if (!REAL_FOUND(cudnnAddTensor))
        return CUDNN_STATUS_NOT_INITIALIZED;
    /* Nothing pending and nothing to record: an add cannot pair, forward it at once. */
    if (!convbn_hook_inspecting() || (convbn_planner_idle() && !convbn_tracing() &&
                                      convbn_cfg.log_level < 2))
        return real_cudnnAddTensor(handle, alpha, aDesc, A, beta, cDesc, C);
    convbn_guard_enter();
    cudaStream_t stream = convbn_stream_of(handle);
    struct convbn_tensor_geom a, c;
    enum convbn_absorb absorbed = CONVBN_ABSORB_NONE;
    convbn_log_call("cudnnAddTensor", stream);
    if (convbn_tracing())
        trace_add_tensor(stream, alpha, aDesc, A, beta, cDesc, C, __builtin_return_address(0));
    if (is_bias_add(alpha, aDesc, beta, cDesc, &a, &c))
        absorbed = convbn_planner_absorb_bias(stream, C, &c, A, &a, "cudnnAddTensor");
    else
        convbn_planner_flush(stream, "cudnnAddTensor");
    cudnnStatus_t st = absorbed == CONVBN_ABSORB_DEFERRED
                           ? CUDNN_STATUS_SUCCESS
                           : real_cudnnAddTensor(handle, alpha, aDesc, A, beta, cDesc, C);
    convbn_guard_leave();
    return st;
}

EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!REAL_FOUND(cudnnDestroy))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (convbn_hook_inspecting()) {
        convbn_guard_enter();
        convbn_log_call("cudnnDestroy", NULL);
        convbn_planner_flush_handle(handle, "cudnnDestroy");
        convbn_guard_leave();
    }
    convbn_backend_fused_forget_handle(handle); /* its graphs die with it, whatever the mode */
    return real_cudnnDestroy(handle);
}
