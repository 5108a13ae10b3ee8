/* Counts matched pairs and their outcomes, keeps the table of distinct pair signatures
 * (uthash, bounded), writes the one-line description of a signature when it is first seen
 * (CONVBN_LOG >= 1) and the summary at exit (CONVBN_STATS=1).  Owns all counters and the
 * signature table, under one lock.  Never changes what the shim does. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "convbn/callsite.h"
#include "convbn/convbn.h"
#include "convbn/log.h"
#include "convbn/shim.h"
#include "convbn/stats.h"

#define MAX_SIGNATURES 4096

_Static_assert(CONVBN_REASON_COUNT <= CONVBN_COUNTERS_REASONS, "reason counters too small");

struct pair_key {
    double eps;
    int api, kind, bn_mode, param_type, reason, activation;
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
};

struct signature {
    struct pair_key key;
    unsigned long count;
    UT_hash_handle hh;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct signature *signatures;
static unsigned long signatures_dropped;
static struct convbn_counters counters;

static void make_key(struct pair_key *key, const struct convbn_conv_call *conv,
                     const struct convbn_bn_call *bn, enum convbn_reason reason)
{
    memset(key, 0, sizeof *key);
    key->eps = bn->eps;
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

static void log_signature(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                          enum convbn_reason reason)
{
    char x[64], w[64], y[64], pad[32], stride[32], dil[32], site[512];
    const struct convbn_conv_geom *g = &conv->conv;
    convbn_logf("pair api=%s conv=%s x=%s w=%s y=%s pad=%s stride=%s dilation=%s groups=%d "
                "%s type=%s layout=%s bn=%s eps=%g -> %s at %s",
                conv->api == CONVBN_API_LEGACY ? "legacy" : "backend",
                conv->kind == CONVBN_CONV_PLAIN ? "forward" : "bias-activation",
                convbn_format_dims(x, sizeof x, conv->x.dims, conv->x.nb_dims),
                convbn_format_dims(w, sizeof w, conv->w.dims, conv->w.nb_dims),
                convbn_format_dims(y, sizeof y, conv->y.dims, conv->y.nb_dims),
                convbn_format_list(pad, sizeof pad, g->pad, g->nb_spatial),
                convbn_format_list(stride, sizeof stride, g->stride, g->nb_spatial),
                convbn_format_list(dil, sizeof dil, g->dilation, g->nb_spatial), g->groups,
                g->mode == CUDNN_CONVOLUTION ? "convolution" : "cross-correlation",
                convbn_type_name(conv->y.type), convbn_layout_name(&conv->y),
                bn_mode_name(bn->mode), bn->eps, convbn_reason_name(reason),
                convbn_callsite_describe(site, sizeof site));
}

/* Returns 1 if the signature is new (and was added, or dropped because the table is full). */
static int count_signature(const struct pair_key *key)
{
    struct signature *sig;
    HASH_FIND(hh, signatures, key, sizeof *key, sig);
    if (sig) {
        sig->count++;
        return 0;
    }
    sig = HASH_COUNT(signatures) < MAX_SIGNATURES ? malloc(sizeof *sig) : NULL;
    if (!sig) {
        signatures_dropped++;
        return 1;
    }
    sig->key = *key;
    sig->count = 1;
    HASH_ADD(hh, signatures, key, sizeof sig->key, sig);
    counters.distinct_signatures++;
    return 1;
}

void convbn_stats_pair(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                       enum convbn_reason reason)
{
    struct pair_key key;
    make_key(&key, conv, bn, reason);
    pthread_mutex_lock(&stats_lock);
    counters.pairs_seen++;
    if (reason == CONVBN_FUSABLE) {
        counters.pairs_fusable++;
        counters.bytes_saveable += 2 * convbn_tensor_bytes(&conv->y);
    } else {
        counters.not_fusable[reason]++;
    }
    int is_new = count_signature(&key);
    pthread_mutex_unlock(&stats_lock);
    if (is_new && convbn_cfg.log_level >= 1)
        log_signature(conv, bn, reason);
}

__attribute__((visibility("default"))) int convbn_get_counters(struct convbn_counters *out)
{
    if (!out)
        return -1;
    pthread_mutex_lock(&stats_lock);
    *out = counters;
    pthread_mutex_unlock(&stats_lock);
    return 0;
}

__attribute__((visibility("default"))) const char *convbn_reason_text(int i)
{
    return i > 0 && i < CONVBN_REASON_COUNT ? convbn_reason_name((enum convbn_reason)i) : NULL;
}

void convbn_stats_summary(void)
{
    struct convbn_counters c;
    convbn_get_counters(&c);
    enum convbn_mode mode = convbn_cfg.mode;
    convbn_logf("summary: mode=%s%s", convbn_mode_name(mode),
                mode == CONVBN_MODE_AUTO || mode == CONVBN_MODE_FUSE
                    ? " (behaves as observe: fusion is not built yet)"
                    : "");
    convbn_logf("  pairs seen                 %10llu", (unsigned long long)c.pairs_seen);
    convbn_logf("  distinct signatures        %10llu", (unsigned long long)c.distinct_signatures);
    convbn_logf("  fusable                    %10llu", (unsigned long long)c.pairs_fusable);
    for (int r = 1; r < CONVBN_REASON_COUNT; r++)
        if (c.not_fusable[r])
            convbn_logf("  not fusable: %-13s %10llu", convbn_reason_name((enum convbn_reason)r),
                        (unsigned long long)c.not_fusable[r]);
    convbn_logf("  activation bytes a fusion would save %llu (%.1f MiB)",
                (unsigned long long)c.bytes_saveable, (double)c.bytes_saveable / (1 << 20));
    if (signatures_dropped)
        convbn_logf("  signatures not tabulated (table full) %lu", signatures_dropped);
}
