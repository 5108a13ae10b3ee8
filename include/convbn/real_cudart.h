/* Pointers to the real CUDA runtime functions (cudart_hooks.def), resolved lazily from the
 * libcudart already loaded in the process (DESIGN.md section 5a). */
#ifndef CONVBN_REAL_CUDART_H
#define CONVBN_REAL_CUDART_H

#include <cuda_runtime_api.h>

#include "convbn/real_ready.h"

#define CONVBN_CUDART(name, params, args, stream, post) extern cudaError_t(*real_##name) params;
#define CONVBN_CUDART_USE(name, params) extern cudaError_t(*real_##name) params;
#define CONVBN_CUDART_PRECISE(name, params, args, stream, touches) CONVBN_CUDART(name, params, args, stream, )
#include "convbn/cudart_hooks.def"
#undef CONVBN_CUDART_PRECISE
#undef CONVBN_CUDART
#undef CONVBN_CUDART_USE

/* Resolves every function of cudart_hooks.def once per process from the libcudart already
 * loaded (never loads one); pointers stay NULL when not found.  Returns 1 when cudaMalloc,
 * cudaFree and cudaMemcpy were found (the shim can own device memory), else 0. */
int convbn_real_cudart_resolve(void);

#endif
