/* The planner: one pending conv per stream (uthash keyed by stream; cudaStreamLegacy is the
 * NULL stream and cudaStreamPerThread is distinct per thread), the decision to defer a conv,
 * the match with the inference BN that consumes its output, the absorption of a Caffe-style
 * bias add, and the conservative flush rule (DESIGN.md sections 3 and 5).  Slots come from
 * a fixed pool, so the table is bounded and nothing is allocated per call.  Owns the
 * candidate table; runs deferred convs only through the executor, outside its lock. */
#include <pthread.h>
#include <string.h>

#include "convbn/hash.h"
#include <uthash.h>

#include "convbn/device_memory.h"
#include "convbn/executor.h"
#include "convbn/fusion.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"
#include "convbn/stats.h"

#define MAX_CANDIDATES 256

struct stream_key {
    cudaStream_t stream;
    pthread_t thread; /* only for cudaStreamPerThread, else 0 */
};

struct candidate {
    struct stream_key key;
    struct convbn_pending pending;
    UT_hash_handle hh;
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;
static struct candidate pool[MAX_CANDIDATES];
static struct candidate *free_list[MAX_CANDIDATES];
static int free_count = -1; /* -1: pool not yet threaded onto the free list */
static struct candidate *by_stream;
static int candidate_count; /* read without the lock for the idle fast path */
static int captures_active;

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

/* Removes c from the table, copying its pending record to *out. */
static void take(struct candidate *c, struct convbn_pending *out)
{
    *out = c->pending;
    HASH_DEL(by_stream, c);
    free_list[free_count++] = c;
    __atomic_store_n(&candidate_count, (int)HASH_COUNT(by_stream), __ATOMIC_RELAXED);
}

static struct candidate *acquire_slot(void)
{
    if (free_count < 0) {
        for (free_count = 0; free_count < MAX_CANDIDATES; free_count++)
            free_list[free_count] = &pool[MAX_CANDIDATES - 1 - free_count];
    }
    return free_count > 0 ? free_list[--free_count] : NULL;
}

/* Inserts p as its stream's candidate; returns 0, or -1 when the pool is exhausted. */
static int insert(const struct convbn_pending *p)
{
    pthread_mutex_lock(&planner_lock);
    struct candidate *c = find(p->conv.stream) ? NULL : acquire_slot();
    if (c) {
        c->key = key_of(p->conv.stream);
        c->pending = *p;
        HASH_ADD(hh, by_stream, key, sizeof c->key, c);
        __atomic_store_n(&candidate_count, (int)HASH_COUNT(by_stream), __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&planner_lock);
    return c ? 0 : -1;
}

void convbn_planner_finish(struct convbn_pending *p, const char *trigger)
{
    if (p->deferred) {
        convbn_exec_deferred(p);
        convbn_stats_flush(trigger);
        p->deferred = 0;
    }
    if (p->descs) {
        convbn_descs_release(p->descs);
        p->descs = NULL;
    }
}

typedef int (*candidate_filter)(const struct candidate *c, const void *ctx);

/* Takes one candidate accepted by filter out of the table; returns 1 if one was taken. */
static int take_one(candidate_filter filter, const void *ctx, struct convbn_pending *out)
{
    struct candidate *c, *tmp;
    int taken = 0;
    pthread_mutex_lock(&planner_lock);
    HASH_ITER(hh, by_stream, c, tmp) {
        if (filter(c, ctx)) {
            take(c, out);
            taken = 1;
            break;
        }
    }
    pthread_mutex_unlock(&planner_lock);
    return taken;
}

/* Finishes (runs, outside the lock) every candidate accepted by filter. */
static void flush_matching(candidate_filter filter, const void *ctx, const char *trigger)
{
    struct convbn_pending p;
    while (take_one(filter, ctx, &p))
        convbn_planner_finish(&p, trigger);
}

static int observable_from(const struct candidate *c, const void *ctx)
{
    const struct stream_key *key = ctx;
    if (key->stream == NULL || c->key.stream == NULL)
        return 1; /* the legacy default stream synchronises with every blocking stream */
    return memcmp(&c->key, key, sizeof *key) == 0;
}

static int any_candidate(const struct candidate *c, const void *ctx)
{
    (void)c;
    (void)ctx;
    return 1;
}

static int issued_through(const struct candidate *c, const void *ctx)
{
    return c->pending.conv.handle == (cudnnHandle_t)ctx;
}

void convbn_planner_flush(cudaStream_t stream, const char *trigger)
{
    if (__atomic_load_n(&candidate_count, __ATOMIC_RELAXED) == 0)
        return;
    struct stream_key key = key_of(stream);
    flush_matching(observable_from, &key, trigger);
}

void convbn_planner_flush_all(const char *trigger)
{
    flush_matching(any_candidate, NULL, trigger);
}

void convbn_planner_flush_handle(cudnnHandle_t handle, const char *trigger)
{
    flush_matching(issued_through, handle, trigger);
}

void convbn_planner_capture(int delta)
{
    int now = __atomic_add_fetch(&captures_active, delta, __ATOMIC_RELAXED);
    if (now < 0)
        __atomic_store_n(&captures_active, 0, __ATOMIC_RELAXED);
}

/* Secures descriptors and workspace for deferring conv into *p; returns the reason on failure. */
static enum convbn_reason secure_resources(const struct convbn_conv_call *conv,
                                           size_t program_workspace, struct convbn_pending *p)
{
    size_t ws = 0;
    if (__atomic_load_n(&captures_active, __ATOMIC_RELAXED) > 0)
        return CONVBN_REASON_CAPTURE;
    if (!conv->x_ptr || !conv->w_ptr || !conv->y_ptr || !(p->descs = convbn_descs_acquire(conv)))
        return CONVBN_REASON_UNSUPPORTED;
    if (real_cudnnGetConvolutionForwardWorkspaceSize(
            conv->handle, p->descs->x, p->descs->w, p->descs->conv, p->descs->y,
            (cudnnConvolutionFwdAlgo_t)conv->algo, &ws) != CUDNN_STATUS_SUCCESS ||
        ws > program_workspace)
        return CONVBN_REASON_UNSUPPORTED;
    if (ws > 0 && !convbn_scratch(conv->stream, CONVBN_SCRATCH_WORKSPACE, ws))
        return CONVBN_REASON_MEMORY_CAP;
    p->workspace_size = ws;
    return CONVBN_FUSABLE;
}

int convbn_planner_offer(const struct convbn_conv_call *conv, size_t program_workspace,
                         enum convbn_reason *why_not)
{
    struct convbn_pending p;
    memset(&p, 0, sizeof p);
    *why_not = CONVBN_FUSABLE;
    if (convbn_cfg.mode == CONVBN_MODE_OBSERVE)
        return 0;
    enum convbn_reason reason = convbn_conv_reason(conv);
    if (reason == CONVBN_FUSABLE)
        reason = convbn_fusing_allowed();
    if (reason == CONVBN_FUSABLE)
        reason = secure_resources(conv, program_workspace, &p);
    if (reason == CONVBN_FUSABLE) {
        p.conv = *conv;
        p.deferred = 1;
        if (insert(&p) == 0)
            return 1;
        reason = CONVBN_REASON_MEMORY_CAP;
    }
    if (p.descs)
        convbn_descs_release(p.descs);
    *why_not = reason;
    return 0;
}

void convbn_planner_ran(const struct convbn_conv_call *conv, enum convbn_reason why_not)
{
    struct convbn_pending p;
    memset(&p, 0, sizeof p);
    p.conv = *conv;
    p.reason = why_not;
    convbn_planner_flush(conv->stream, "convolution"); /* it replaces its stream's candidate */
    insert(&p);
}

static int per_channel_bias(const struct convbn_tensor_geom *b, const struct convbn_tensor_geom *y)
{
    if (b->nb_dims != y->nb_dims || b->dims[1] != y->dims[1])
        return 0;
    for (int i = 0; i < b->nb_dims; i++)
        if (i != 1 && b->dims[i] != 1)
            return 0;
    return b->type == CUDNN_DATA_FLOAT || b->type == CUDNN_DATA_HALF ||
           b->type == CUDNN_DATA_BFLOAT16;
}

enum convbn_absorb convbn_planner_absorb_bias(cudaStream_t stream, const void *c_ptr,
                                              const struct convbn_tensor_geom *c_geom,
                                              const void *bias,
                                              const struct convbn_tensor_geom *bias_geom,
                                              const char *trigger)
{
    enum convbn_absorb result = CONVBN_ABSORB_NONE;
    pthread_mutex_lock(&planner_lock);
    struct candidate *c = by_stream ? find(stream) : NULL;
    struct convbn_conv_call *conv = c ? &c->pending.conv : NULL;
    if (conv && conv->y_ptr == c_ptr && convbn_tensor_same(&conv->y, c_geom) &&
        conv->kind == CONVBN_CONV_PLAIN && !conv->bias_ptr && bias &&
        per_channel_bias(bias_geom, &conv->y)) {
        conv->bias = *bias_geom;
        conv->bias_ptr = bias;
        conv->bias_absorbed = 1;
        result = c->pending.deferred ? CONVBN_ABSORB_DEFERRED : CONVBN_ABSORB_RECORDED;
    }
    pthread_mutex_unlock(&planner_lock);
    if (result == CONVBN_ABSORB_NONE)
        convbn_planner_flush(stream, trigger);
    return result;
}

static int consumes(const struct convbn_bn_call *bn, const struct convbn_conv_call *conv)
{
    return bn->x_ptr == conv->y_ptr && convbn_tensor_same(&bn->x, &conv->y);
}

int convbn_planner_take_match(const struct convbn_bn_call *bn, struct convbn_pending *out)
{
    int matched = 0;
    if (__atomic_load_n(&candidate_count, __ATOMIC_RELAXED) == 0)
        return 0;
    pthread_mutex_lock(&planner_lock);
    struct candidate *c = find(bn->stream);
    if (c && consumes(bn, &c->pending.conv)) {
        take(c, out);
        matched = 1;
    }
    pthread_mutex_unlock(&planner_lock);
    /* Anything else the BN could observe (another candidate on its stream, or on the legacy
     * default stream) runs before it. */
    convbn_planner_flush(bn->stream, "cudnnBatchNormalizationForwardInference");
    return matched;
}

int convbn_planner_pending(void)
{
    pthread_mutex_lock(&planner_lock);
    int n = (int)HASH_COUNT(by_stream);
    pthread_mutex_unlock(&planner_lock);
    return n;
}
