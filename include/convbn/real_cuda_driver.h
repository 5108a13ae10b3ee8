/* Pointers to the real CUDA driver functions (cuda_driver_hooks.def), resolved lazily from
 * the libcuda already loaded in the process (DESIGN.md section 5a). */
#ifndef CONVBN_REAL_CUDA_DRIVER_H
#define CONVBN_REAL_CUDA_DRIVER_H

#include <cuda.h>

#include "convbn/real_ready.h"

#define CONVBN_CUDA_DRIVER(name, params, args, stream, post) extern CUresult(*real_##name) params;
#define CONVBN_CUDA_DRIVER_PRECISE(name, params, args, stream, touches) CONVBN_CUDA_DRIVER(name, params, args, stream, )
#include "convbn/cuda_driver_hooks.def"
#undef CONVBN_CUDA_DRIVER_PRECISE
#undef CONVBN_CUDA_DRIVER

/* Resolves every function of cuda_driver_hooks.def once per process from the libcuda
 * already loaded (never loads one); pointers stay NULL when not found.  Returns 1 when
 * cuLaunchKernel was found (a driver is loaded), else 0. */
int convbn_real_cuda_driver_resolve(void);

#endif
