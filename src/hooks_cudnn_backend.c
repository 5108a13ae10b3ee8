/* Interposers for the cuDNN backend (graph) API: descriptor create, set, get, finalize and
 * destroy keep the shadow table (src/backend_shadow.c) in step with the program's
 * descriptors, and cudnnBackendExecute of a plan whose graph is a single convolution
 * forward is offered to the planner like a legacy conv: deferred when it could pair (its
 * plan held, the program's destroy of it postponed until the deferred run; a shim variant
 * pack with the shim's workspace, src/backend_run.c), otherwise run and remembered so the
 * BatchNorm after it pairs with it.  Every other plan flushes the pending work, as a `work`
 * call.  Each hook forwards the caller's exact arguments and returns the real status (a
 * deferred execute returns success).  These are `custom` entries of src/cudnn_calls.list. */
#include "convbn/backend_shadow.h"
#include "convbn/hooks.h"
#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/real.h"

#define EXPORT __attribute__((visibility("default")))

/* Returns 1 when the real function for a hook was found (resolving on first use). */
#define REAL_FOUND(name) (real_##name || (convbn_real_cudnn_resolve(), real_##name))

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

EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle,
                                         cudnnBackendDescriptor_t executionPlan,
                                         cudnnBackendDescriptor_t variantPack)
{
    if (!REAL_FOUND(cudnnBackendExecute))
        return CUDNN_STATUS_NOT_INITIALIZED;
    int guarded = convbn_work_begin("cudnnBackendExecute", handle);
    struct convbn_conv_call conv;
    int known = guarded && convbn_shadow_conv_call(executionPlan, variantPack, &conv) == 0;
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
