/* The planner: one pending conv per stream (cudaStreamLegacy is the NULL stream and
 * cudaStreamPerThread is distinct per thread), the decision to defer a conv, the match with
 * the inference BN that consumes its output, the absorption of a Caffe-style bias add, and
 * the flush rules (conservative, and the range test of the precise rule; DESIGN.md sections 3
 * and 5).  Candidates live in a fixed, compact array searched linearly (a program has a
 * handful of streams), so the table is bounded and nothing is allocated per call.  Owns the candidate table; runs deferred convs
 * only through the executor, outside its lock. */
#include <pthread.h>
#include <string.h>

#include "convbn/backend_run.h"
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
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;
static struct candidate candidates[MAX_CANDIDATES]; /* [0, used) are live */
static int used;
static int candidate_count; /* mirror of `used`, read without the lock for the idle fast path */
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

static int same_key(const struct stream_key *a, const struct stream_key *b)
{
    return a->stream == b->stream && pthread_equal(a->thread, b->thread);
}

static struct candidate *find(cudaStream_t s)
{
    struct stream_key key = key_of(s);
    for (int i = 0; i < used; i++)
        if (same_key(&candidates[i].key, &key))
            return &candidates[i];
    return NULL;
}

/* Removes c from the table, copying its pending record to *out. */
static void take(struct candidate *c, struct convbn_pending *out)
{
    *out = c->pending;
    if (c != &candidates[--used])
        *c = candidates[used];
    __atomic_store_n(&candidate_count, used, __ATOMIC_RELAXED);
}

/* Makes conv its stream's candidate with the given state; returns 0, or -1 when the table
 * is full or the stream already has one.  Builds the record in place: no copies on the way. */
static int insert(const struct convbn_conv_call *conv, int deferred, enum convbn_reason reason,
                  const struct convbn_pending *resources)
{
    int inserted = 0;
    pthread_mutex_lock(&planner_lock);
    if (used < MAX_CANDIDATES && !find(conv->stream)) {
        struct candidate *c = &candidates[used];
        c->key = key_of(conv->stream);
        c->pending.conv = *conv;
        c->pending.deferred = deferred;
        c->pending.reason = reason;
        c->pending.descs = resources ? resources->descs : NULL;
        c->pending.workspace_size = resources ? resources->workspace_size : 0;
        c->pending.fused = resources ? resources->fused : (struct convbn_fused_choice){0};
        c->pending.backend_plan = resources ? resources->backend_plan : NULL;
        c->pending.backend_pack = resources ? resources->backend_pack : NULL;
        __atomic_store_n(&candidate_count, ++used, __ATOMIC_RELAXED);
        inserted = 1;
    }
    pthread_mutex_unlock(&planner_lock);
    return inserted ? 0 : -1;
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
    if (p->backend_plan) {
        convbn_backend_release(p->backend_plan, p->backend_pack);
        p->backend_plan = p->backend_pack = NULL;
    }
}

typedef int (*candidate_filter)(const struct candidate *c, const void *ctx);

/* Takes one candidate accepted by filter out of the table; returns 1 if one was taken. */
static int take_one(candidate_filter filter, const void *ctx, struct convbn_pending *out)
{
    int taken = 0;
    pthread_mutex_lock(&planner_lock);
    for (int i = 0; i < used && !taken; i++) {
        if (filter(&candidates[i], ctx)) {
            take(&candidates[i], out);
            taken = 1;
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
    return same_key(&c->key, key);
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

static int overlaps(const struct convbn_range *r, const void *ptr, size_t len)
{
    uintptr_t lo = (uintptr_t)ptr;
    return ptr && len && r->len && r->lo < lo + len && lo < r->lo + r->len;
}

/* Returns 1 when one of the n ranges overlaps one of conv's buffers. */
static int conv_touched(const struct convbn_conv_call *conv, const struct convbn_range *ranges,
                        int n)
{
    size_t x_len = convbn_tensor_span_bytes(&conv->x), y_len = convbn_tensor_span_bytes(&conv->y);
    size_t b_len = conv->bias_ptr ? convbn_tensor_span_bytes(&conv->bias) : 0;
    for (int i = 0; i < n; i++)
        if (overlaps(&ranges[i], conv->x_ptr, x_len) ||
            overlaps(&ranges[i], conv->w_ptr, conv->w_bytes) ||
            overlaps(&ranges[i], conv->y_ptr, y_len) ||
            overlaps(&ranges[i], conv->bias_ptr, b_len))
            return 1;
    return 0;
}

int convbn_planner_touches(cudaStream_t stream, const struct convbn_range *ranges, int n)
{
    struct stream_key key = key_of(stream);
    int touched = 0;
    pthread_mutex_lock(&planner_lock);
    for (int i = 0; i < used && !touched; i++)
        touched = observable_from(&candidates[i], &key) &&
                  conv_touched(&candidates[i].pending.conv, ranges, n);
    pthread_mutex_unlock(&planner_lock);
    return touched;
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

/* Secures descriptors and workspace for deferring conv into *p (for a backend conv, from
 * the program's plan and pack in *program); returns the reason on failure. */
static enum convbn_reason secure_resources(const struct convbn_conv_call *conv,
                                           size_t program_workspace,
                                           cudnnBackendDescriptor_t plan,
                                           cudnnBackendDescriptor_t pack,
                                           struct convbn_pending *p)
{
    struct convbn_geometry_facts facts;
    size_t ws = 0;
    if (__atomic_load_n(&captures_active, __ATOMIC_RELAXED) > 0)
        return CONVBN_REASON_CAPTURE;
    if (!conv->x_ptr || !conv->w_ptr || !conv->y_ptr ||
        !(p->descs = convbn_descs_acquire(conv, &facts)))
        return CONVBN_REASON_UNSUPPORTED;
    p->fused = facts.fused;
    if (plan) { /* a backend conv: its deferred run uses its plan's workspace */
        enum convbn_reason reason = convbn_backend_secure(conv, plan, pack, &p->backend_pack);
        p->backend_plan = reason == CONVBN_FUSABLE ? plan : NULL;
        return reason;
    }
    if (facts.workspace >= 0)
        ws = (size_t)facts.workspace;
    else if (convbn_descs_workspace(p->descs, conv->handle, conv->algo, &ws) != 0)
        return CONVBN_REASON_UNSUPPORTED;
    if (ws > program_workspace)
        return CONVBN_REASON_UNSUPPORTED;
    if (ws > 0 && !convbn_scratch(conv->stream, CONVBN_SCRATCH_WORKSPACE, ws))
        return CONVBN_REASON_MEMORY_CAP;
    p->workspace_size = ws;
    return CONVBN_FUSABLE;
}

static int offer(const struct convbn_conv_call *conv, size_t program_workspace,
                 cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                 enum convbn_reason *why_not)
{
    struct convbn_pending p; /* resources only: descs, workspace_size, fused, backend */
    p.descs = NULL;
    p.workspace_size = 0;
    p.backend_plan = p.backend_pack = NULL;
    *why_not = CONVBN_FUSABLE;
    if (convbn_cfg.mode == CONVBN_MODE_OBSERVE)
        return 0;
    enum convbn_reason reason = convbn_conv_reason(conv);
    if (reason == CONVBN_FUSABLE)
        reason = convbn_fusing_allowed();
    if (reason == CONVBN_FUSABLE)
        reason = secure_resources(conv, program_workspace, plan, pack, &p);
    if (reason == CONVBN_FUSABLE) {
        if (insert(conv, 1, CONVBN_FUSABLE, &p) == 0)
            return 1;
        reason = CONVBN_REASON_MEMORY_CAP;
    }
    if (p.descs)
        convbn_descs_release(p.descs);
    convbn_backend_release(p.backend_plan, p.backend_pack);
    *why_not = reason;
    return 0;
}

int convbn_planner_offer(const struct convbn_conv_call *conv, size_t program_workspace,
                         enum convbn_reason *why_not)
{
    return offer(conv, program_workspace, NULL, NULL, why_not);
}

int convbn_planner_offer_backend(const struct convbn_conv_call *conv,
                                 cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                                 enum convbn_reason *why_not)
{
    return offer(conv, 0, plan, pack, why_not);
}

void convbn_planner_ran(const struct convbn_conv_call *conv, enum convbn_reason why_not)
{
    convbn_planner_flush(conv->stream, "convolution"); /* it replaces its stream's candidate */
    insert(conv, 0, why_not, NULL);
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
    struct candidate *c = find(stream);
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

int convbn_planner_idle(void)
{
    return __atomic_load_n(&candidate_count, __ATOMIC_RELAXED) == 0;
}

int convbn_planner_pending(void)
{
    pthread_mutex_lock(&planner_lock);
    int n = used;
    pthread_mutex_unlock(&planner_lock);
    return n;
}
