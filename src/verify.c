/* CONVBN_VERIFY=1 (DESIGN.md section 6): after a fused pair ran, the original conv and BN run
 * again into shim scratch buffers, both results are copied to the host and compared element
 * by element; the worst errors are recorded per pair signature.  A backend conv reruns its
 * held plan with a shim variant pack whose output is the scratch; a backend BN reruns
 * the program's own plan (alive: this runs inside its cudnnBackendExecute) with a shim pack
 * reading and writing scratch.  Slow by design (two device-to-host copies and a stream
 * synchronisation per pair); a debugging aid.  Owns no state; never touches the program's
 * buffers except to read the fused result. */
#include <math.h>
#include <stdlib.h>

#include "convbn/backend_run.h"
#include "convbn/desc_cache.h"
#include "convbn/device_memory.h"
#include "convbn/dtype.h"
#include "convbn/executor.h"
#include "convbn/real.h"
#include "convbn/real_cudart.h"
#include "convbn/stats.h"
#include "convbn/verify.h"

/* Runs the original BN from y (the unfused conv output) into z; returns the cuDNN status. */
static cudnnStatus_t run_original_bn(const struct convbn_pending *p,
                                     const struct convbn_bn_call *bn, const void *y, void *z)
{
    if (bn->inv_std) /* a backend BN: no legacy BN takes an inverse std */
        return convbn_backend_bn_into(bn, y, z);
    const float alpha = (float)bn->alpha, beta = 0.0f;
    cudnnTensorDescriptor_t z_desc = convbn_tensor_desc_acquire(&bn->y);
    cudnnTensorDescriptor_t p_desc = convbn_tensor_desc_acquire(&bn->params);
    cudnnStatus_t st = CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    if (z_desc && p_desc)
        st = real_cudnnBatchNormalizationForwardInference(
            bn->handle, (cudnnBatchNormMode_t)bn->mode, &alpha, &beta, p->descs->y, y, z_desc, z,
            p_desc, bn->scale, bn->bias, bn->mean, bn->var, bn->eps);
    if (z_desc)
        convbn_tensor_desc_release(z_desc);
    if (p_desc)
        convbn_tensor_desc_release(p_desc);
    return st;
}

struct errors {
    double max_abs, max_rel;
};

/* Compares every element of geometry t in two host copies; recursion over dims. */
static void compare(const struct convbn_tensor_geom *t, const void *fused, const void *ref,
                    int dim, long long offset, struct errors *e)
{
    if (dim == t->nb_dims) {
        double f = convbn_element_load(fused, t->type, offset);
        double r = convbn_element_load(ref, t->type, offset);
        double diff = isnan(f) != isnan(r) ? INFINITY : (isnan(f) ? 0.0 : fabs(f - r));
        double rel = diff / fmax(1.0, fabs(r));
        e->max_abs = fmax(e->max_abs, diff);
        e->max_rel = fmax(e->max_rel, rel);
        return;
    }
    for (int i = 0; i < t->dims[dim]; i++)
        compare(t, fused, ref, dim + 1, offset + (long long)i * t->strides[dim], e);
}

static int copy_to_host(void *dst, const void *src, size_t bytes)
{
    return real_cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
}

/* Runs the original conv of p into y; returns the cuDNN status. */
static cudnnStatus_t run_original_conv(const struct convbn_pending *p, void *y)
{
    struct convbn_pending unfused = *p;
    unfused.conv.y_ptr = y;
    unfused.backend_pack = NULL; /* a backend conv runs with a pack built from y */
    return convbn_exec_deferred(&unfused);
}

void convbn_verify_pair(const struct convbn_pending *p, const struct convbn_bn_call *bn)
{
    size_t y_bytes = convbn_tensor_span_bytes(&p->conv.y), z_bytes = convbn_tensor_span_bytes(&bn->y);
    int in_place = bn->x_ptr == bn->y_ptr; /* rerun in place: a pack's pointers cannot tell
                                            * a backend BN's x from its y */
    void *y = convbn_scratch(p->conv.stream, CONVBN_SCRATCH_VERIFY_Y,
                             in_place && z_bytes > y_bytes ? z_bytes : y_bytes);
    void *z = in_place ? y : convbn_scratch(p->conv.stream, CONVBN_SCRATCH_VERIFY_Z, z_bytes);
    if (!y || !z || run_original_conv(p, y) != CUDNN_STATUS_SUCCESS ||
        run_original_bn(p, bn, y, z) != CUDNN_STATUS_SUCCESS)
        return;
    void *fused_host = malloc(z_bytes), *ref_host = malloc(z_bytes);
    struct errors e = {0.0, 0.0};
    if (fused_host && ref_host && real_cudaStreamSynchronize &&
        real_cudaStreamSynchronize(p->conv.stream) == cudaSuccess &&
        copy_to_host(fused_host, bn->y_ptr, z_bytes) && copy_to_host(ref_host, z, z_bytes)) {
        compare(&bn->y, fused_host, ref_host, 0, 0, &e);
        convbn_stats_verify(&p->conv, bn, e.max_abs, e.max_rel);
    }
    free(fused_host);
    free(ref_host);
}
