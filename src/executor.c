/* The executor: runs a deferred convolution exactly as it was asked for, and runs a matched
 * pair as one convolution with the BatchNorm folded in (DESIGN.md sections 1 and 3): a
 * backend-API conv through the shim's fused backend graph (src/backend_fused.c) when cuDNN
 * has one for the geometry, otherwise (and for a legacy conv) one bias-activation forward.  Uses
 * only shim-owned descriptors and scratch memory (invariant 2) and the program's handle,
 * temporarily bound to the pending work's stream.  The fused algorithm is chosen once per
 * geometry from cuDNN's own heuristics and cached, failures too.  Owns no state. */
#include <string.h>

#include "convbn/backend_fused.h"
#include "convbn/backend_run.h"
#include "convbn/desc_cache.h"
#include "convbn/device_memory.h"
#include "convbn/executor.h"
#include "convbn/fold.h"
#include "convbn/log.h"
#include "convbn/real.h"

/* Binds handle to stream for the duration of a call; returns the stream to restore. */
static cudaStream_t bind_stream(cudnnHandle_t handle, cudaStream_t stream)
{
    cudaStream_t current = stream;
    if (real_cudnnGetStream(handle, &current) == CUDNN_STATUS_SUCCESS && current != stream)
        real_cudnnSetStream(handle, stream);
    return current;
}

static void restore_stream(cudnnHandle_t handle, cudaStream_t previous, cudaStream_t stream)
{
    if (previous != stream)
        real_cudnnSetStream(handle, previous);
}

static cudnnStatus_t add_absorbed_bias(const struct convbn_pending *p)
{
    const struct convbn_conv_call *c = &p->conv;
    const float one = 1.0f;
    cudnnTensorDescriptor_t bias = convbn_tensor_desc_acquire(&c->bias);
    if (!bias)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    cudnnStatus_t st = real_cudnnAddTensor(c->handle, &one, bias, c->bias_ptr, &one, p->descs->y,
                                           c->y_ptr);
    convbn_tensor_desc_release(bias);
    return st;
}

static cudnnStatus_t run_bias_activation(const struct convbn_pending *p, void *ws)
{
    const struct convbn_conv_call *c = &p->conv;
    const float alpha = (float)c->alpha, alpha2 = 0.0f;
    cudnnTensorDescriptor_t bias = convbn_tensor_desc_acquire(&c->bias);
    if (!bias)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    cudnnStatus_t st = real_cudnnConvolutionBiasActivationForward(
        c->handle, &alpha, p->descs->x, c->x_ptr, p->descs->w, c->w_ptr, p->descs->conv,
        (cudnnConvolutionFwdAlgo_t)c->algo, ws, p->workspace_size, &alpha2, p->descs->y, c->y_ptr,
        bias, c->bias_ptr, p->descs->identity, p->descs->y, c->y_ptr);
    convbn_tensor_desc_release(bias);
    return st;
}

static cudnnStatus_t run_original(const struct convbn_pending *p)
{
    const struct convbn_conv_call *c = &p->conv;
    if (c->api == CONVBN_API_BACKEND) {
        cudnnStatus_t st = convbn_backend_execute(c, p->backend_plan, p->backend_pack);
        return st == CUDNN_STATUS_SUCCESS && c->bias_absorbed ? add_absorbed_bias(p) : st;
    }
    void *ws = p->workspace_size
                   ? convbn_scratch(c->stream, CONVBN_SCRATCH_WORKSPACE, p->workspace_size)
                   : NULL;
    if (p->workspace_size && !ws)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    if (c->kind == CONVBN_CONV_BIAS_ACT)
        return run_bias_activation(p, ws);
    const float alpha = (float)c->alpha, beta = (float)c->beta;
    cudnnStatus_t st = real_cudnnConvolutionForward(
        c->handle, &alpha, p->descs->x, c->x_ptr, p->descs->w, c->w_ptr, p->descs->conv,
        (cudnnConvolutionFwdAlgo_t)c->algo, ws, p->workspace_size, &beta, p->descs->y, c->y_ptr);
    if (st == CUDNN_STATUS_SUCCESS && c->bias_absorbed)
        st = add_absorbed_bias(p);
    return st;
}

cudnnStatus_t convbn_exec_deferred(const struct convbn_pending *p)
{
    cudaStream_t previous = bind_stream(p->conv.handle, p->conv.stream);
    cudnnStatus_t st = run_original(p);
    restore_stream(p->conv.handle, previous, p->conv.stream);
    if (st != CUDNN_STATUS_SUCCESS)
        convbn_logf("a deferred convolution failed when flushed: status %d (%s)", (int)st,
                    real_cudnnGetErrorString ? real_cudnnGetErrorString(st) : "?");
    return st;
}

/* Fills the fold arguments for pair (p, bn) writing into w_out / b_out. */
static void fold_args(struct convbn_fold_args *a, const struct convbn_pending *p,
                      const struct convbn_bn_call *bn, void *w_out, void *b_out)
{
    const struct convbn_conv_call *c = &p->conv;
    long long k = c->y.dims[1];
    /* every field is set below, so no memset (it costs the fused pair host instructions) */
    a->gamma = bn->scale;
    a->beta = bn->bias;
    a->mean = bn->mean;
    a->var = bn->var;
    a->conv_bias = c->bias_ptr;
    a->conv_bias_type = c->bias.type;
    a->w = c->w_ptr;
    a->w_out = w_out;
    a->w_type = c->w.type;
    a->b_out = b_out;
    a->b_type = c->y.type;
    a->k = (int)k;
    a->per_k = (long long)(c->w_bytes / convbn_type_size(c->w.type)) / k;
    a->eps = (float)bn->eps;
    a->conv_alpha = (float)c->alpha;
    a->bn_alpha = (float)bn->alpha;
    a->inv_std = bn->inv_std;
}

struct fused_call {
    const struct convbn_pending *p;
    const struct convbn_bn_call *bn;
    cudnnTensorDescriptor_t z;
    const void *w, *b;
};

static cudnnStatus_t run_fused(const struct fused_call *f, int algo, void *ws, size_t ws_size)
{
    const struct convbn_conv_call *c = &f->p->conv;
    const struct convbn_conv_descs *d = f->p->descs;
    const float one = 1.0f, zero = 0.0f;
    return real_cudnnConvolutionBiasActivationForward(
        f->bn->handle, &one, d->x, c->x_ptr, d->w, f->w, d->conv, (cudnnConvolutionFwdAlgo_t)algo,
        ws, ws_size, &zero, f->z, f->bn->y_ptr, d->bias, f->b, d->identity, f->z, f->bn->y_ptr);
}

/* Tries cuDNN's recommended algorithms (IMPLICIT_PRECOMP_GEMM first: cuDNN documents it
 * as the one that supports an identity activation) until one runs; records the outcome in
 * the geometry's cache entry.  Returns CONVBN_FUSABLE; CONVBN_REASON_MEMORY_CAP when the
 * only algorithms cuDNN would run need more workspace than the cap leaves (not cached: it
 * may fit later); or CONVBN_REASON_FUSED_ERROR (cached). */
static enum convbn_reason choose_and_run(const struct fused_call *f)
{
    const struct convbn_pending *p = f->p;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, order[CUDNN_CONVOLUTION_FWD_ALGO_COUNT], count = 0;
    cudnnStatus_t st = real_cudnnGetConvolutionForwardAlgorithm_v7(
        f->bn->handle, p->descs->x, p->descs->w, p->descs->conv, f->z,
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf);
    if (st != CUDNN_STATUS_SUCCESS)
        n = 0;
    for (int i = 0; i < n; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
            order[count++] = perf[i].algo;
    for (int i = 0; i < n; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
            order[count++] = perf[i].algo;
    int short_of_memory = 0, refusals_only = 1;
    for (int i = 0; i < count; i++) {
        size_t ws = 0;
        if (real_cudnnGetConvolutionForwardWorkspaceSize(f->bn->handle, p->descs->x, p->descs->w,
                                                         p->descs->conv, f->z,
                                                         (cudnnConvolutionFwdAlgo_t)order[i],
                                                         &ws) != CUDNN_STATUS_SUCCESS)
            continue;
        void *buffer = ws ? convbn_scratch(f->p->conv.stream, CONVBN_SCRATCH_WORKSPACE, ws) : NULL;
        if (ws && !buffer) {
            short_of_memory = 1; /* an algorithm needing less may follow */
            continue;
        }
        st = run_fused(f, order[i], buffer, ws);
        if (st == CUDNN_STATUS_SUCCESS) {
            convbn_descs_set_fused(p->descs, CONVBN_FUSED_OK, order[i], ws);
            return CONVBN_FUSABLE;
        }
        /* cuDNN 9 reports sub-codes (e.g. CUDNN_STATUS_NOT_SUPPORTED_SHAPE): compare categories.
         * A refusal means "try the next algorithm"; anything else ends the search. */
        if (CUDNN_STATUS_CATEGORY(st) != CUDNN_STATUS_NOT_SUPPORTED &&
            CUDNN_STATUS_CATEGORY(st) != CUDNN_STATUS_BAD_PARAM) {
            refusals_only = 0;
            break;
        }
    }
    if (short_of_memory && refusals_only)
        return CONVBN_REASON_MEMORY_CAP;
    convbn_descs_set_fused(p->descs, CONVBN_FUSED_FAILED, 0, 0);
    return CONVBN_REASON_FUSED_ERROR;
}

enum convbn_reason convbn_exec_fused(const struct convbn_pending *p,
                                     const struct convbn_bn_call *bn)
{
    const struct convbn_conv_call *c = &p->conv;
    struct convbn_fused_choice choice = p->fused;
    size_t bytes[CONVBN_SCRATCH_SET_KINDS] = {0};
    void *scratch[CONVBN_SCRATCH_SET_KINDS];
    struct convbn_fold_args args;
    if (choice.state == CONVBN_FUSED_FAILED)
        return CONVBN_REASON_FUSED_ERROR;
    bytes[CONVBN_SCRATCH_WEIGHTS] = c->w_bytes;
    bytes[CONVBN_SCRATCH_BIAS] = (size_t)c->y.dims[1] * convbn_type_size(c->y.type);
    if (choice.state == CONVBN_FUSED_OK)
        bytes[CONVBN_SCRATCH_WORKSPACE] = choice.workspace;
    if (convbn_scratch_set(c->stream, bytes, scratch) != 0)
        return CONVBN_REASON_MEMORY_CAP;
    int same_out = convbn_tensor_same(&bn->y, &c->y);
    struct fused_call f = {p, bn, same_out ? p->descs->y : convbn_tensor_desc_acquire(&bn->y),
                           scratch[CONVBN_SCRATCH_WEIGHTS], scratch[CONVBN_SCRATCH_BIAS]};
    if (!f.z)
        return CONVBN_REASON_UNSUPPORTED;
    fold_args(&args, p, bn, scratch[CONVBN_SCRATCH_WEIGHTS], scratch[CONVBN_SCRATCH_BIAS]);
    enum convbn_reason reason;
    if (convbn_fold_run(&args, c->stream) != 0)
        reason = CONVBN_REASON_FUSED_ERROR;
    else if (c->api == CONVBN_API_BACKEND && same_out &&
             convbn_backend_fused_run(c, bn->handle, f.w, f.b, bn->y_ptr))
        reason = CONVBN_FUSABLE;
    else if (choice.state == CONVBN_FUSED_OK)
        reason = run_fused(&f, choice.algo, scratch[CONVBN_SCRATCH_WORKSPACE],
                           choice.workspace) == CUDNN_STATUS_SUCCESS
                     ? CONVBN_FUSABLE
                     : CONVBN_REASON_FUSED_ERROR;
    else
        reason = choose_and_run(&f);
    if (!same_out)
        convbn_tensor_desc_release(f.z);
    return reason;
}
