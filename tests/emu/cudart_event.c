/* Events of the CUDA runtime emulation.
 *
 * Owns the event table: each created event is a heap object holding its flags and, once
 * recorded, the CLOCK_MONOTONIC time of its latest record.  All work before a record has
 * already run when the record happens, so an event is complete as soon as it is recorded and
 * synchronizing or querying only validates.  This file does not own streams: recording only
 * asks cudart_stream.c whether the stream handle is valid. */
#include <stdlib.h>
#include <time.h>

#include "cudart_internal.h"

struct emu_event {
    unsigned int flags;
    int recorded;
    int64_t recorded_ns;
};

static struct emu_table emu_events = EMU_TABLE_INITIALIZER;

static int64_t emu_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Copies the event's state into *state.  Returns cudaSuccess or
 * cudaErrorInvalidResourceHandle (NULL, destroyed or unknown handle). */
static cudaError_t emu_event_read(cudaEvent_t event, struct emu_event *state)
{
    emu_table_lock(&emu_events);
    struct emu_entry *entry = emu_table_find(&emu_events, (uintptr_t)event);
    if (entry)
        *state = *(struct emu_event *)entry->object;
    emu_table_unlock(&emu_events);
    return entry ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t emu_event_check(cudaEvent_t event)
{
    struct emu_event ignored;
    return emu_event_read(event, &ignored);
}

static int emu_event_flags_are_valid(unsigned int flags)
{
    const unsigned int known = cudaEventBlockingSync | cudaEventDisableTiming |
                               cudaEventInterprocess;
    if (flags & ~known)
        return 0;
    return !(flags & cudaEventInterprocess) || (flags & cudaEventDisableTiming);
}

static cudaError_t emu_event_create(cudaEvent_t *event_out, unsigned int flags)
{
    if (!event_out || !emu_event_flags_are_valid(flags))
        return cudaErrorInvalidValue;
    struct emu_event *event = calloc(1, sizeof *event);
    if (!event)
        return cudaErrorMemoryAllocation;
    event->flags = flags;
    struct emu_entry entry = { .key = (uintptr_t)event, .span = 1, .object = event };
    emu_table_lock(&emu_events);
    int inserted = emu_table_insert(&emu_events, entry) == 0;
    emu_table_unlock(&emu_events);
    if (!inserted) {
        free(event);
        return cudaErrorMemoryAllocation;
    }
    *event_out = (cudaEvent_t)event;
    return cudaSuccess;
}

static cudaError_t emu_event_destroy(cudaEvent_t event)
{
    emu_table_lock(&emu_events);
    struct emu_entry *entry = emu_table_find(&emu_events, (uintptr_t)event);
    if (entry)
        emu_table_erase(&emu_events, entry);
    emu_table_unlock(&emu_events);
    if (!entry)
        return cudaErrorInvalidResourceHandle;
    free(event);
    return cudaSuccess;
}

static cudaError_t emu_event_record(cudaEvent_t event, cudaStream_t stream, unsigned int flags)
{
    if (flags & ~(unsigned int)cudaEventRecordExternal)
        return cudaErrorInvalidValue;
    cudaError_t status = emu_stream_check(stream);
    if (status != cudaSuccess)
        return status;
    int64_t now = emu_monotonic_ns();
    emu_table_lock(&emu_events);
    struct emu_entry *entry = emu_table_find(&emu_events, (uintptr_t)event);
    if (entry) {
        struct emu_event *state = entry->object;
        state->recorded = 1;
        state->recorded_ns = now;
    }
    emu_table_unlock(&emu_events);
    return entry ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

static int emu_event_is_timed(const struct emu_event *event)
{
    return event->recorded && !(event->flags & cudaEventDisableTiming);
}

static cudaError_t emu_event_elapsed(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    struct emu_event start_state, end_state;
    if (!ms)
        return cudaErrorInvalidValue;
    if (emu_event_read(start, &start_state) != cudaSuccess ||
        emu_event_read(end, &end_state) != cudaSuccess ||
        !emu_event_is_timed(&start_state) || !emu_event_is_timed(&end_state))
        return cudaErrorInvalidResourceHandle;
    *ms = (float)((double)(end_state.recorded_ns - start_state.recorded_ns) / 1e6);
    return cudaSuccess;
}

/* Creates an event with default flags into *event; the caller owns it until
 * cudaEventDestroy.  Returns cudaSuccess, cudaErrorInvalidValue or
 * cudaErrorMemoryAllocation. */
cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return emu_status(emu_event_create(event, cudaEventDefault));
}

/* As cudaEventCreate; flags must combine cudaEventBlockingSync, cudaEventDisableTiming and
 * cudaEventInterprocess (the last only with cudaEventDisableTiming), else
 * cudaErrorInvalidValue. */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    return emu_status(emu_event_create(event, flags));
}

/* Destroys an event.  Returns cudaSuccess or cudaErrorInvalidResourceHandle. */
cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    return emu_status(emu_event_destroy(event));
}

/* Stamps the event with the current time; it is complete at once.  Returns cudaSuccess or
 * cudaErrorInvalidResourceHandle (bad event or stream). */
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    return emu_status(emu_event_record(event, stream, cudaEventRecordDefault));
}

/* As cudaEventRecord; flags other than cudaEventRecordDefault / cudaEventRecordExternal give
 * cudaErrorInvalidValue. */
cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags)
{
    return emu_status(emu_event_record(event, stream, flags));
}

/* Returns cudaSuccess (recorded or not, nothing is pending) or
 * cudaErrorInvalidResourceHandle. */
cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    return emu_status(emu_event_check(event));
}

/* Returns cudaSuccess (never cudaErrorNotReady) or cudaErrorInvalidResourceHandle. */
cudaError_t cudaEventQuery(cudaEvent_t event)
{
    return emu_status(emu_event_check(event));
}

/* Stores in *ms the milliseconds between the latest records of start and end (negative when
 * end was recorded first).  Returns cudaSuccess, cudaErrorInvalidValue (NULL ms) or
 * cudaErrorInvalidResourceHandle when either event is invalid, not recorded, or created with
 * cudaEventDisableTiming. */
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    return emu_status(emu_event_elapsed(ms, start, end));
}

static void emu_release_event(struct emu_entry *entry)
{
    free(entry->object);
}

void emu_event_reset(void)
{
    emu_table_clear(&emu_events, emu_release_event);
}

EMU_PER_THREAD_ALIAS(cudaEventRecord_ptsz, cudaEventRecord);
EMU_PER_THREAD_ALIAS(cudaEventRecordWithFlags_ptsz, cudaEventRecordWithFlags);
