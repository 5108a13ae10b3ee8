/* Interposers for the cuDNN backend (graph) API: descriptor create, set, get, finalize and
 * destroy keep the shadow table (src/backend_shadow.c) in step with the program's
 * descriptors, and cudnnBackendExecute of a plan whose graph is a single convolution
 * forward is offered to the planner like a legacy conv: deferred when it could pair (its
 * plan held, the program's destroy of it postponed until the deferred run; a shim variant
 * pack with the shim's workspace, src/backend_run.c), otherwise run and remembered so the
 * BatchNorm after it pairs with it.  A plan whose graph is a single batch-norm inference
 * (PyTorch's BatchNorm_v8) is offered to convbn_fuse_bn like a legacy BN, with its inverse
 * variance folded as an inverse standard deviation, and skipped when the pair ran fused.
 * Every other plan flushes the pending work, as a `work` call.  The trace records an
 * execute as the convolution (forward, backward data or filter) or BN inference its plan
 * was recognised as, anything else as opaque.  Each hook forwards the
 * caller's exact arguments and returns the real status (a deferred execute, or a BN that ran
 * fused, returns success).  These are `custom` entries of src/cudnn_calls.list. */
#include "convbn/backend_run.h"
#include "convbn/backend_shadow.h"
#include "convbn/fusion.h"
#include "convbn/hooks.h"
#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"
#include "convbn/trace.h"

#define EXPORT __attribute__((visibility("default")))

/* Returns 1 when the real function for a hook was found (resolving on first use). */
#define REAL_FOUND(name) (CONVBN_REAL_READY(name) || (convbn_real_cudnn_resolve(), real_##name))

EXPORT cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t descriptorType,
                                                  cudnnBackendDescriptor_t *descriptor)
{
    if (!REAL_FOUND(cudnnBackendCreateDescriptor))
        return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t st = real_cudnnBackendCreateDescriptor(descriptorType, descriptor);
    if (st == CUDNN_STATUS_SUCCESS && descriptor && convbn_hook_inspecting())
        convbn_shadow_create(*descriptor, descriptorType);
    return st;
}

EXPORT cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t descriptor)
{
    if (!REAL_FOUND(cudnnBackendDestroyDescriptor))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (convbn_hook_inspecting() && convbn_shadow_destroy(descriptor))
        return CUDNN_STATUS_SUCCESS; /* a plan held by deferred work: destroyed after its run */
    return real_cudnnBackendDestroyDescriptor(descriptor);
}

EXPORT cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t descriptor,
                                              cudnnBackendAttributeName_t attributeName,
                                              cudnnBackendAttributeType_t attributeType,
                                              int64_t elementCount, const void *arrayOfElements)
{
    if (!REAL_FOUND(cudnnBackendSetAttribute))
        return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t st = real_cudnnBackendSetAttribute(descriptor, attributeName, attributeType,
                                                     elementCount, arrayOfElements);
    if (st == CUDNN_STATUS_SUCCESS && convbn_hook_inspecting())
        convbn_shadow_set(descriptor, attributeName, attributeType, elementCount,
                          arrayOfElements);
    return st;
}

EXPORT cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const descriptor,
                                              cudnnBackendAttributeName_t attributeName,
                                              cudnnBackendAttributeType_t attributeType,
                                              int64_t requestedElementCount,
                                              int64_t *elementCount, void *arrayOfElements)
{
    if (!REAL_FOUND(cudnnBackendGetAttribute))
        return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t st = real_cudnnBackendGetAttribute(descriptor, attributeName, attributeType,
                                                     requestedElementCount, elementCount,
                                                     arrayOfElements);
    if (st == CUDNN_STATUS_SUCCESS && attributeType == CUDNN_TYPE_BACKEND_DESCRIPTOR &&
        elementCount && convbn_hook_inspecting())
        convbn_shadow_got(descriptor, attributeType,
                          *elementCount < requestedElementCount ? *elementCount
                                                                : requestedElementCount,
                          arrayOfElements);
    return st;
}

EXPORT cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t descriptor)
{
    if (!REAL_FOUND(cudnnBackendFinalize))
        return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t st = real_cudnnBackendFinalize(descriptor);
    if (st == CUDNN_STATUS_SUCCESS && convbn_hook_inspecting())
        convbn_shadow_finalize(descriptor);
    return st;
}

/* Executes a plan recognised as a batch-norm inference (*bn filled but for handle and
 * stream): offered to the pending conv it consumes, which it does not flush first; when the
 * pair ran fused the plan is not executed. */
static cudnnStatus_t execute_bn(cudnnHandle_t handle, cudnnBackendDescriptor_t plan,
                                cudnnBackendDescriptor_t pack, struct convbn_bn_call *bn)
{
    convbn_guard_enter();
    bn->handle = handle;
    bn->stream = convbn_stream_of(handle);
    bn->plan = plan; /* alive during this call: CONVBN_VERIFY reruns them */
    bn->pack = pack;
    convbn_log_call("cudnnBackendExecute", bn->stream);
    if (convbn_tracing()) {
        struct convbn_trace_op op;
        convbn_trace_describe_bn(bn, "cudnnBackendExecute", &op);
        convbn_trace_record(&op);
    }
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (!convbn_fuse_bn(bn))
        st = real_cudnnBackendExecute(handle, plan, pack);
    convbn_guard_leave();
    return st;
}

/* Records an execute that is not a recognised BN: a recognised convolution of any
 * direction as conv_fwd, conv_bwd_data or conv_bwd_filter, anything else as opaque. */
static void trace_execute(cudnnHandle_t handle, cudnnBackendDescriptor_t plan,
                          cudnnBackendDescriptor_t pack)
{
    static const enum convbn_trace_kind kinds[] = {
        [CONVBN_BACKEND_FWD] = CONVBN_TRACE_CONV_FWD,
        [CONVBN_BACKEND_BWD_DATA] = CONVBN_TRACE_CONV_BWD_DATA,
        [CONVBN_BACKEND_BWD_FILTER] = CONVBN_TRACE_CONV_BWD_FILTER};
    struct convbn_conv_call c = {0};
    struct convbn_trace_op op;
    int dir = convbn_shadow_conv_any(plan, pack, &c);
    c.api = CONVBN_API_BACKEND;
    c.stream = convbn_stream_of(handle);
    convbn_trace_describe_conv(&c, dir < 0 ? CONVBN_TRACE_OPAQUE : kinds[dir],
                               "cudnnBackendExecute", &op);
    convbn_trace_record(&op);
}

EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle,
                                         cudnnBackendDescriptor_t executionPlan,
                                         cudnnBackendDescriptor_t variantPack)
{
    if (!REAL_FOUND(cudnnBackendExecute))
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!convbn_hook_inspecting())
        return real_cudnnBackendExecute(handle, executionPlan, variantPack);
    enum convbn_plan_kind kind = convbn_shadow_plan_kind(executionPlan);
    struct convbn_bn_call bn;
    if (kind == CONVBN_PLAN_BN && convbn_shadow_bn_call(executionPlan, variantPack, &bn) == 0 &&
        convbn_backend_workspace_ok(executionPlan, variantPack)) /* else the real call fails */
        return execute_bn(handle, executionPlan, variantPack, &bn);
    int guarded = convbn_work_enter("cudnnBackendExecute", handle);
    if (guarded && convbn_tracing())
        trace_execute(handle, executionPlan, variantPack);
    struct convbn_conv_call conv;
    int known = guarded && kind == CONVBN_PLAN_CONV_FWD &&
                convbn_shadow_conv_call(executionPlan, variantPack, &conv) == 0;
    enum convbn_reason why_not = CONVBN_FUSABLE;
    if (known) {
        conv.handle = handle;
        conv.stream = convbn_stream_of(handle);
        if (convbn_planner_offer_backend(&conv, executionPlan, variantPack, &why_not)) {
            convbn_work_end(guarded);
            return CUDNN_STATUS_SUCCESS; /* deferred */
        }
    }
    cudnnStatus_t st = real_cudnnBackendExecute(handle, executionPlan, variantPack);
    if (st == CUDNN_STATUS_SUCCESS && known)
        convbn_planner_ran(&conv, why_not);
    convbn_work_end(guarded);
    return st;
}
