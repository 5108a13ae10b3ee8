/* The shim's own device memory: per-stream scratch buffers, reused and grown on demand,
 * capped by CONVBN_MAX_DEVICE_MB (invariant 6). */
#ifndef CONVBN_DEVICE_MEMORY_H
#define CONVBN_DEVICE_MEMORY_H

#include <stddef.h>
#include <cuda_runtime_api.h>

enum convbn_scratch {
    CONVBN_SCRATCH_WORKSPACE, /* cuDNN workspace for deferred and fused convolutions */
    CONVBN_SCRATCH_WEIGHTS,   /* folded weights W' */
    CONVBN_SCRATCH_BIAS,      /* folded bias b' */
    CONVBN_SCRATCH_VERIFY_Y,  /* CONVBN_VERIFY: unfused conv output */
    CONVBN_SCRATCH_VERIFY_Z,  /* CONVBN_VERIFY: unfused BN output */
    CONVBN_SCRATCH_PLAN,      /* workspace of a deferred backend conv's plan: its shim variant
                                 pack holds the pointer, so no other use may move it */
    CONVBN_SCRATCH_KINDS
};

/* Returns a device buffer of at least `bytes` (> 0) that the shim owns for work on `stream`,
 * or NULL when it cannot be had (no CUDA runtime loaded, cap reached, allocation failed, too
 * many streams).  The buffer stays valid, and is returned again, until a later call for the
 * same stream and kind needs more; growing frees the old buffer (cudaFree waits for the
 * device, so in-flight work on it completes first). */
void *convbn_scratch(cudaStream_t stream, enum convbn_scratch kind, size_t bytes);

/* The kinds convbn_scratch_set fetches together (the fused path's): the first ones. */
#define CONVBN_SCRATCH_SET_KINDS (CONVBN_SCRATCH_BIAS + 1)

/* Fetches several scratch buffers of `stream` at once (one lock): for each kind below
 * CONVBN_SCRATCH_SET_KINDS with bytes[kind] > 0 stores the buffer in out[kind] (see
 * convbn_scratch).  Returns 0, or -1 when any of them cannot be had (out[] is then
 * unspecified). */
int convbn_scratch_set(cudaStream_t stream, const size_t bytes[CONVBN_SCRATCH_SET_KINDS],
                       void *out[CONVBN_SCRATCH_SET_KINDS]);

/* Returns the most bytes of device memory the shim has held at once. */
size_t convbn_device_high_water(void);

#endif
