/* The resources of a deferred backend convolution (include/convbn/backend_run.h): a hold on
 * the program's plan in the shadow table, the stream's CONVBN_SCRATCH_PLAN workspace, which
 * nothing else uses, and a shim variant pack built at deferral (everything a deferred run
 * needs is secured before the program is told success, DESIGN.md invariant 4) from the
 * plan's x, w and y unique ids (the shadow's recognised graph) and the conv record's
 * pointers.  Owns nothing beyond those.  For CONVBN_VERIFY it also builds a short-lived pack that redirects
 * a backend BN's input and output into shim scratch; the program's buffers are never
 * written.  Its pack builder (convbn_backend_pack) serves the fused graph's packs too. */
#include "convbn/backend_run.h"
#include "convbn/backend_shadow.h"
#include "convbn/device_memory.h"
#include "convbn/real.h"

/* Reads one int64 or pointer attribute with the real function; returns 0 or -1. */
static int get_one(cudnnBackendDescriptor_t desc, cudnnBackendAttributeName_t name,
                   cudnnBackendAttributeType_t type, void *value)
{
    int64_t n = 0;
    return real_cudnnBackendGetAttribute(desc, name, type, 1, &n, value) ==
                       CUDNN_STATUS_SUCCESS &&
                   n == 1
               ? 0
               : -1;
}

cudnnBackendDescriptor_t convbn_backend_pack(const int64_t *uids, void *const *pointers, int n,
                                             void *workspace)
{
    cudnnBackendDescriptor_t pack = NULL;
    if (real_cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack) !=
            CUDNN_STATUS_SUCCESS ||
        !pack)
        return NULL;
    if (real_cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                      n, uids) != CUDNN_STATUS_SUCCESS ||
        real_cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                      CUDNN_TYPE_VOID_PTR, n, pointers) != CUDNN_STATUS_SUCCESS ||
        real_cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                      1, &workspace) != CUDNN_STATUS_SUCCESS ||
        real_cudnnBackendFinalize(pack) != CUDNN_STATUS_SUCCESS) {
        real_cudnnBackendDestroyDescriptor(pack);
        return NULL;
    }
    return pack;
}

/* Reads the workspace size plan needs; returns 0, or -1 when the query fails. */
static int plan_workspace(cudnnBackendDescriptor_t plan, int64_t *size)
{
    return real_cudnnBackendGetAttribute &&
                   get_one(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                           size) == 0 &&
                   *size >= 0
               ? 0
               : -1;
}

int convbn_backend_workspace_ok(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack)
{
    int64_t size = 0;
    void *ws = NULL;
    if (plan_workspace(plan, &size) != 0)
        return 0;
    return size == 0 ||
           (get_one(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &ws) == 0 && ws);
}

/* Builds the shim pack that runs conv as plan: the plan's x, w and y unique ids (the
 * shadow's recognised graph), conv's pointers and the stream's CONVBN_SCRATCH_PLAN workspace
 * of the plan's `size`.  Returns it, or NULL. */
static cudnnBackendDescriptor_t conv_pack(const struct convbn_conv_call *conv,
                                          cudnnBackendDescriptor_t plan, int64_t size)
{
    int64_t uids[3];
    void *pointers[3] = {(void *)conv->x_ptr, (void *)conv->w_ptr, conv->y_ptr}, *ws = NULL;
    if (convbn_shadow_conv_uids(plan, uids) != 0 ||
        (size > 0 && !(ws = convbn_scratch(conv->stream, CONVBN_SCRATCH_PLAN, (size_t)size))))
        return NULL;
    return convbn_backend_pack(uids, pointers, 3, ws);
}

enum convbn_reason convbn_backend_secure(const struct convbn_conv_call *conv,
                                         cudnnBackendDescriptor_t plan,
                                         cudnnBackendDescriptor_t pack,
                                         cudnnBackendDescriptor_t *shim_pack)
{
    int64_t size = 0;
    void *program_ws = NULL;
    *shim_pack = NULL;
    if (!real_cudnnBackendCreateDescriptor || !real_cudnnBackendSetAttribute ||
        !real_cudnnBackendFinalize || !real_cudnnBackendDestroyDescriptor ||
        plan_workspace(plan, &size) != 0)
        return CONVBN_REASON_UNSUPPORTED;
    if (size > 0 &&
        (get_one(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &program_ws) ||
         !program_ws))
        return CONVBN_REASON_UNSUPPORTED; /* the real call fails: let it, with its status */
    if (size > 0 && !convbn_scratch(conv->stream, CONVBN_SCRATCH_PLAN, (size_t)size))
        return CONVBN_REASON_MEMORY_CAP;
    if (convbn_shadow_hold(plan) != 0)
        return CONVBN_REASON_UNSUPPORTED;
    if (!(*shim_pack = conv_pack(conv, plan, size))) {
        convbn_backend_release(plan, NULL);
        return CONVBN_REASON_UNSUPPORTED;
    }
    return CONVBN_FUSABLE;
}

cudnnStatus_t convbn_backend_execute(const struct convbn_conv_call *conv,
                                     cudnnBackendDescriptor_t plan,
                                     cudnnBackendDescriptor_t pack)
{
    if (!plan)
        return CUDNN_STATUS_INTERNAL_ERROR;
    int64_t size = 0;
    if (pack)
        return real_cudnnBackendExecute(conv->handle, plan, pack);
    cudnnBackendDescriptor_t own = plan_workspace(plan, &size) == 0 ? conv_pack(conv, plan, size)
                                                                     : NULL;
    if (!own)
        return CUDNN_STATUS_INTERNAL_ERROR;
    cudnnStatus_t st = real_cudnnBackendExecute(conv->handle, plan, own);
    real_cudnnBackendDestroyDescriptor(own);
    return st;
}

void convbn_backend_release(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack)
{
    if (pack)
        real_cudnnBackendDestroyDescriptor(pack);
    if (plan && convbn_shadow_release(plan))
        real_cudnnBackendDestroyDescriptor(plan);
}

/* Points every entry of the n pointers that equals from at to instead. */
static void redirect(void **pointers, int n, const void *from, void *to)
{
    for (int i = 0; i < n; i++)
        if (pointers[i] == from)
            pointers[i] = to;
}

cudnnStatus_t convbn_backend_bn_into(const struct convbn_bn_call *bn, const void *x, void *y)
{
    int64_t uids[CONVBN_SHADOW_PACK_MAX], size = 0;
    void *pointers[CONVBN_SHADOW_PACK_MAX], *ws = NULL;
    int n = convbn_shadow_pack(bn->pack, uids, pointers, CONVBN_SHADOW_PACK_MAX);
    if (n < 0 ||
        get_one(bn->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, &size))
        return CUDNN_STATUS_INTERNAL_ERROR;
    if (size > 0 && !(ws = convbn_scratch(bn->stream, CONVBN_SCRATCH_WORKSPACE, (size_t)size)))
        return CUDNN_STATUS_INTERNAL_ERROR;
    redirect(pointers, n, bn->y_ptr, y); /* first: in place, both entries now point at y */
    redirect(pointers, n, bn->x_ptr, (void *)x);
    cudnnBackendDescriptor_t pack = convbn_backend_pack(uids, pointers, n, ws);
    if (!pack)
        return CUDNN_STATUS_INTERNAL_ERROR;
    cudnnStatus_t st = real_cudnnBackendExecute(bn->handle, bn->plan, pack);
    real_cudnnBackendDestroyDescriptor(pack);
    return st;
}
