/* The smallest CPU emulation of the CUDA driver API (build/emu/libcuda.so.1): just the calls
 * tests/e2e/driver_launch.c makes, as Triton's launchers make them, so that the shim's
 * driver hooks can be tested.  A CUfunction is the address a host "kernel" was registered
 * under with emu_register_kernel (the runtime emulation owns that table and runs the same
 * host functions for cudaLaunchKernel); "device" memory is host memory, as in the runtime
 * emulation.  Everything runs at once on the calling thread.  Owns no state.  It lacks
 * cuCtxGetCurrent and the module calls, so the shim's fold kernel finds this driver
 * unusable (DESIGN.md section 7). */
#include <stdint.h>
#include <string.h>

#include <cuda.h>

#include "emu_cudart.h"

/* Runs f's registered host function with kernelParams, synchronously.  Returns
 * CUDA_SUCCESS, CUDA_ERROR_INVALID_HANDLE (f not registered), CUDA_ERROR_INVALID_VALUE (a
 * zero grid or block dimension, NULL kernelParams for a kernel with parameters, or
 * `extra`, which this emulation does not support).  sharedMemBytes is not checked. */
CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void **kernelParams, void **extra)
{
    (void)sharedMemBytes;
    emu_host_kernel_fn host;
    size_t nparams;
    if (emu_find_kernel((const void *)f, &host, &nparams) != cudaSuccess)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!gridDimX || !gridDimY || !gridDimZ || !blockDimX || !blockDimY || !blockDimZ)
        return CUDA_ERROR_INVALID_VALUE;
    if (extra || (nparams > 0 && !kernelParams))
        return CUDA_ERROR_INVALID_VALUE;
    dim3 grid = {gridDimX, gridDimY, gridDimZ}, block = {blockDimX, blockDimY, blockDimZ};
    host(kernelParams, grid, block, (cudaStream_t)hStream);
    return CUDA_SUCCESS;
}

/* Copies ByteCount bytes from "device" address srcDevice to dstHost.  Returns CUDA_SUCCESS,
 * or CUDA_ERROR_INVALID_VALUE for a NULL address with a non-zero count. */
CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    if (ByteCount > 0 && (!dstHost || !srcDevice))
        return CUDA_ERROR_INVALID_VALUE;
    if (ByteCount > 0)
        memcpy(dstHost, (const void *)(uintptr_t)srcDevice, ByteCount);
    return CUDA_SUCCESS;
}

/* Everything ran at launch: returns CUDA_SUCCESS. */
CUresult cuStreamSynchronize(CUstream hStream)
{
    (void)hStream;
    return CUDA_SUCCESS;
}
