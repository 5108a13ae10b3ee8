/* The planner: one candidate conv per stream (uthash keyed by stream; cudaStreamLegacy is
 * the NULL stream and cudaStreamPerThread is distinct per thread), matched against the
 * inference BN that consumes its output, and dropped by anything that could observe it
 * (DESIGN.md sections 3 and 5, conservative rule).  Slots come from a fixed pool, so the
 * table is bounded and nothing is allocated per call.  Owns the candidate table; does not
 * call cuDNN. */
#include <pthread.h>
#include <string.h>
#include <uthash.h>

#include "convbn/planner.h"

#define MAX_CANDIDATES 256

struct stream_key {
    cudaStream_t stream;
    pthread_t thread; /* only for cudaStreamPerThread, else 0 */
};

struct candidate {
    struct stream_key key;
    struct convbn_conv_call conv;
    UT_hash_handle hh;
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;
static struct candidate pool[MAX_CANDIDATES];
static struct candidate *free_list[MAX_CANDIDATES];
static int free_count = -1; /* -1: pool not yet threaded onto the free list */
static struct candidate *by_stream;

static int is_legacy(cudaStream_t s)
{
    return s == NULL || s == cudaStreamLegacy;
}

static struct stream_key key_of(cudaStream_t s)
{
    struct stream_key key;
    memset(&key, 0, sizeof key);
    key.stream = is_legacy(s) ? NULL : s;
    if (s == cudaStreamPerThread)
        key.thread = pthread_self();
    return key;
}

static struct candidate *find(cudaStream_t s)
{
    struct stream_key key = key_of(s);
    struct candidate *c;
    HASH_FIND(hh, by_stream, &key, sizeof key, c);
    return c;
}

static void release(struct candidate *c)
{
    HASH_DEL(by_stream, c);
    free_list[free_count++] = c;
}

static struct candidate *acquire(void)
{
    if (free_count < 0) {
        for (free_count = 0; free_count < MAX_CANDIDATES; free_count++)
            free_list[free_count] = &pool[MAX_CANDIDATES - 1 - free_count];
    }
    return free_count > 0 ? free_list[--free_count] : NULL;
}

static void flush_stream(cudaStream_t s)
{
    struct candidate *c = find(s);
    if (c)
        release(c);
}

static void flush_all(void)
{
    struct candidate *c, *tmp;
    HASH_ITER(hh, by_stream, c, tmp)
        release(c);
}

static void flush_locked(cudaStream_t s)
{
    if (!by_stream)
        return;
    if (is_legacy(s)) {
        flush_all();
        return;
    }
    flush_stream(s);
    flush_stream(NULL);
}

void convbn_planner_conv(const struct convbn_conv_call *conv)
{
    pthread_mutex_lock(&planner_lock);
    flush_locked(conv->stream);
    struct candidate *c = acquire();
    if (c) {
        c->key = key_of(conv->stream);
        c->conv = *conv;
        HASH_ADD(hh, by_stream, key, sizeof c->key, c);
    }
    pthread_mutex_unlock(&planner_lock);
}

static int consumes(const struct convbn_bn_call *bn, const struct convbn_conv_call *conv)
{
    return bn->x_ptr == conv->y_ptr && convbn_tensor_same(&bn->x, &conv->y);
}

int convbn_planner_take_match(const struct convbn_bn_call *bn, struct convbn_conv_call *conv)
{
    int matched = 0;
    pthread_mutex_lock(&planner_lock);
    struct candidate *c = by_stream ? find(bn->stream) : NULL;
    if (c && consumes(bn, &c->conv)) {
        *conv = c->conv;
        release(c);
        matched = 1;
        if (!is_legacy(bn->stream))
            flush_stream(NULL);
    }
    if (!matched)
        flush_locked(bn->stream);
    pthread_mutex_unlock(&planner_lock);
    return matched;
}

void convbn_planner_flush(cudaStream_t stream)
{
    pthread_mutex_lock(&planner_lock);
    flush_locked(stream);
    pthread_mutex_unlock(&planner_lock);
}

void convbn_planner_forget_handle(cudnnHandle_t handle)
{
    struct candidate *c, *tmp;
    pthread_mutex_lock(&planner_lock);
    HASH_ITER(hh, by_stream, c, tmp)
        if (c->conv.handle == handle)
            release(c);
    pthread_mutex_unlock(&planner_lock);
}

int convbn_planner_pending(void)
{
    pthread_mutex_lock(&planner_lock);
    int n = (int)HASH_COUNT(by_stream);
    pthread_mutex_unlock(&planner_lock);
    return n;
}
