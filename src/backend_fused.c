/* The cache of the shim's fused backend graphs (include/convbn/backend_fused.h): one entry
 * per (geometry, handle, pointer alignment), built on first use by src/backend_graph.c under
 * the cache lock, in a bounded LRU table.  A geometry cuDNN refuses (no engine configuration
 * finalizes, or an execution failed) is cached as refused and never asked again; its pairs
 * take the legacy fused path.  An entry in use (holds > 0) is never evicted or destroyed.
 * Each entry keeps its last variant pack and reuses it while the pointers repeat (as they
 * do in an inference loop), so a pair builds no pack.
 * Owns the entries and, through them, the graphs. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convbn/hash.h"
#include <uthash.h>

#include "convbn/backend_fused.h"
#include "convbn/backend_graph.h"
#include "convbn/device_memory.h"
#include "convbn/log.h"
#include "convbn/real.h"
#include "convbn/shim.h"

#define MAX_ENTRIES 32
#define MAX_ALIGNMENT 16 /* the alignment declared for pointers aligned at least this much */

struct key {
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
    cudnnHandle_t handle;
    int64_t alignment;
};

struct entry {
    struct key key;
    cudnnStatus_t built; /* SUCCESS, or why this key has no graph */
    struct convbn_fused_graph graph;
    cudnnBackendDescriptor_t pack; /* the last variant pack, reused while its pointers repeat */
    void *pack_data[CONVBN_FUSED_GRAPH_DATA], *pack_workspace;
    int holds;
    unsigned long last_use;
    UT_hash_handle hh;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static unsigned long use_clock;
static unsigned long long fused_count;

/* The largest power of two up to MAX_ALIGNMENT dividing both addresses. */
static int64_t alignment_of(const void *a, const void *b)
{
    uintptr_t bits = (uintptr_t)a | (uintptr_t)b | MAX_ALIGNMENT;
    return (int64_t)(bits & -bits);
}

/* Destroys e's graph and its last pack (e stays, refused or about to be freed). */
static void drop_graph(struct entry *e)
{
    if (e->pack)
        real_cudnnBackendDestroyDescriptor(e->pack);
    e->pack = NULL;
    convbn_fused_graph_destroy(&e->graph);
}

static void destroy_entry(struct entry *e)
{
    HASH_DEL(entries, e);
    drop_graph(e);
    free(e);
}

/* Evicts the least recently used entry nobody holds; returns 0, or -1 when all are held. */
static int evict(void)
{
    struct entry *e, *tmp, *oldest = NULL;
    HASH_ITER(hh, entries, e, tmp)
        if (e->holds == 0 && (!oldest || e->last_use < oldest->last_use))
            oldest = e;
    if (!oldest)
        return -1;
    destroy_entry(oldest);
    return 0;
}

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* Builds the graph of a new entry; CONVBN_LOG logs the outcome, once per key. */
static void build(struct entry *e, const struct convbn_conv_call *conv)
{
    char x[64], w[64];
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    e->built = convbn_fused_graph_build(&e->graph, e->key.handle, conv, e->key.alignment);
    if (convbn_cfg.log_level < 1)
        return;
    convbn_format_dims(x, sizeof x, conv->x.dims, conv->x.nb_dims);
    convbn_format_dims(w, sizeof w, conv->w.dims, conv->w.nb_dims);
    if (e->built == CUDNN_STATUS_SUCCESS)
        convbn_logf("fused backend graph built for x=%s w=%s type=%s in %.1f ms (workspace "
                    "%lld bytes)", x, w, convbn_type_name(conv->y.type), elapsed_ms(&start),
                    (long long)e->graph.workspace);
    else
        convbn_logf("fused backend graph refused for x=%s w=%s type=%s: status %d (%s); its "
                    "pairs use the legacy fused path", x, w, convbn_type_name(conv->y.type),
                    (int)e->built,
                    real_cudnnGetErrorString ? real_cudnnGetErrorString(e->built) : "?");
}

/* Returns the held entry for key, building it if new, with its state in *built and in
 * *sole whether this is its only hold; NULL when the table is full of held entries or out
 * of memory. */
static struct entry *acquire(const struct key *key, const struct convbn_conv_call *conv,
                             cudnnStatus_t *built, int *sole)
{
    struct entry *e;
    pthread_mutex_lock(&cache_lock);
    HASH_FIND(hh, entries, key, sizeof *key, e);
    if (!e && (HASH_COUNT(entries) < MAX_ENTRIES || evict() == 0) &&
        (e = calloc(1, sizeof *e))) {
        e->key = *key;
        build(e, conv);
        HASH_ADD(hh, entries, key, sizeof e->key, e);
    }
    if (e) {
        e->holds++;
        e->last_use = ++use_clock;
        *built = e->built;
        *sole = e->holds == 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return e;
}

/* Drops the hold on e after an execution that returned st (or none: ran 0): counts a
 * success; a failure marks the entry refused, its graph destroyed by the last holder. */
static void release(struct entry *e, int ran, cudnnStatus_t st)
{
    pthread_mutex_lock(&cache_lock);
    e->holds--;
    if (ran && st == CUDNN_STATUS_SUCCESS) {
        fused_count++;
    } else if (ran && e->built == CUDNN_STATUS_SUCCESS) {
        convbn_logf("fused backend graph failed: status %d (%s); its pairs use the legacy "
                    "fused path", (int)st,
                    real_cudnnGetErrorString ? real_cudnnGetErrorString(st) : "?");
        e->built = st;
    }
    if (e->built != CUDNN_STATUS_SUCCESS && e->holds == 0)
        drop_graph(e);
    pthread_mutex_unlock(&cache_lock);
}

/* Returns the variant pack for data and ws: e's last one when they match, else a new one.
 * Only the sole holder of e reads or replaces e's pack; any other caller gets a pack of its
 * own (*temporary = 1: the caller destroys it).  NULL when cuDNN refuses the pack. */
static cudnnBackendDescriptor_t pack_for(struct entry *e, int sole,
                                         void *const data[CONVBN_FUSED_GRAPH_DATA], void *ws,
                                         int *temporary)
{
    *temporary = 0;
    if (sole && e->pack && !memcmp(e->pack_data, data, sizeof e->pack_data) &&
        e->pack_workspace == ws)
        return e->pack;
    cudnnBackendDescriptor_t pack = convbn_fused_graph_pack(data, ws);
    if (!pack || !sole) {
        *temporary = pack != NULL;
        return pack;
    }
    if (e->pack)
        real_cudnnBackendDestroyDescriptor(e->pack);
    e->pack = pack;
    memcpy(e->pack_data, data, sizeof e->pack_data);
    e->pack_workspace = ws;
    return pack;
}

/* Executes e's graph (built) on handle; returns the status, NOT_SUPPORTED when no workspace
 * fits under the memory cap or the pack is refused (*ran then 0). */
static cudnnStatus_t execute(struct entry *e, int sole, const struct convbn_conv_call *conv,
                             cudnnHandle_t handle, void *const data[CONVBN_FUSED_GRAPH_DATA],
                             int *ran)
{
    void *ws = NULL;
    int temporary = 0;
    *ran = 0;
    if (e->graph.workspace > 0 &&
        !(ws = convbn_scratch(conv->stream, CONVBN_SCRATCH_WORKSPACE, (size_t)e->graph.workspace)))
        return CUDNN_STATUS_NOT_SUPPORTED;
    cudnnBackendDescriptor_t pack = pack_for(e, sole, data, ws, &temporary);
    if (!pack)
        return CUDNN_STATUS_NOT_SUPPORTED;
    *ran = 1;
    cudnnStatus_t st = real_cudnnBackendExecute(handle, e->graph.plan, pack);
    if (temporary)
        real_cudnnBackendDestroyDescriptor(pack);
    return st;
}

int convbn_backend_fused_run(const struct convbn_conv_call *conv, cudnnHandle_t handle,
                             const void *w, const void *b, void *y)
{
    struct key key;
    cudnnStatus_t built = CUDNN_STATUS_NOT_SUPPORTED, st = CUDNN_STATUS_NOT_SUPPORTED;
    void *const data[CONVBN_FUSED_GRAPH_DATA] = {(void *)conv->x_ptr, (void *)w, (void *)b, y};
    int sole = 0, ran = 0;
    if (!convbn_cfg.backend_graph)
        return 0;
    memset(&key, 0, sizeof key);
    key.x = conv->x;
    key.y = conv->y;
    key.w = conv->w;
    key.conv = conv->conv;
    key.handle = handle;
    key.alignment = alignment_of(conv->x_ptr, y);
    struct entry *e = acquire(&key, conv, &built, &sole);
    if (!e)
        return 0;
    if (built == CUDNN_STATUS_SUCCESS)
        st = execute(e, sole, conv, handle, data, &ran);
    release(e, ran, st);
    return ran && st == CUDNN_STATUS_SUCCESS;
}

int convbn_backend_fused_forget_handle(cudnnHandle_t handle)
{
    struct entry *e, *tmp;
    int destroyed = 0;
    pthread_mutex_lock(&cache_lock);
    HASH_ITER(hh, entries, e, tmp) {
        if (e->key.handle == handle && e->holds == 0) {
            destroyed += e->graph.plan != NULL;
            destroy_entry(e);
        }
    }
    pthread_mutex_unlock(&cache_lock);
    if (destroyed && convbn_cfg.log_level >= 1)
        convbn_logf("cudnnDestroy: %d fused backend graphs built on the handle destroyed",
                    destroyed);
    return destroyed;
}

unsigned long long convbn_backend_fused_count(void)
{
    pthread_mutex_lock(&cache_lock);
    unsigned long long n = fused_count;
    pthread_mutex_unlock(&cache_lock);
    return n;
}
