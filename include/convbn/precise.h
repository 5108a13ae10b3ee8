/* The precise flush rule (CONVBN_FLUSH=precise, DESIGN.md section 5): a kernel launch or an
 * asynchronous copy or set flushes only when it could touch a pending conv's buffers. */
#ifndef CONVBN_PRECISE_H
#define CONVBN_PRECISE_H
#include <cuda.h>
#include <cuda_runtime_api.h>

/* Returns 1 when the precise rule decides the call being hooked (configured precise, work
 * pending, the call is the program's own), else 0: the call then flushes as usual. */
int convbn_precise_applies(void);

/* Returns 1 when a runtime launch of func with args on stream could touch a pending buffer
 * (an 8-byte argument word points into one, or func's parameter layout is unreadable). */
int convbn_precise_kernel_touches(cudaStream_t stream, const void *func, void **args);

/* Returns 1 when a driver launch of f could touch a pending buffer: as above, with the layout
 * from cuFuncGetParamInfo; `extra` packing, or a driver without it, counts as touching. */
int convbn_precise_cu_kernel_touches(cudaStream_t stream, CUfunction f, void **params,
                                     void **extra);

/* Returns 1 when a copy or set of `bytes` bytes to dst (and from src unless NULL) on stream
 * overlaps a pending buffer. */
int convbn_precise_copy_touches(cudaStream_t stream, const void *dst, const void *src,
                                size_t bytes);
#endif
