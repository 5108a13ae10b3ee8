/* Public test interface of the CPU emulation of the CUDA runtime (build/emu/libcudart.so.13).
 *
 * Test programs include <cuda_runtime_api.h> as usual and this header for the two things the
 * real runtime has no API for: registering host functions as "kernels" that cudaLaunchKernel
 * runs, and the per-thread default stream entry points (`_ptsz` / `_ptds`), which the real
 * header only declares when CUDA_API_PER_THREAD_DEFAULT_STREAM is defined.  Each of those is
 * declared here with the exact type of its plain counterpart, which is the prototype the real
 * header gives it. */
#ifndef CONVBN_EMU_CUDART_H
#define CONVBN_EMU_CUDART_H

#include <stddef.h>
#include <cuda_runtime_api.h>

/* A host function standing in for a kernel.  args is the array given to the launch (one
 * pointer per parameter, as cudaLaunchKernel documents); grid, block and stream are the
 * launch configuration.  It runs once per launch, on the launching thread, and may call back
 * into the runtime. */
typedef void (*emu_host_kernel_fn)(void **args, dim3 grid, dim3 block, cudaStream_t stream);

/* Registers func (any unique address, e.g. a static function in the test) as a kernel whose
 * nparams parameters sit at the given byte offsets with the given sizes (the layout
 * cudaFuncGetParamInfo reports).  The arrays are copied; the caller keeps ownership.
 * Returns cudaSuccess, cudaErrorInvalidValue for bad arguments (NULL func or host, NULL
 * arrays with nparams > 0, a zero size), or cudaErrorMemoryAllocation.  Re-registering
 * replaces.  Registrations survive cudaDeviceReset.  Does not touch the last error. */
cudaError_t emu_register_kernel(const void *func, emu_host_kernel_fn host, size_t nparams,
                                const size_t *param_offsets, const size_t *param_sizes);

/* Stores the host function and parameter count registered for func (a CUfunction, for the
 * emulated libcuda.so.1).  Returns cudaSuccess, cudaErrorInvalidDeviceFunction (not
 * registered) or cudaErrorInvalidValue (NULL host or nparams).  Does not touch the last
 * error. */
cudaError_t emu_find_kernel(const void *func, emu_host_kernel_fn *host, size_t *nparams);

/* Per-thread default stream variants: same behaviour as the plain function (the emulation
 * runs everything synchronously, so the legacy and per-thread default streams coincide). */
extern __typeof__(cudaMemcpy) cudaMemcpy_ptds;
extern __typeof__(cudaMemcpy2D) cudaMemcpy2D_ptds;
extern __typeof__(cudaMemset) cudaMemset_ptds;
extern __typeof__(cudaMemcpyAsync) cudaMemcpyAsync_ptsz;
extern __typeof__(cudaMemcpy2DAsync) cudaMemcpy2DAsync_ptsz;
extern __typeof__(cudaMemsetAsync) cudaMemsetAsync_ptsz;
extern __typeof__(cudaMallocAsync) cudaMallocAsync_ptsz;
extern __typeof__(cudaFreeAsync) cudaFreeAsync_ptsz;
extern __typeof__(cudaStreamSynchronize) cudaStreamSynchronize_ptsz;
extern __typeof__(cudaStreamQuery) cudaStreamQuery_ptsz;
extern __typeof__(cudaStreamWaitEvent) cudaStreamWaitEvent_ptsz;
extern __typeof__(cudaStreamGetFlags) cudaStreamGetFlags_ptsz;
extern __typeof__(cudaStreamGetPriority) cudaStreamGetPriority_ptsz;
extern __typeof__(cudaStreamIsCapturing) cudaStreamIsCapturing_ptsz;
extern __typeof__(cudaStreamBeginCapture) cudaStreamBeginCapture_ptsz;
extern __typeof__(cudaStreamEndCapture) cudaStreamEndCapture_ptsz;
extern __typeof__(cudaEventRecord) cudaEventRecord_ptsz;
extern __typeof__(cudaEventRecordWithFlags) cudaEventRecordWithFlags_ptsz;
extern __typeof__(cudaLaunchKernel) cudaLaunchKernel_ptsz;
extern __typeof__(cudaLaunchKernelExC) cudaLaunchKernelExC_ptsz;
extern __typeof__(cudaLaunchHostFunc) cudaLaunchHostFunc_ptsz;

#endif
