/* Streams of the CUDA runtime emulation.
 *
 * Owns the stream table: each created stream is a heap object holding its flags and clamped
 * priority, and a handle is valid only while the table holds it.  The built-in streams (NULL,
 * cudaStreamLegacy, cudaStreamPerThread) are always valid and cannot be destroyed.  Since all
 * work runs synchronously at the call, streams order nothing: synchronizing and querying only
 * validate.  Stream capture is not emulated.  This file does not own events: cudaStreamWaitEvent
 * only asks cudart_event.c whether an event handle is valid. */
#include <stdlib.h>

#include "cudart_internal.h"

/* Stream priorities as an H100 reports them: lower numbers are higher priorities. */
#define EMU_LEAST_STREAM_PRIORITY 0
#define EMU_GREATEST_STREAM_PRIORITY (-5)

struct emu_stream {
    unsigned int flags;
    int priority;
};

static struct emu_table emu_streams = EMU_TABLE_INITIALIZER;

static int emu_stream_is_builtin(cudaStream_t stream)
{
    return stream == NULL || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

/* Copies the stream's state into *state (built-in streams: default flags and priority).
 * Returns cudaSuccess or cudaErrorInvalidResourceHandle. */
static cudaError_t emu_stream_read(cudaStream_t stream, struct emu_stream *state)
{
    if (emu_stream_is_builtin(stream)) {
        *state = (struct emu_stream){ cudaStreamDefault, EMU_LEAST_STREAM_PRIORITY };
        return cudaSuccess;
    }
    emu_table_lock(&emu_streams);
    struct emu_entry *entry = emu_table_find(&emu_streams, (uintptr_t)stream);
    if (entry)
        *state = *(struct emu_stream *)entry->object;
    emu_table_unlock(&emu_streams);
    return entry ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t emu_stream_check(cudaStream_t stream)
{
    struct emu_stream ignored;
    return emu_stream_read(stream, &ignored);
}

static int emu_clamp_priority(int priority)
{
    if (priority < EMU_GREATEST_STREAM_PRIORITY)
        return EMU_GREATEST_STREAM_PRIORITY;
    if (priority > EMU_LEAST_STREAM_PRIORITY)
        return EMU_LEAST_STREAM_PRIORITY;
    return priority;
}

static cudaError_t emu_stream_create(cudaStream_t *stream_out, unsigned int flags, int priority)
{
    if (!stream_out || (flags & ~(unsigned int)cudaStreamNonBlocking))
        return cudaErrorInvalidValue;
    struct emu_stream *stream = malloc(sizeof *stream);
    if (!stream)
        return cudaErrorMemoryAllocation;
    *stream = (struct emu_stream){ flags, emu_clamp_priority(priority) };
    struct emu_entry entry = { .key = (uintptr_t)stream, .span = 1, .object = stream };
    emu_table_lock(&emu_streams);
    int inserted = emu_table_insert(&emu_streams, entry) == 0;
    emu_table_unlock(&emu_streams);
    if (!inserted) {
        free(stream);
        return cudaErrorMemoryAllocation;
    }
    *stream_out = (cudaStream_t)stream;
    return cudaSuccess;
}

static cudaError_t emu_stream_destroy(cudaStream_t stream)
{
    emu_table_lock(&emu_streams);
    struct emu_entry *entry = emu_table_find(&emu_streams, (uintptr_t)stream);
    if (entry)
        emu_table_erase(&emu_streams, entry);
    emu_table_unlock(&emu_streams);
    if (!entry)
        return cudaErrorInvalidResourceHandle;
    free(stream);
    return cudaSuccess;
}

/* Creates a blocking stream of the least priority into *pStream; the caller owns it until
 * cudaStreamDestroy.  Returns cudaSuccess, cudaErrorInvalidValue or
 * cudaErrorMemoryAllocation. */
cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
    return emu_status(emu_stream_create(pStream, cudaStreamDefault, EMU_LEAST_STREAM_PRIORITY));
}

/* As cudaStreamCreate; flags other than cudaStreamDefault / cudaStreamNonBlocking give
 * cudaErrorInvalidValue. */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
    return emu_status(emu_stream_create(pStream, flags, EMU_LEAST_STREAM_PRIORITY));
}

/* As cudaStreamCreateWithFlags; priority is clamped into the range
 * cudaDeviceGetStreamPriorityRange reports. */
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags, int priority)
{
    return emu_status(emu_stream_create(pStream, flags, priority));
}

/* Destroys a created stream.  Returns cudaSuccess, or cudaErrorInvalidResourceHandle for a
 * built-in, destroyed or unknown handle. */
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    return emu_status(emu_stream_destroy(stream));
}

/* Returns cudaSuccess (all work is already done) or cudaErrorInvalidResourceHandle. */
cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    return emu_status(emu_stream_check(stream));
}

/* Returns cudaSuccess (never cudaErrorNotReady) or cudaErrorInvalidResourceHandle. */
cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    return emu_status(emu_stream_check(stream));
}

/* Validates the stream, the event (NULL or unknown: cudaErrorInvalidResourceHandle) and the
 * flags (cudaEventWaitDefault / cudaEventWaitExternal, else cudaErrorInvalidValue); the wait
 * itself is already satisfied. */
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    if (flags & ~(unsigned int)cudaEventWaitExternal)
        return emu_status(cudaErrorInvalidValue);
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess)
        status = emu_event_check(event);
    return emu_status(status);
}

/* Stores the stream's creation flags in *flags.  Returns cudaSuccess, cudaErrorInvalidValue
 * (NULL flags) or cudaErrorInvalidResourceHandle. */
cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags)
{
    struct emu_stream state;
    if (!flags)
        return emu_status(cudaErrorInvalidValue);
    cudaError_t status = emu_stream_read(hStream, &state);
    if (status == cudaSuccess)
        *flags = state.flags;
    return emu_status(status);
}

/* Stores the stream's clamped priority in *priority.  Returns as cudaStreamGetFlags. */
cudaError_t cudaStreamGetPriority(cudaStream_t hStream, int *priority)
{
    struct emu_stream state;
    if (!priority)
        return emu_status(cudaErrorInvalidValue);
    cudaError_t status = emu_stream_read(hStream, &state);
    if (status == cudaSuccess)
        *priority = state.priority;
    return emu_status(status);
}

/* Stores the priority range (0 least, -5 greatest) where the pointers are not NULL.
 * Returns cudaSuccess. */
cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    if (leastPriority)
        *leastPriority = EMU_LEAST_STREAM_PRIORITY;
    if (greatestPriority)
        *greatestPriority = EMU_GREATEST_STREAM_PRIORITY;
    return cudaSuccess;
}

/* Stores cudaStreamCaptureStatusNone.  Returns cudaSuccess, cudaErrorInvalidValue (NULL
 * pCaptureStatus) or cudaErrorInvalidResourceHandle. */
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *pCaptureStatus)
{
    if (!pCaptureStatus)
        return emu_status(cudaErrorInvalidValue);
    cudaError_t status = emu_stream_check(stream);
    if (status == cudaSuccess)
        *pCaptureStatus = cudaStreamCaptureStatusNone;
    return emu_status(status);
}

/* Capture is not emulated: returns cudaErrorNotSupported for a valid stream, else
 * cudaErrorInvalidResourceHandle. */
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    (void)mode;
    cudaError_t status = emu_stream_check(stream);
    return emu_status(status == cudaSuccess ? cudaErrorNotSupported : status);
}

/* Capture is not emulated: returns as cudaStreamBeginCapture and leaves *pGraph alone. */
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *pGraph)
{
    (void)pGraph;
    cudaError_t status = emu_stream_check(stream);
    return emu_status(status == cudaSuccess ? cudaErrorNotSupported : status);
}

static void emu_release_stream(struct emu_entry *entry)
{
    free(entry->object);
}

void emu_stream_reset(void)
{
    emu_table_clear(&emu_streams, emu_release_stream);
}

EMU_PER_THREAD_ALIAS(cudaStreamSynchronize_ptsz, cudaStreamSynchronize);
EMU_PER_THREAD_ALIAS(cudaStreamQuery_ptsz, cudaStreamQuery);
EMU_PER_THREAD_ALIAS(cudaStreamWaitEvent_ptsz, cudaStreamWaitEvent);
EMU_PER_THREAD_ALIAS(cudaStreamGetFlags_ptsz, cudaStreamGetFlags);
EMU_PER_THREAD_ALIAS(cudaStreamGetPriority_ptsz, cudaStreamGetPriority);
EMU_PER_THREAD_ALIAS(cudaStreamIsCapturing_ptsz, cudaStreamIsCapturing);
EMU_PER_THREAD_ALIAS(cudaStreamBeginCapture_ptsz, cudaStreamBeginCapture);
EMU_PER_THREAD_ALIAS(cudaStreamEndCapture_ptsz, cudaStreamEndCapture);
