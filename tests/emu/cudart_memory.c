/* Memory management of the CUDA runtime emulation.
 *
 * Owns the allocation table: every block handed out by cudaMalloc, cudaMallocAsync,
 * cudaMallocHost and cudaHostAlloc, with its size and kind, and the count of device bytes in
 * use that cudaMemGetInfo reports against a fixed virtual capacity.  Copies and memsets check
 * their device-side ranges against this table (a range must lie inside one live allocation)
 * and then run at once with memmove / memset.  "Device" memory is host memory.  This file
 * does not own streams: it only asks cudart_stream.c whether a stream handle is valid. */
#include <stdlib.h>
#include <string.h>

#include "cudart_internal.h"

#define EMU_ALLOC_ALIGNMENT 256
/* Fresh memory is filled with this byte so code that reads it before writing it
 * sees garbage, as it would on a GPU, rather than the zeros a fresh host page holds. */
#define EMU_UNINITIALIZED_BYTE 0xA5

enum emu_allocation_kind { EMU_ALLOCATION_DEVICE = 1, EMU_ALLOCATION_PINNED = 2 };

/* Where a range [address, address + length) sits relative to the allocation table. */
enum emu_range_class {
    EMU_RANGE_UNTRACKED, /* starts outside every allocation: ordinary host memory */
    EMU_RANGE_DEVICE,    /* inside one allocation, which the device can address */
    EMU_RANGE_OVERRUN,   /* starts inside an allocation but runs past its end */
};

static struct emu_table emu_allocations = EMU_TABLE_INITIALIZER;
static size_t emu_device_bytes_in_use; /* guarded by emu_allocations.lock */

static cudaError_t emu_allocate_locked(void **block_out, size_t size, int kind)
{
    if (kind == EMU_ALLOCATION_DEVICE && size > EMU_DEVICE_TOTAL_MEM - emu_device_bytes_in_use)
        return cudaErrorMemoryAllocation;
    void *block;
    if (posix_memalign(&block, EMU_ALLOC_ALIGNMENT, size) != 0)
        return cudaErrorMemoryAllocation;
    struct emu_entry entry = { .key = (uintptr_t)block, .span = size, .kind = kind };
    if (emu_table_insert(&emu_allocations, entry) != 0) {
        free(block);
        return cudaErrorMemoryAllocation;
    }
    if (kind == EMU_ALLOCATION_DEVICE)
        emu_device_bytes_in_use += size;
    *block_out = block;
    return cudaSuccess;
}

static cudaError_t emu_allocate(void **block_out, size_t size, int kind)
{
    if (!block_out)
        return cudaErrorInvalidValue;
    *block_out = NULL;
    if (size == 0)
        return cudaSuccess;
    emu_table_lock(&emu_allocations);
    cudaError_t status = emu_allocate_locked(block_out, size, kind);
    emu_table_unlock(&emu_allocations);
    if (status == cudaSuccess)
        memset(*block_out, EMU_UNINITIALIZED_BYTE, size);
    return status;
}

/* Frees block when it is the base of a live allocation of the given kind. */
static cudaError_t emu_release(void *block, int kind)
{
    if (!block)
        return cudaSuccess;
    emu_table_lock(&emu_allocations);
    struct emu_entry *entry = emu_table_find(&emu_allocations, (uintptr_t)block);
    int found = entry && entry->kind == kind;
    if (found) {
        if (entry->kind == EMU_ALLOCATION_DEVICE)
            emu_device_bytes_in_use -= entry->span;
        emu_table_erase(&emu_allocations, entry);
    }
    emu_table_unlock(&emu_allocations);
    if (!found)
        return cudaErrorInvalidValue;
    free(block);
    return cudaSuccess;
}

static enum emu_range_class emu_classify_range(const void *address, size_t length)
{
    emu_table_lock(&emu_allocations);
    struct emu_entry *entry = emu_table_find_containing(&emu_allocations, (uintptr_t)address);
    enum emu_range_class range = EMU_RANGE_UNTRACKED;
    if (entry)
        range = length <= entry->span - ((uintptr_t)address - entry->key) ? EMU_RANGE_DEVICE
                                                                          : EMU_RANGE_OVERRUN;
    emu_table_unlock(&emu_allocations);
    return range;
}

/* Returns the kind of the allocation containing address, or 0. */
static int emu_allocation_kind_at(const void *address)
{
    emu_table_lock(&emu_allocations);
    struct emu_entry *entry = emu_table_find_containing(&emu_allocations, (uintptr_t)address);
    int kind = entry ? entry->kind : 0;
    emu_table_unlock(&emu_allocations);
    return kind;
}

static int emu_copy_kind_is_valid(enum cudaMemcpyKind kind)
{
    return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault;
}

/* Checks one side of a copy: an overrun is always invalid, and a side the kind names as
 * device memory must lie inside an allocation. */
static int emu_copy_side_is_valid(const void *address, size_t extent, int must_be_device)
{
    enum emu_range_class range = emu_classify_range(address, extent);
    if (range == EMU_RANGE_OVERRUN)
        return 0;
    return !must_be_device || range == EMU_RANGE_DEVICE;
}

static cudaError_t emu_check_copy(void *dst, size_t dst_extent, const void *src,
                                  size_t src_extent, enum cudaMemcpyKind kind)
{
    if (!dst || !src)
        return cudaErrorInvalidValue;
    int dst_on_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int src_on_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (!emu_copy_side_is_valid(dst, dst_extent, dst_on_device) ||
        !emu_copy_side_is_valid(src, src_extent, src_on_device))
        return cudaErrorInvalidValue;
    return cudaSuccess;
}

static cudaError_t emu_copy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    if (!emu_copy_kind_is_valid(kind))
        return cudaErrorInvalidMemcpyDirection;
    if (count == 0)
        return cudaSuccess;
    cudaError_t status = emu_check_copy(dst, count, src, count, kind);
    if (status == cudaSuccess)
        memmove(dst, src, count);
    return status;
}

/* Bytes a pitched region of height rows of width bytes spans, or 0 on overflow. */
static size_t emu_pitched_extent(size_t pitch, size_t width, size_t height)
{
    size_t rows_before_last;
    if (__builtin_mul_overflow(pitch, height - 1, &rows_before_last) ||
        rows_before_last > SIZE_MAX - width)
        return 0;
    return rows_before_last + width;
}

static cudaError_t emu_check_pitches(size_t dpitch, size_t spitch, size_t width)
{
    if (dpitch < width || spitch < width || dpitch > EMU_DEVICE_MAX_PITCH ||
        spitch > EMU_DEVICE_MAX_PITCH)
        return cudaErrorInvalidPitchValue;
    return cudaSuccess;
}

static cudaError_t emu_copy_2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                               size_t width, size_t height, enum cudaMemcpyKind kind)
{
    if (!emu_copy_kind_is_valid(kind))
        return cudaErrorInvalidMemcpyDirection;
    if (width == 0 || height == 0)
        return cudaSuccess;
    cudaError_t status = emu_check_pitches(dpitch, spitch, width);
    if (status != cudaSuccess)
        return status;
    size_t dst_extent = emu_pitched_extent(dpitch, width, height);
    size_t src_extent = emu_pitched_extent(spitch, width, height);
    if (dst_extent == 0 || src_extent == 0)
        return cudaErrorInvalidValue;
    status = emu_check_copy(dst, dst_extent, src, src_extent, kind);
    for (size_t row = 0; status == cudaSuccess && row < height; row++)
        memmove((char *)dst + row * dpitch, (const char *)src + row * spitch, width);
    return status;
}

static cudaError_t emu_fill(void *dst, int value, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    if (!dst || emu_classify_range(dst, count) != EMU_RANGE_DEVICE)
        return cudaErrorInvalidValue;
    memset(dst, value, count);
    return cudaSuccess;
}

/* Allocates size bytes of "device" memory, 256-byte aligned and filled with garbage, into
 * *devPtr (NULL for size 0); the caller owns it until cudaFree.  Returns cudaSuccess,
 * cudaErrorInvalidValue (NULL devPtr) or cudaErrorMemoryAllocation (past the 16 GiB the
 * emulated device has, or host memory exhausted). */
cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    return emu_status(emu_allocate(devPtr, size, EMU_ALLOCATION_DEVICE));
}

/* As cudaMalloc, after checking the stream (cudaErrorInvalidResourceHandle). */
cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    cudaError_t status = emu_stream_check(hStream);
    if (status == cudaSuccess)
        status = emu_allocate(devPtr, size, EMU_ALLOCATION_DEVICE);
    return emu_status(status);
}

/* Frees memory from cudaMalloc / cudaMallocAsync.  Returns cudaSuccess (also for NULL) or
 * cudaErrorInvalidValue when devPtr is not the base of such a live allocation. */
cudaError_t cudaFree(void *devPtr)
{
    return emu_status(emu_release(devPtr, EMU_ALLOCATION_DEVICE));
}

/* As cudaFree, after checking the stream (cudaErrorInvalidResourceHandle). */
cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    cudaError_t status = emu_stream_check(hStream);
    if (status == cudaSuccess)
        status = emu_release(devPtr, EMU_ALLOCATION_DEVICE);
    return emu_status(status);
}

/* Allocates size bytes of "pinned" host memory (filled with garbage) into *ptr; the caller owns it until
 * cudaFreeHost.  Returns cudaSuccess, cudaErrorInvalidValue or cudaErrorMemoryAllocation. */
cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return emu_status(emu_allocate(ptr, size, EMU_ALLOCATION_PINNED));
}

/* As cudaMallocHost; flags must be a combination of the cudaHostAlloc* flags, else
 * cudaErrorInvalidValue.  The flags change nothing else. */
cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    const unsigned int known = cudaHostAllocPortable | cudaHostAllocMapped |
                               cudaHostAllocWriteCombined;
    if (flags & ~known)
        return emu_status(cudaErrorInvalidValue);
    return emu_status(emu_allocate(pHost, size, EMU_ALLOCATION_PINNED));
}

/* Frees memory from cudaMallocHost / cudaHostAlloc.  Returns cudaSuccess (also for NULL) or
 * cudaErrorInvalidValue when ptr is not the base of such a live allocation. */
cudaError_t cudaFreeHost(void *ptr)
{
    return emu_status(emu_release(ptr, EMU_ALLOCATION_PINNED));
}

/* Copies count bytes at once.  Returns cudaSuccess, cudaErrorInvalidMemcpyDirection for an
 * unknown kind, or cudaErrorInvalidValue when a side the kind names as device memory is not
 * inside one allocation, or any side overruns the allocation it starts in. */
cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return emu_status(emu_copy(dst, src, count, kind));
}

/* As cudaMemcpy, after checking the stream (cudaErrorInvalidResourceHandle). */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess)
        status = emu_copy(dst, src, count, kind);
    return emu_status(status);
}

/* Copies height rows of width bytes between pitched regions.  Returns as cudaMemcpy, plus
 * cudaErrorInvalidPitchValue when a pitch is below width or above the device's maximum. */
cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                         size_t height, enum cudaMemcpyKind kind)
{
    return emu_status(emu_copy_2d(dst, dpitch, src, spitch, width, height, kind));
}

/* As cudaMemcpy2D, after checking the stream (cudaErrorInvalidResourceHandle). */
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream)
{
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess)
        status = emu_copy_2d(dst, dpitch, src, spitch, width, height, kind);
    return emu_status(status);
}

/* Sets count bytes at devPtr to (unsigned char)value.  Returns cudaSuccess or
 * cudaErrorInvalidValue when the range is not inside one allocation. */
cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
    return emu_status(emu_fill(devPtr, value, count));
}

/* As cudaMemset, after checking the stream (cudaErrorInvalidResourceHandle). */
cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess)
        status = emu_fill(devPtr, value, count);
    return emu_status(status);
}

/* Reports the emulated device's 16 GiB total and what cudaMalloc* has not handed out.
 * Returns cudaSuccess or cudaErrorInvalidValue (a NULL argument). */
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    if (!free_bytes || !total_bytes)
        return emu_status(cudaErrorInvalidValue);
    emu_table_lock(&emu_allocations);
    *free_bytes = EMU_DEVICE_TOTAL_MEM - emu_device_bytes_in_use;
    emu_table_unlock(&emu_allocations);
    *total_bytes = EMU_DEVICE_TOTAL_MEM;
    return cudaSuccess;
}

/* Fills *attributes for ptr (interior pointers included): device memory gives
 * cudaMemoryTypeDevice with devicePointer = ptr and hostPointer = NULL, pinned memory
 * cudaMemoryTypeHost with both pointers = ptr, anything else cudaMemoryTypeUnregistered with
 * device cudaInvalidDeviceId and hostPointer = ptr.  Returns cudaSuccess, or
 * cudaErrorInvalidValue for a NULL attributes. */
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
    if (!attributes)
        return emu_status(cudaErrorInvalidValue);
    memset(attributes, 0, sizeof *attributes);
    switch (emu_allocation_kind_at(ptr)) {
    case EMU_ALLOCATION_DEVICE:
        attributes->type = cudaMemoryTypeDevice;
        attributes->device = EMU_DEVICE_ORDINAL;
        attributes->devicePointer = (void *)ptr;
        break;
    case EMU_ALLOCATION_PINNED:
        attributes->type = cudaMemoryTypeHost;
        attributes->device = EMU_DEVICE_ORDINAL;
        attributes->devicePointer = (void *)ptr;
        attributes->hostPointer = (void *)ptr;
        break;
    default:
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = cudaInvalidDeviceId;
        attributes->hostPointer = (void *)ptr;
        break;
    }
    return cudaSuccess;
}

/* Called by emu_table_clear with emu_allocations.lock held. */
static void emu_release_allocation(struct emu_entry *entry)
{
    if (entry->kind == EMU_ALLOCATION_DEVICE)
        emu_device_bytes_in_use -= entry->span;
    free((void *)entry->key);
}

void emu_memory_reset(void)
{
    emu_table_clear(&emu_allocations, emu_release_allocation);
}

EMU_PER_THREAD_ALIAS(cudaMemcpy_ptds, cudaMemcpy);
EMU_PER_THREAD_ALIAS(cudaMemcpy2D_ptds, cudaMemcpy2D);
EMU_PER_THREAD_ALIAS(cudaMemset_ptds, cudaMemset);
EMU_PER_THREAD_ALIAS(cudaMemcpyAsync_ptsz, cudaMemcpyAsync);
EMU_PER_THREAD_ALIAS(cudaMemcpy2DAsync_ptsz, cudaMemcpy2DAsync);
EMU_PER_THREAD_ALIAS(cudaMemsetAsync_ptsz, cudaMemsetAsync);
EMU_PER_THREAD_ALIAS(cudaMallocAsync_ptsz, cudaMallocAsync);
EMU_PER_THREAD_ALIAS(cudaFreeAsync_ptsz, cudaFreeAsync);
