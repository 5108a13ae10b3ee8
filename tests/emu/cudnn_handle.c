/* Handle, stream binding, version and error-string functions of the cuDNN emulation.
 * Owns the set of live handles (so a destroyed or forged handle is rejected with
 * CUDNN_STATUS_BAD_PARAM instead of being dereferenced).  Computes nothing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_cudnn.h"

#define EMU_MAX_HANDLES 1024

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t live_handles[EMU_MAX_HANDLES];
static int slots_used; /* live_handles[slots_used..] have never held a handle */

int emu_handle_valid(cudnnHandle_t h)
{
    int found = 0;
    if (!h)
        return 0;
    /* Lock-free read: slots are published with atomic stores under handles_lock. */
    int n = __atomic_load_n(&slots_used, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n && !found; i++)
        found = __atomic_load_n(&live_handles[i], __ATOMIC_ACQUIRE) == h;
    return found;
}

static int remember_handle(cudnnHandle_t h)
{
    int stored = 0;
    pthread_mutex_lock(&handles_lock);
    for (int i = 0; i < EMU_MAX_HANDLES && !stored; i++) {
        if (!live_handles[i]) {
            __atomic_store_n(&live_handles[i], h, __ATOMIC_RELEASE);
            stored = 1;
            if (i >= slots_used)
                __atomic_store_n(&slots_used, i + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&handles_lock);
    return stored;
}

static int forget_handle(cudnnHandle_t h)
{
    int found = 0;
    pthread_mutex_lock(&handles_lock);
    for (int i = 0; i < slots_used && !found; i++) {
        if (live_handles[i] == h) {
            __atomic_store_n(&live_handles[i], NULL, __ATOMIC_RELEASE);
            found = 1;
        }
    }
    pthread_mutex_unlock(&handles_lock);
    return found;
}

/* Returns CUDNN_VERSION of the headers the emulation was built against. */
size_t cudnnGetVersion(void)
{
    return CUDNN_VERSION;
}

/* Returns the highest device version the emulation claims (Hopper, 9.0). */
size_t cudnnGetMaxDeviceVersion(void)
{
    return 900;
}

/* Returns CUDART_VERSION of the runtime headers the emulation was built against. */
size_t cudnnGetCudartVersion(void)
{
    return CUDART_VERSION;
}

/* Returns a static string naming status (the enumerator's name, as cuDNN does). */
const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch (status) {
#define NAME(s) case s: return #s
    NAME(CUDNN_STATUS_SUCCESS);
    NAME(CUDNN_STATUS_NOT_INITIALIZED);
    NAME(CUDNN_STATUS_BAD_PARAM);
    NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED);
    NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND);
    NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH);
    NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE);
    NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE);
    NAME(CUDNN_STATUS_NOT_SUPPORTED);
    NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
    NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
    NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT);
    NAME(CUDNN_STATUS_INTERNAL_ERROR);
    NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED);
    NAME(CUDNN_STATUS_EXECUTION_FAILED);
#undef NAME
    default: return "CUDNN_STATUS_UNKNOWN";
    }
}

/* Writes an empty message: the emulation keeps no error log. */
void cudnnGetLastErrorString(char *message, size_t max_size)
{
    if (message && max_size > 0)
        message[0] = '\0';
}

/* Stores the MAJOR/MINOR/PATCH level of the emulated cuDNN in *value. */
cudnnStatus_t cudnnGetProperty(libraryPropertyType type, int *value)
{
    if (!value)
        return CUDNN_STATUS_BAD_PARAM;
    switch (type) {
    case MAJOR_VERSION: *value = CUDNN_MAJOR; return CUDNN_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUDNN_MINOR; return CUDNN_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUDNN_PATCHLEVEL; return CUDNN_STATUS_SUCCESS;
    default: return CUDNN_STATUS_BAD_PARAM;
    }
}

/* Creates a handle bound to the default stream; the caller owns it (cudnnDestroy). */
cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnHandle_t h = calloc(1, sizeof *h);
    if (!h)
        return CUDNN_STATUS_ALLOC_FAILED;
    h->magic = EMU_MAGIC_HANDLE;
    if (!remember_handle(h)) {
        free(h);
        return CUDNN_STATUS_ALLOC_FAILED;
    }
    *handle = h;
    return CUDNN_STATUS_SUCCESS;
}

/* Destroys a handle made by cudnnCreate; unknown handles give CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!forget_handle(handle))
        return CUDNN_STATUS_BAD_PARAM;
    handle->magic = 0;
    free(handle);
    return CUDNN_STATUS_SUCCESS;
}

/* Binds stream to handle; later calls on handle are "enqueued" there (run synchronously). */
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream)
{
    if (!emu_handle_valid(handle))
        return CUDNN_STATUS_BAD_PARAM;
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the stream bound to handle in *stream. */
cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t *stream)
{
    if (!emu_handle_valid(handle) || !stream)
        return CUDNN_STATUS_BAD_PARAM;
    *stream = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}
