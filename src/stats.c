/* Counts matched pairs and their outcomes, keeps the table of distinct pair signatures
 * (uthash, bounded), writes the one-line description of a signature when it is first seen
 * (CONVBN_LOG >= 1) and the summary at exit (CONVBN_STATS=1).  Owns all counters and the
 * signature table, under one lock.  Never changes what the shim does. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convbn/hash.h"
#include <uthash.h>

#include "convbn/backend_fused.h"
#include "convbn/callsite.h"
#include "convbn/convbn.h"
#include "convbn/device_memory.h"
#include "convbn/fold.h"
#include "convbn/log.h"
#include "convbn/shim.h"
#include "convbn/stats.h"

#define MAX_SIGNATURES 4096
#define MAX_TRIGGERS 64

_Static_assert(CONVBN_REASON_COUNT <= CONVBN_COUNTERS_REASONS, "reason counters too small");

struct pair_key {
    double eps;
    int api, kind, has_bias, bn_mode, param_type, reason, activation, inv_std;
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
};

struct signature {
    struct pair_key key;
    unsigned long id, count, verified;
    double max_abs, max_rel;
    UT_hash_handle hh;
};

struct trigger_count {
    const char *name;
    unsigned long count;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct signature *signatures;
static unsigned long signatures_dropped;
static struct convbn_counters counters;
/* Pairs per API of their conv, [api][fused]: counted with the signatures (only when logging
 * or statistics are on, the only time the summary prints them). */
static unsigned long pairs_by_api[2][2];
static struct trigger_count triggers[MAX_TRIGGERS];

static void make_key(struct pair_key *key, const struct convbn_conv_call *conv,
                     const struct convbn_bn_call *bn, enum convbn_reason reason)
{
    memset(key, 0, sizeof *key);
    key->has_bias = conv->bias_ptr != NULL;
    key->eps = bn->eps;
    key->inv_std = bn->inv_std;
    key->api = conv->api;
    key->kind = conv->kind;
    key->bn_mode = bn->mode;
    key->param_type = bn->params.type;
    key->reason = reason;
    key->activation = conv->kind == CONVBN_CONV_BIAS_ACT ? conv->activation : -1;
    key->x = conv->x;
    key->y = conv->y;
    key->w = conv->w;
    key->conv = conv->conv;
}

static const char *bn_mode_name(int mode)
{
    switch (mode) {
    case CUDNN_BATCHNORM_PER_ACTIVATION: return "per-activation";
    case CUDNN_BATCHNORM_SPATIAL: return "spatial";
    case CUDNN_BATCHNORM_SPATIAL_PERSISTENT: return "spatial-persistent";
    default: return "other";
    }
}

static const char *conv_kind_name(const struct convbn_conv_call *conv)
{
    if (conv->kind == CONVBN_CONV_BIAS_ACT)
        return "bias-activation";
    return conv->bias_absorbed ? "forward+add-bias" : "forward";
}

static const char *outcome_name(enum convbn_reason reason, int fused)
{
    if (reason != CONVBN_FUSABLE)
        return convbn_reason_name(reason);
    return fused ? "fused" : "fusable";
}

static void log_signature(unsigned long id, const struct convbn_conv_call *conv,
                          const struct convbn_bn_call *bn, enum convbn_reason reason, int fused)
{
    char x[64], w[64], y[64], pad[32], stride[32], dil[32], eps[32], site[512];
    const struct convbn_conv_geom *g = &conv->conv;
    if (bn->inv_std) /* a backend BN is handed 1/sqrt(var + eps): its eps is not known */
        snprintf(eps, sizeof eps, "n/a var=inv_std");
    else
        snprintf(eps, sizeof eps, "%g", bn->eps);
    convbn_logf("pair #%lu api=%s conv=%s x=%s w=%s y=%s pad=%s stride=%s dilation=%s "
                "groups=%d %s type=%s layout=%s bn=%s eps=%s -> %s at %s", id,
                conv->api == CONVBN_API_LEGACY ? "legacy" : "backend", conv_kind_name(conv),
                convbn_format_dims(x, sizeof x, conv->x.dims, conv->x.nb_dims),
                convbn_format_dims(w, sizeof w, conv->w.dims, conv->w.nb_dims),
                convbn_format_dims(y, sizeof y, conv->y.dims, conv->y.nb_dims),
                convbn_format_list(pad, sizeof pad, g->pad, g->nb_spatial),
                convbn_format_list(stride, sizeof stride, g->stride, g->nb_spatial),
                convbn_format_list(dil, sizeof dil, g->dilation, g->nb_spatial), g->groups,
                g->mode == CUDNN_CONVOLUTION ? "convolution" : "cross-correlation",
                convbn_type_name(conv->y.type), convbn_layout_name(&conv->y),
                bn_mode_name(bn->mode), eps, outcome_name(reason, fused),
                convbn_callsite_describe(site, sizeof site));
}

/* Returns the signature's id if it is new (0 when the table is full), or -1 if known. */
static long count_signature(const struct pair_key *key)
{
    struct signature *sig;
    HASH_FIND(hh, signatures, key, sizeof *key, sig);
    if (sig) {
        sig->count++;
        return -1;
    }
    sig = HASH_COUNT(signatures) < MAX_SIGNATURES ? calloc(1, sizeof *sig) : NULL;
    if (!sig) {
        signatures_dropped++;
        return 0;
    }
    sig->key = *key;
    sig->count = 1;
    sig->id = __atomic_add_fetch(&counters.distinct_signatures, 1, __ATOMIC_RELAXED);
    HASH_ADD(hh, signatures, key, sizeof sig->key, sig);
    return (long)sig->id;
}

/* Signatures are only needed for the log, the summary and verify reports. */
static int signatures_wanted(void)
{
    return convbn_cfg.log_level > 0 || convbn_cfg.stats || convbn_cfg.verify;
}

static void add(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Counts the pair's signature and logs it when new.  Out of line: the key is large, and the
 * counters-only path of every fused pair should not pay for its stack frame. */
__attribute__((noinline)) static void record_signature(const struct convbn_conv_call *conv,
                                                       const struct convbn_bn_call *bn,
                                                       enum convbn_reason reason, int fused)
{
    struct pair_key key;
    make_key(&key, conv, bn, reason);
    pthread_mutex_lock(&stats_lock);
    pairs_by_api[conv->api][fused != 0]++;
    long id = count_signature(&key);
    pthread_mutex_unlock(&stats_lock);
    if (id >= 0 && convbn_cfg.log_level >= 1)
        log_signature((unsigned long)id, conv, bn, reason, fused);
}

void convbn_stats_pair(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                       enum convbn_reason reason, int fused)
{
    uint64_t y_bytes = convbn_tensor_bytes(&conv->y);
    add(&counters.pairs_seen, 1);
    if (reason == CONVBN_FUSABLE) {
        add(&counters.pairs_fusable, 1);
        add(&counters.bytes_saveable, 2 * y_bytes);
    } else {
        add(&counters.not_fusable[reason], 1);
    }
    if (fused) {
        add(&counters.pairs_fused, 1);
        add(&counters.bytes_not_moved, 2 * y_bytes);
    }
    if (reason == CONVBN_REASON_GRAD_MODE)
        add(&counters.bytes_kept_for_grad, y_bytes);
    if (signatures_wanted())
        record_signature(conv, bn, reason, fused);
}

void convbn_stats_flush(const char *trigger)
{
    add(&counters.flushes, 1);
    pthread_mutex_lock(&stats_lock);
    for (int i = 0; i < MAX_TRIGGERS; i++) {
        if (!triggers[i].name || strcmp(triggers[i].name, trigger) == 0) {
            triggers[i].name = trigger;
            triggers[i].count++;
            break;
        }
    }
    pthread_mutex_unlock(&stats_lock);
}

void convbn_stats_verify(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                         double max_abs, double max_rel)
{
    struct pair_key key;
    struct signature *sig;
    unsigned long first_id = 0;
    make_key(&key, conv, bn, CONVBN_FUSABLE);
    pthread_mutex_lock(&stats_lock);
    counters.pairs_verified++;
    if (max_abs > counters.verify_max_abs_error)
        counters.verify_max_abs_error = max_abs;
    if (max_rel > counters.verify_max_rel_error)
        counters.verify_max_rel_error = max_rel;
    HASH_FIND(hh, signatures, &key, sizeof key, sig);
    if (sig) {
        if (sig->verified++ == 0)
            first_id = sig->id;
        sig->max_abs = max_abs > sig->max_abs ? max_abs : sig->max_abs;
        sig->max_rel = max_rel > sig->max_rel ? max_rel : sig->max_rel;
    }
    pthread_mutex_unlock(&stats_lock);
    if (first_id && convbn_cfg.log_level >= 1)
        convbn_logf("verify pair #%lu: max abs error %.3g, max rel error %.3g", first_id,
                    max_abs, max_rel);
}

__attribute__((visibility("default"))) int convbn_get_counters(struct convbn_counters *out,
                                                               size_t size)
{
    struct convbn_counters now;
    if (!out)
        return -1;
    pthread_mutex_lock(&stats_lock);
    now = counters;
    pthread_mutex_unlock(&stats_lock);
    now.device_bytes_high_water = convbn_device_high_water();
    now.pairs_fused_graph = convbn_backend_fused_count();
    memcpy(out, &now, size < sizeof now ? size : sizeof now);
    return 0;
}

__attribute__((visibility("default"))) const char *convbn_reason_text(int i)
{
    return i > 0 && i < CONVBN_REASON_COUNT ? convbn_reason_name((enum convbn_reason)i) : NULL;
}

static void summarise_reasons(const struct convbn_counters *c)
{
    for (int r = 1; r < CONVBN_REASON_COUNT; r++)
        if (c->not_fusable[r])
            convbn_logf("  not fused: %-16s %10llu", convbn_reason_name((enum convbn_reason)r),
                        (unsigned long long)c->not_fusable[r]);
}

static void summarise_flushes(void)
{
    for (int i = 0; i < MAX_TRIGGERS && triggers[i].name; i++)
        convbn_logf("  flushed by %-30s %6lu", triggers[i].name, triggers[i].count);
}

static void summarise_verify(const struct convbn_counters *c)
{
    struct signature *sig, *tmp;
    if (!c->pairs_verified)
        return;
    convbn_logf("  verified pairs             %10llu (max abs error %.3g, max rel error %.3g)",
                (unsigned long long)c->pairs_verified, c->verify_max_abs_error,
                c->verify_max_rel_error);
    HASH_ITER(hh, signatures, sig, tmp)
        if (sig->verified)
            convbn_logf("    pair #%lu: %lu verified, max abs %.3g, max rel %.3g", sig->id,
                        sig->verified, sig->max_abs, sig->max_rel);
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1 << 20);
}

void convbn_stats_summary(void)
{
    struct convbn_counters c;
    convbn_get_counters(&c, sizeof c);
    pthread_mutex_lock(&stats_lock);
    convbn_logf("summary: mode=%s flush=%s fold=%s", convbn_mode_name(convbn_cfg.mode),
                convbn_cfg.flush == CONVBN_FLUSH_PRECISE ? "precise" : "conservative",
                convbn_fold_backend());
    convbn_logf("  pairs seen                 %10llu", (unsigned long long)c.pairs_seen);
    convbn_logf("  distinct signatures        %10llu", (unsigned long long)c.distinct_signatures);
    convbn_logf("  fusable                    %10llu", (unsigned long long)c.pairs_fusable);
    convbn_logf("  fused                      %10llu", (unsigned long long)c.pairs_fused);
    if (c.pairs_fused_graph)
        convbn_logf("  pairs fused as backend graphs %7llu",
                    (unsigned long long)c.pairs_fused_graph);
    convbn_logf("  by API: legacy %lu seen, %lu fused; backend %lu seen, %lu fused",
                pairs_by_api[CONVBN_API_LEGACY][0] + pairs_by_api[CONVBN_API_LEGACY][1],
                pairs_by_api[CONVBN_API_LEGACY][1],
                pairs_by_api[CONVBN_API_BACKEND][0] + pairs_by_api[CONVBN_API_BACKEND][1],
                pairs_by_api[CONVBN_API_BACKEND][1]);
    summarise_reasons(&c);
    summarise_flushes();
    summarise_verify(&c);
    convbn_logf("  activation bytes not moved %10llu (%.1f MiB)%s",
                (unsigned long long)c.bytes_not_moved, mib(c.bytes_not_moved),
                c.pairs_fused ? "" : ": nothing fused");
    if (c.pairs_fused < c.pairs_fusable)
        convbn_logf("  activation bytes a fusion would save %llu (%.1f MiB)",
                    (unsigned long long)c.bytes_saveable, mib(c.bytes_saveable));
    if (c.bytes_kept_for_grad)
        convbn_logf("  conv outputs kept for gradients %llu bytes (%.1f MiB): a framework-level "
                    "Tune mode would free them", (unsigned long long)c.bytes_kept_for_grad,
                    mib(c.bytes_kept_for_grad));
    convbn_logf("  shim device memory high-water %llu bytes (%.1f MiB)",
                (unsigned long long)c.device_bytes_high_water, mib(c.device_bytes_high_water));
    if (signatures_dropped)
        convbn_logf("  signatures not tabulated (table full) %lu", signatures_dropped);
    pthread_mutex_unlock(&stats_lock);
}
