/* The resources of a deferred backend convolution (include/convbn/backend_run.h): a hold on
 * the program's plan in the shadow table and a shim-owned variant pack built with the real
 * cuDNN backend calls from the shadow's copy of the program's pack (same unique ids and data
 * pointers) and the stream's CONVBN_SCRATCH_PLAN workspace, which nothing else uses, so the
 * pointer in the pack stays valid until the deferred run.  Owns nothing beyond those.  For
 * CONVBN_VERIFY it also builds short-lived packs that redirect a conv's output, or a backend
 * BN's input and output, into shim scratch; the program's buffers are never written. */
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

/* Builds and finalizes the shim pack; returns it or NULL. */
static cudnnBackendDescriptor_t build_pack(const int64_t *uids, void *const *pointers, int n,
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

enum convbn_reason convbn_backend_secure(const struct convbn_conv_call *conv,
                                         const struct convbn_backend_run *program,
                                         struct convbn_backend_run *out)
{
    int64_t uids[CONVBN_SHADOW_PACK_MAX], size = 0;
    void *pointers[CONVBN_SHADOW_PACK_MAX], *program_ws = NULL, *ws = NULL;
    out->plan = out->pack = NULL;
    int n = convbn_shadow_pack(program->pack, uids, pointers, CONVBN_SHADOW_PACK_MAX);
    if (n < 0 || !real_cudnnBackendGetAttribute || !real_cudnnBackendCreateDescriptor ||
        !real_cudnnBackendSetAttribute || !real_cudnnBackendFinalize ||
        !real_cudnnBackendDestroyDescriptor ||
        get_one(program->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, &size) ||
        size < 0 ||
        get_one(program->pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &program_ws))
        return CONVBN_REASON_UNSUPPORTED;
    if (size > 0 && !program_ws)
        return CONVBN_REASON_UNSUPPORTED; /* the real call fails: let it, with its status */
    if (size > 0 && !(ws = convbn_scratch(conv->stream, CONVBN_SCRATCH_PLAN, (size_t)size)))
        return CONVBN_REASON_MEMORY_CAP;
    if (convbn_shadow_hold(program->plan) != 0)
        return CONVBN_REASON_UNSUPPORTED;
    out->plan = program->plan;
    if (!(out->pack = build_pack(uids, pointers, n, ws))) {
        convbn_backend_release(out);
        return CONVBN_REASON_UNSUPPORTED;
    }
    return CONVBN_FUSABLE;
}

int convbn_backend_workspace_ok(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack)
{
    int64_t size = 0;
    void *ws = NULL;
    if (!real_cudnnBackendGetAttribute ||
        get_one(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, &size) ||
        size < 0)
        return 0;
    return size == 0 ||
           (get_one(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &ws) == 0 && ws);
}

cudnnStatus_t convbn_backend_execute(const struct convbn_conv_call *conv,
                                     const struct convbn_backend_run *run)
{
    if (!run->plan || !run->pack)
        return CUDNN_STATUS_INTERNAL_ERROR;
    return real_cudnnBackendExecute(conv->handle, run->plan, run->pack);
}

void convbn_backend_release(struct convbn_backend_run *run)
{
    if (run->pack)
        real_cudnnBackendDestroyDescriptor(run->pack);
    if (run->plan && convbn_shadow_release(run->plan))
        real_cudnnBackendDestroyDescriptor(run->plan);
    run->plan = run->pack = NULL;
}

/* Points every entry of the n pointers that equals from at to instead. */
static void redirect(void **pointers, int n, const void *from, void *to)
{
    for (int i = 0; i < n; i++)
        if (pointers[i] == from)
            pointers[i] = to;
}

/* Reads the unique ids, data pointers (at most CONVBN_SHADOW_PACK_MAX) and workspace of a
 * finalized pack with the real function; returns their number, or -1. */
static int read_pack(cudnnBackendDescriptor_t pack, int64_t *uids, void **pointers,
                     void **workspace)
{
    int64_t n = 0, m = 0;
    if (real_cudnnBackendGetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                      CONVBN_SHADOW_PACK_MAX, &n, uids) != CUDNN_STATUS_SUCCESS ||
        real_cudnnBackendGetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                      CUDNN_TYPE_VOID_PTR, CONVBN_SHADOW_PACK_MAX, &m,
                                      pointers) != CUDNN_STATUS_SUCCESS ||
        n != m || n > CONVBN_SHADOW_PACK_MAX ||
        get_one(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, workspace))
        return -1;
    return (int)n;
}

cudnnBackendDescriptor_t convbn_backend_pack_into(const struct convbn_backend_run *run,
                                                  const void *y, void *to)
{
    int64_t uids[CONVBN_SHADOW_PACK_MAX];
    void *pointers[CONVBN_SHADOW_PACK_MAX], *ws = NULL;
    int n = run->pack ? read_pack(run->pack, uids, pointers, &ws) : -1;
    if (n < 0)
        return NULL;
    redirect(pointers, n, y, to);
    return build_pack(uids, pointers, n, ws);
}

void convbn_backend_pack_destroy(cudnnBackendDescriptor_t pack)
{
    real_cudnnBackendDestroyDescriptor(pack);
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
    cudnnBackendDescriptor_t pack = build_pack(uids, pointers, n, ws);
    if (!pack)
        return CUDNN_STATUS_INTERNAL_ERROR;
    cudnnStatus_t st = real_cudnnBackendExecute(bn->handle, bn->plan, pack);
    real_cudnnBackendDestroyDescriptor(pack);
    return st;
}
