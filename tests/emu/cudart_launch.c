/* Kernel launches of the CUDA runtime emulation.
 *
 * Owns the kernel table: the host functions test programs register (emu_register_kernel) as
 * stand-ins for device functions, with the parameter layout cudaFuncGetParamInfo reports.
 * A launch validates the function, the stream and the configuration against the limits the
 * device reports, then calls the host function once on the calling thread, with no lock
 * held, so it may call back into the runtime.  This file does not own streams: it only asks
 * cudart_stream.c whether a stream handle is valid. */
#include <stdlib.h>
#include <string.h>

#include "cudart_internal.h"

/* A registered kernel; layout holds nparams offsets, then nparams sizes. */
struct emu_kernel {
    emu_host_kernel_fn host;
    size_t nparams;
    size_t layout[];
};

static struct emu_table emu_kernels = EMU_TABLE_INITIALIZER;

static int emu_kernel_layout_is_valid(size_t nparams, const size_t *param_offsets,
                                      const size_t *param_sizes)
{
    if (nparams > 0 && (!param_offsets || !param_sizes))
        return 0;
    for (size_t i = 0; i < nparams; i++)
        if (param_sizes[i] == 0 || param_offsets[i] > SIZE_MAX - param_sizes[i])
            return 0;
    return 1;
}

static struct emu_kernel *emu_kernel_new(emu_host_kernel_fn host, size_t nparams,
                                         const size_t *param_offsets, const size_t *param_sizes)
{
    if (nparams > (SIZE_MAX - sizeof(struct emu_kernel)) / (2 * sizeof(size_t)))
        return NULL;
    struct emu_kernel *kernel = malloc(sizeof *kernel + 2 * nparams * sizeof(size_t));
    if (!kernel)
        return NULL;
    kernel->host = host;
    kernel->nparams = nparams;
    if (nparams > 0) {
        memcpy(kernel->layout, param_offsets, nparams * sizeof(size_t));
        memcpy(kernel->layout + nparams, param_sizes, nparams * sizeof(size_t));
    }
    return kernel;
}

/* Puts kernel in the table under func.  Returns the object to free: the one it replaced,
 * NULL, or kernel itself when the table could not grow (*status then says so). */
static struct emu_kernel *emu_kernel_store(const void *func, struct emu_kernel *kernel,
                                           cudaError_t *status)
{
    struct emu_kernel *unused = NULL;
    *status = cudaSuccess;
    emu_table_lock(&emu_kernels);
    struct emu_entry *entry = emu_table_find(&emu_kernels, (uintptr_t)func);
    if (entry) {
        unused = entry->object;
        entry->object = kernel;
    } else {
        struct emu_entry fresh = { .key = (uintptr_t)func, .span = 1, .object = kernel };
        if (emu_table_insert(&emu_kernels, fresh) != 0) {
            unused = kernel;
            *status = cudaErrorMemoryAllocation;
        }
    }
    emu_table_unlock(&emu_kernels);
    return unused;
}

cudaError_t emu_register_kernel(const void *func, emu_host_kernel_fn host, size_t nparams,
                                const size_t *param_offsets, const size_t *param_sizes)
{
    if (!func || !host || !emu_kernel_layout_is_valid(nparams, param_offsets, param_sizes))
        return cudaErrorInvalidValue;
    struct emu_kernel *kernel = emu_kernel_new(host, nparams, param_offsets, param_sizes);
    if (!kernel)
        return cudaErrorMemoryAllocation;
    cudaError_t status;
    free(emu_kernel_store(func, kernel, &status));
    return status;
}

/* Copies the host function and parameter count of func.  Returns cudaSuccess or
 * cudaErrorInvalidDeviceFunction. */
static cudaError_t emu_kernel_lookup(const void *func, emu_host_kernel_fn *host, size_t *nparams)
{
    emu_table_lock(&emu_kernels);
    struct emu_entry *entry = emu_table_find(&emu_kernels, (uintptr_t)func);
    if (entry) {
        const struct emu_kernel *kernel = entry->object;
        *host = kernel->host;
        *nparams = kernel->nparams;
    }
    emu_table_unlock(&emu_kernels);
    return entry ? cudaSuccess : cudaErrorInvalidDeviceFunction;
}

/* Copies the host function and parameter count registered for func (the emulated libcuda's
 * cuLaunchKernel runs them too).  Returns cudaSuccess, cudaErrorInvalidDeviceFunction (not
 * registered) or cudaErrorInvalidValue (a NULL output). */
cudaError_t emu_find_kernel(const void *func, emu_host_kernel_fn *host, size_t *nparams)
{
    if (!host || !nparams)
        return cudaErrorInvalidValue;
    return emu_kernel_lookup(func, host, nparams);
}

static int emu_block_is_valid(dim3 block)
{
    if (block.x == 0 || block.y == 0 || block.z == 0)
        return 0;
    if (block.x > EMU_MAX_BLOCK_DIM_XY || block.y > EMU_MAX_BLOCK_DIM_XY ||
        block.z > EMU_MAX_BLOCK_DIM_Z)
        return 0;
    return (unsigned long long)block.x * block.y * block.z <= EMU_MAX_THREADS_PER_BLOCK;
}

static int emu_grid_is_valid(dim3 grid)
{
    if (grid.x == 0 || grid.y == 0 || grid.z == 0)
        return 0;
    return grid.x <= EMU_MAX_GRID_DIM_X && grid.y <= EMU_MAX_GRID_DIM_YZ &&
           grid.z <= EMU_MAX_GRID_DIM_YZ;
}

static cudaError_t emu_launch(const void *func, dim3 grid, dim3 block, void **args,
                              cudaStream_t stream)
{
    emu_host_kernel_fn host;
    size_t nparams;
    cudaError_t status = emu_kernel_lookup(func, &host, &nparams);
    if (status == cudaSuccess)
        status = emu_stream_check(stream);
    if (status == cudaSuccess && !(emu_grid_is_valid(grid) && emu_block_is_valid(block)))
        status = cudaErrorInvalidConfiguration;
    if (status == cudaSuccess && nparams > 0 && !args)
        status = cudaErrorInvalidValue;
    if (status == cudaSuccess)
        host(args, grid, block, stream);
    return status;
}

static cudaError_t emu_param_info(const void *func, size_t index, size_t *offset, size_t *size)
{
    if (!offset || !size)
        return cudaErrorInvalidValue;
    emu_table_lock(&emu_kernels);
    struct emu_entry *entry = emu_table_find(&emu_kernels, (uintptr_t)func);
    cudaError_t status = entry ? cudaSuccess : cudaErrorInvalidDeviceFunction;
    if (entry) {
        const struct emu_kernel *kernel = entry->object;
        if (index < kernel->nparams) {
            *offset = kernel->layout[index];
            *size = kernel->layout[kernel->nparams + index];
        } else {
            status = cudaErrorInvalidValue;
        }
    }
    emu_table_unlock(&emu_kernels);
    return status;
}

/* Runs func's registered host function with args, synchronously.  Returns cudaSuccess,
 * cudaErrorInvalidDeviceFunction (not registered), cudaErrorInvalidResourceHandle (bad
 * stream), cudaErrorInvalidConfiguration (a zero or over-limit grid or block dimension, or
 * more than 1024 threads per block) or cudaErrorInvalidValue (NULL args for a kernel with
 * parameters).  sharedMem is not checked. */
cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                             size_t sharedMem, cudaStream_t stream)
{
    (void)sharedMem;
    return emu_status(emu_launch(func, gridDim, blockDim, args, stream));
}

/* As cudaLaunchKernel with grid, block and stream from *config (launch attributes are
 * ignored).  Returns also cudaErrorInvalidValue for a NULL config, or attributes announced
 * without an array. */
cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func, void **args)
{
    if (!config || (config->numAttrs > 0 && !config->attrs))
        return emu_status(cudaErrorInvalidValue);
    return emu_status(emu_launch(func, config->gridDim, config->blockDim, args, config->stream));
}

/* Stores the byte offset and size of func's parameter paramIndex, as registered.  Returns
 * cudaSuccess, cudaErrorInvalidDeviceFunction (not registered) or cudaErrorInvalidValue
 * (paramIndex out of range, NULL output). */
cudaError_t cudaFuncGetParamInfo(const void *func, size_t paramIndex, size_t *paramOffset,
                                 size_t *paramSize)
{
    return emu_status(emu_param_info(func, paramIndex, paramOffset, paramSize));
}

/* Calls fn(userData) at once on the calling thread.  Returns cudaSuccess,
 * cudaErrorInvalidValue (NULL fn) or cudaErrorInvalidResourceHandle (bad stream). */
cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess && !fn)
        status = cudaErrorInvalidValue;
    if (status == cudaSuccess)
        fn(userData);
    return emu_status(status);
}

EMU_PER_THREAD_ALIAS(cudaLaunchKernel_ptsz, cudaLaunchKernel);
EMU_PER_THREAD_ALIAS(cudaLaunchKernelExC_ptsz, cudaLaunchKernelExC);
EMU_PER_THREAD_ALIAS(cudaLaunchHostFunc_ptsz, cudaLaunchHostFunc);
