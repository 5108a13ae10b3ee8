/* Shim-owned device memory (DESIGN.md invariants 2 and 6): a bounded table of streams, each
 * with one buffer per scratch kind, allocated with the real cudaMalloc, grown by powers of
 * two from 1 MiB, never beyond CONVBN_MAX_DEVICE_MB in total.  Buffers are per stream
 * because work on two streams may run concurrently.  Owns every device byte the shim
 * allocates; must not touch the program's memory. */
#include <pthread.h>
#include <string.h>

#include "convbn/device_memory.h"
#include "convbn/real_cudart.h"
#include "convbn/shim.h"

#define MAX_STREAMS 64
#define MIN_BUFFER (1u << 20)

struct stream_scratch {
    cudaStream_t stream;
    pthread_t thread; /* distinguishes cudaStreamPerThread of different threads */
    void *buffer[CONVBN_SCRATCH_KINDS];
    size_t size[CONVBN_SCRATCH_KINDS];
};

static pthread_mutex_t memory_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream_scratch streams[MAX_STREAMS];
static int streams_seen; /* streams[0, streams_seen) are in use; slots are never released */
static size_t bytes_held, bytes_high_water;

static int same_stream(const struct stream_scratch *s, cudaStream_t stream)
{
    if (stream == cudaStreamLegacy)
        stream = NULL;
    return s->stream == stream &&
           (stream != cudaStreamPerThread || pthread_equal(s->thread, pthread_self()));
}

static struct stream_scratch *slot_for(cudaStream_t stream)
{
    for (int i = 0; i < streams_seen; i++)
        if (same_stream(&streams[i], stream))
            return &streams[i];
    if (streams_seen == MAX_STREAMS)
        return NULL;
    struct stream_scratch *slot = &streams[streams_seen++];
    memset(slot, 0, sizeof *slot);
    slot->stream = stream == cudaStreamLegacy ? NULL : stream;
    slot->thread = pthread_self();
    return slot;
}

static size_t rounded_size(size_t bytes)
{
    size_t size = MIN_BUFFER;
    while (size < bytes && size < ((size_t)1 << 62))
        size <<= 1;
    return size;
}

static size_t cap_bytes(void)
{
    return (size_t)convbn_cfg.max_device_mb << 20;
}

/* Replaces slot's buffer of `kind` with one of at least `bytes`; returns it or NULL. */
static void *grow(struct stream_scratch *slot, enum convbn_scratch kind, size_t bytes)
{
    size_t size = rounded_size(bytes);
    if (size > cap_bytes() || bytes_held - slot->size[kind] + size > cap_bytes())
        size = bytes; /* an exact fit may still be under the cap */
    if (bytes_held - slot->size[kind] + size > cap_bytes())
        return NULL;
    if (slot->buffer[kind]) {
        real_cudaFree(slot->buffer[kind]);
        bytes_held -= slot->size[kind];
        slot->buffer[kind] = NULL;
        slot->size[kind] = 0;
    }
    void *p = NULL;
    if (real_cudaMalloc(&p, size) != cudaSuccess || !p)
        return NULL;
    slot->buffer[kind] = p;
    slot->size[kind] = size;
    bytes_held += size;
    if (bytes_held > bytes_high_water)
        bytes_high_water = bytes_held;
    return p;
}

/* Returns 1 once the real cudaMalloc/cudaFree/cudaMemcpy are known to exist. */
static int runtime_found(void)
{
    static int found;
    if (!__atomic_load_n(&found, __ATOMIC_ACQUIRE) && convbn_real_cudart_resolve())
        __atomic_store_n(&found, 1, __ATOMIC_RELEASE);
    return __atomic_load_n(&found, __ATOMIC_ACQUIRE);
}

void *convbn_scratch(cudaStream_t stream, enum convbn_scratch kind, size_t bytes)
{
    void *p = NULL;
    if (bytes == 0 || !runtime_found())
        return NULL;
    pthread_mutex_lock(&memory_lock);
    struct stream_scratch *slot = slot_for(stream);
    if (slot)
        p = slot->size[kind] >= bytes ? slot->buffer[kind] : grow(slot, kind, bytes);
    pthread_mutex_unlock(&memory_lock);
    return p;
}

int convbn_scratch_set(cudaStream_t stream, const size_t bytes[CONVBN_SCRATCH_SET_KINDS],
                       void *out[CONVBN_SCRATCH_SET_KINDS])
{
    int ok = runtime_found();
    pthread_mutex_lock(&memory_lock);
    struct stream_scratch *slot = ok ? slot_for(stream) : NULL;
    for (int k = 0; k < CONVBN_SCRATCH_SET_KINDS && slot; k++) {
        out[k] = NULL;
        if (bytes[k] == 0)
            continue;
        out[k] = slot->size[k] >= bytes[k] ? slot->buffer[k] : grow(slot, (enum convbn_scratch)k, bytes[k]);
        if (!out[k])
            slot = NULL;
    }
    pthread_mutex_unlock(&memory_lock);
    return slot ? 0 : -1;
}

size_t convbn_device_high_water(void)
{
    pthread_mutex_lock(&memory_lock);
    size_t n = bytes_high_water;
    pthread_mutex_unlock(&memory_lock);
    return n;
}
