/* Device management of the CUDA runtime emulation.
 *
 * Owns the description of the one emulated device (ordinal 0, compute capability 9.0, limits
 * of an H100 where a value is reported) and the device-wide calls: selection, counting,
 * properties, attributes, versions, synchronization and reset.  Reset empties the tables the
 * other files own through their emu_*_reset functions; this file holds no table itself. */
#include <stdio.h>
#include <string.h>

#include "cudart_internal.h"

#define EMU_DEVICE_NAME "convbn CPU emulation"
#define EMU_CC_MAJOR 9
#define EMU_CC_MINOR 0
#define EMU_SM_COUNT 132
#define EMU_WARP_SIZE 32
#define EMU_SHARED_MEM_PER_BLOCK 49152
#define EMU_SHARED_MEM_PER_BLOCK_OPTIN 232448
#define EMU_SHARED_MEM_PER_SM 233472
#define EMU_REGS_PER_BLOCK 65536
#define EMU_CONST_MEM 65536
#define EMU_L2_CACHE_BYTES (50 * 1024 * 1024)
#define EMU_MAX_THREADS_PER_SM 2048
#define EMU_MAX_BLOCKS_PER_SM 32
#define EMU_MEMORY_BUS_WIDTH 5120

struct emu_attribute_value {
    enum cudaDeviceAttr attribute;
    int value;
};

static const struct emu_attribute_value emu_attribute_values[] = {
    { cudaDevAttrMaxThreadsPerBlock, EMU_MAX_THREADS_PER_BLOCK },
    { cudaDevAttrMaxBlockDimX, EMU_MAX_BLOCK_DIM_XY },
    { cudaDevAttrMaxBlockDimY, EMU_MAX_BLOCK_DIM_XY },
    { cudaDevAttrMaxBlockDimZ, EMU_MAX_BLOCK_DIM_Z },
    { cudaDevAttrMaxGridDimX, EMU_MAX_GRID_DIM_X },
    { cudaDevAttrMaxGridDimY, EMU_MAX_GRID_DIM_YZ },
    { cudaDevAttrMaxGridDimZ, EMU_MAX_GRID_DIM_YZ },
    { cudaDevAttrMaxSharedMemoryPerBlock, EMU_SHARED_MEM_PER_BLOCK },
    { cudaDevAttrTotalConstantMemory, EMU_CONST_MEM },
    { cudaDevAttrWarpSize, EMU_WARP_SIZE },
    { cudaDevAttrMaxPitch, (int)EMU_DEVICE_MAX_PITCH },
    { cudaDevAttrMaxRegistersPerBlock, EMU_REGS_PER_BLOCK },
    { cudaDevAttrMultiProcessorCount, EMU_SM_COUNT },
    { cudaDevAttrL2CacheSize, EMU_L2_CACHE_BYTES },
    { cudaDevAttrMaxThreadsPerMultiProcessor, EMU_MAX_THREADS_PER_SM },
    { cudaDevAttrUnifiedAddressing, 1 },
    { cudaDevAttrComputeCapabilityMajor, EMU_CC_MAJOR },
    { cudaDevAttrComputeCapabilityMinor, EMU_CC_MINOR },
    { cudaDevAttrMaxSharedMemoryPerMultiprocessor, EMU_SHARED_MEM_PER_SM },
    { cudaDevAttrMaxSharedMemoryPerBlockOptin, EMU_SHARED_MEM_PER_BLOCK_OPTIN },
    { cudaDevAttrMaxBlocksPerMultiprocessor, EMU_MAX_BLOCKS_PER_SM },
    { cudaDevAttrMemoryPoolsSupported, 1 },
};

static cudaError_t emu_check_device(int device)
{
    return device == EMU_DEVICE_ORDINAL ? cudaSuccess : cudaErrorInvalidDevice;
}

/* Returns the reported value of attribute: the table's, or 0 for one it does not list. */
static int emu_attribute_value(enum cudaDeviceAttr attribute)
{
    size_t count = sizeof emu_attribute_values / sizeof emu_attribute_values[0];
    for (size_t i = 0; i < count; i++)
        if (emu_attribute_values[i].attribute == attribute)
            return emu_attribute_values[i].value;
    return 0;
}

static void emu_fill_limits(struct cudaDeviceProp *prop)
{
    prop->sharedMemPerBlock = EMU_SHARED_MEM_PER_BLOCK;
    prop->sharedMemPerBlockOptin = EMU_SHARED_MEM_PER_BLOCK_OPTIN;
    prop->sharedMemPerMultiprocessor = EMU_SHARED_MEM_PER_SM;
    prop->regsPerBlock = EMU_REGS_PER_BLOCK;
    prop->regsPerMultiprocessor = EMU_REGS_PER_BLOCK;
    prop->warpSize = EMU_WARP_SIZE;
    prop->memPitch = EMU_DEVICE_MAX_PITCH;
    prop->maxThreadsPerBlock = EMU_MAX_THREADS_PER_BLOCK;
    prop->maxThreadsDim[0] = EMU_MAX_BLOCK_DIM_XY;
    prop->maxThreadsDim[1] = EMU_MAX_BLOCK_DIM_XY;
    prop->maxThreadsDim[2] = EMU_MAX_BLOCK_DIM_Z;
    prop->maxGridSize[0] = EMU_MAX_GRID_DIM_X;
    prop->maxGridSize[1] = EMU_MAX_GRID_DIM_YZ;
    prop->maxGridSize[2] = EMU_MAX_GRID_DIM_YZ;
    prop->totalConstMem = EMU_CONST_MEM;
    prop->maxThreadsPerMultiProcessor = EMU_MAX_THREADS_PER_SM;
    prop->maxBlocksPerMultiProcessor = EMU_MAX_BLOCKS_PER_SM;
}

static void emu_fill_identity(struct cudaDeviceProp *prop)
{
    snprintf(prop->name, sizeof prop->name, "%s", EMU_DEVICE_NAME);
    prop->totalGlobalMem = EMU_DEVICE_TOTAL_MEM;
    prop->major = EMU_CC_MAJOR;
    prop->minor = EMU_CC_MINOR;
    prop->multiProcessorCount = EMU_SM_COUNT;
    prop->l2CacheSize = EMU_L2_CACHE_BYTES;
    prop->memoryBusWidth = EMU_MEMORY_BUS_WIDTH;
    prop->unifiedAddressing = 1;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->streamPrioritiesSupported = 1;
    prop->managedMemory = 1;
    prop->memoryPoolsSupported = 1;
    prop->deviceNumaId = -1;
    prop->hostNumaId = -1;
}

/* Stores the current device, always 0, in *device.  Returns cudaSuccess or
 * cudaErrorInvalidValue (NULL device). */
cudaError_t cudaGetDevice(int *device)
{
    if (!device)
        return emu_status(cudaErrorInvalidValue);
    *device = EMU_DEVICE_ORDINAL;
    return cudaSuccess;
}

/* Returns cudaSuccess for device 0, else cudaErrorInvalidDevice. */
cudaError_t cudaSetDevice(int device)
{
    return emu_status(emu_check_device(device));
}

/* Stores 1 in *count.  Returns cudaSuccess or cudaErrorInvalidValue (NULL count). */
cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count)
        return emu_status(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

/* Returns cudaSuccess: all work has already run. */
cudaError_t cudaDeviceSynchronize(void)
{
    return cudaSuccess;
}

/* Frees every allocation (device and pinned), stream and event; their handles become
 * invalid.  Kernel registrations and last errors stay.  Returns cudaSuccess. */
cudaError_t cudaDeviceReset(void)
{
    emu_memory_reset();
    emu_stream_reset();
    emu_event_reset();
    return cudaSuccess;
}

/* Fills *prop for device 0 (fields the emulation does not describe are 0).  Returns
 * cudaSuccess, cudaErrorInvalidValue (NULL prop) or cudaErrorInvalidDevice. */
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (!prop)
        return emu_status(cudaErrorInvalidValue);
    if (emu_check_device(device) != cudaSuccess)
        return emu_status(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    emu_fill_identity(prop);
    emu_fill_limits(prop);
    return cudaSuccess;
}

/* Stores the attribute's value for device 0 in *value (0 for attributes the emulation does
 * not describe).  Returns cudaSuccess, cudaErrorInvalidValue (NULL value, or attr outside
 * the enum) or cudaErrorInvalidDevice. */
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    if (!value || attr < cudaDevAttrMaxThreadsPerBlock || attr >= cudaDevAttrMax)
        return emu_status(cudaErrorInvalidValue);
    if (emu_check_device(device) != cudaSuccess)
        return emu_status(cudaErrorInvalidDevice);
    *value = emu_attribute_value(attr);
    return cudaSuccess;
}

/* Stores CUDART_VERSION in *runtimeVersion.  Returns cudaSuccess or cudaErrorInvalidValue. */
cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (!runtimeVersion)
        return emu_status(cudaErrorInvalidValue);
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

/* Stores CUDART_VERSION in *driverVersion.  Returns cudaSuccess or cudaErrorInvalidValue. */
cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return emu_status(cudaErrorInvalidValue);
    *driverVersion = CUDART_VERSION;
    return cudaSuccess;
}
