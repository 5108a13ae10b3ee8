/* The conv -> inference-BN pairs of a trace, as the bench sees them: a bn_inference whose x
 * is the output (same buffer, dims, strides and type) of the convolution (conv_fwd or
 * conv_bias_act) issued last on the same stream, with no other operation on that stream in
 * between (an operation on the legacy default stream, 0, ends every stream's candidate).
 * Groups pairs into signatures (geometry, types, layout, BN mode) and decides which pairs
 * the deploy mode can fold offline.  Owns r->pairs, r->pair_of_op and r->sigs. */
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "bench.h"

struct sig_key {
    enum trace_kind kind;
    enum trace_type type;
    enum trace_format format;
    int bn_mode, nb_dims, w_dims;
    int x[TRACE_MAX_DIMS], y[TRACE_MAX_DIMS], w[TRACE_MAX_DIMS];
    struct trace_conv conv;
};

struct sig_entry {
    struct sig_key key;
    size_t index;
    UT_hash_handle hh;
};

static int same_tensor(const struct trace_tensor *a, const struct trace_tensor *b)
{
    return a->buf != TRACE_NO_BUF && a->buf == b->buf && a->type == b->type &&
           a->nb_dims == b->nb_dims &&
           memcmp(a->dims, b->dims, sizeof(int) * (size_t)a->nb_dims) == 0 &&
           memcmp(a->strides, b->strides, sizeof(int) * (size_t)a->nb_dims) == 0;
}

static int fold_type(enum trace_type t)
{
    return t == TRACE_FLOAT || t == TRACE_HALF || t == TRACE_BFLOAT16;
}

/* Whether the deploy mode can replace the pair by one conv + bias (the conditions under
 * which the shim folds too: per-channel BN, nothing blended in, identity activation, no z
 * term, one float/half/bfloat16 type for x, w, y and a conv bias, float BN parameters). */
static int foldable(const struct trace_op *conv, const struct trace_op *bn)
{
    const struct trace_tensor *x = &conv->t[TRACE_IN], *y = &conv->t[TRACE_OUT];
    const struct trace_tensor *params = &bn->t[TRACE_AUX], *z = &bn->t[TRACE_OUT];
    int k = conv->w.dims[0];
    if (bn->mode == TRACE_BN_PER_ACTIVATION || bn->beta != 0 ||
        (conv->kind == TRACE_CONV_FWD && conv->beta != 0))
        return 0;
    const struct trace_tensor *bias = &conv->t[TRACE_AUX];
    if (conv->kind == TRACE_CONV_BIAS_ACT &&
        (conv->mode != TRACE_ACT_IDENTITY || conv->alpha2 != 0 || bias->type != y->type ||
         bias->buf == TRACE_NO_BUF || trace_tensor_elements(bias) != (size_t)k))
        return 0;
    if (!fold_type(y->type) || x->type != y->type || conv->w.type != y->type ||
        z->type != y->type || params->type != TRACE_FLOAT || z->nb_dims != y->nb_dims ||
        memcmp(z->dims, y->dims, sizeof(int) * (size_t)y->nb_dims) != 0)
        return 0;
    if (params->nb_dims < 2 || params->dims[1] != k || trace_tensor_elements(params) != (size_t)k)
        return 0;
    for (int i = 0; i < TRACE_BN_VAR + 1; i++)
        if (bn->bn_buf[i] == TRACE_NO_BUF)
            return 0;
    return conv->w.buf != TRACE_NO_BUF && x->buf != TRACE_NO_BUF && z->buf != TRACE_NO_BUF;
}

static void make_key(struct sig_key *k, const struct trace_op *conv, const struct trace_op *bn)
{
    memset(k, 0, sizeof *k);
    k->kind = conv->kind;
    k->type = conv->t[TRACE_OUT].type;
    k->format = conv->w.format;
    k->bn_mode = bn->mode;
    k->nb_dims = conv->t[TRACE_OUT].nb_dims;
    k->w_dims = conv->w.nb_dims;
    memcpy(k->x, conv->t[TRACE_IN].dims, sizeof k->x);
    memcpy(k->y, conv->t[TRACE_OUT].dims, sizeof k->y);
    memcpy(k->w, conv->w.dims, sizeof k->w);
    k->conv = conv->conv;
}

/* Appends "sep" then the n values joined by 'x' to buf. */
static void put_dims(char *buf, size_t cap, const char *sep, const int *v, int n)
{
    size_t used = strlen(buf);
    for (int i = 0; i < n && used < cap; i++) {
        snprintf(buf + used, cap - used, "%s%d", i ? "x" : sep, v[i]);
        used = strlen(buf);
    }
}

/* "2x64x56x56 > 2x256x56x56 k1x1 s1x1 float NCHW", plus p, d, g, bias and BN mode when set. */
static void make_label(struct bench_signature *sig, const struct trace_op *conv,
                       const struct trace_op *bn)
{
    static const char *const bn_modes[] = {"", " persistent", " per-activation"};
    const struct trace_conv *c = &conv->conv;
    char *l = sig->label;
    size_t cap = sizeof sig->label;
    int pad = 0, dil = 0;
    for (int i = 0; i < c->nb_spatial; i++) {
        pad |= c->pad[i];
        dil |= c->dilation[i] != 1;
    }
    l[0] = '\0';
    put_dims(l, cap, "", conv->t[TRACE_IN].dims, conv->t[TRACE_IN].nb_dims);
    put_dims(l, cap, " > ", conv->t[TRACE_OUT].dims, conv->t[TRACE_OUT].nb_dims);
    put_dims(l, cap, " k", conv->w.dims + 2, conv->w.nb_dims - 2);
    put_dims(l, cap, " s", c->stride, c->nb_spatial);
    if (pad)
        put_dims(l, cap, " p", c->pad, c->nb_spatial);
    if (dil)
        put_dims(l, cap, " d", c->dilation, c->nb_spatial);
    if (c->groups > 1)
        put_dims(l, cap, " g", &c->groups, 1);
    size_t used = strlen(l);
    snprintf(l + used, cap - used, " %s %s%s%s", trace_type_name(conv->t[TRACE_OUT].type),
             conv->w.format == TRACE_NHWC ? "NHWC" : "NCHW",
             conv->kind == TRACE_CONV_BIAS_ACT ? " bias" : "", bn_modes[bn->mode]);
}

static int add_signature(struct bench_replay *r, struct sig_entry **table, struct bench_pair *p)
{
    const struct trace_op *conv = &r->trace->ops[p->conv], *bn = &r->trace->ops[p->bn];
    struct sig_key key;
    struct sig_entry *e;
    make_key(&key, conv, bn);
    HASH_FIND(hh, *table, &key, sizeof key, e);
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return replay_fail(r, bn, "out of memory for pair signatures");
        e->key = key;
        e->index = r->n_sigs++;
        HASH_ADD(hh, *table, key, sizeof key, e);
        r->sigs[e->index] = (struct bench_signature){.first = (size_t)(p - r->pairs)};
        make_label(&r->sigs[e->index], conv, bn);
    }
    p->sig = e->index;
    r->sigs[e->index].count++;
    if (p->foldable)
        r->sigs[e->index].bytes_saved += 2 * (uint64_t)p->act_bytes;
    return 0;
}

static void add_pair(struct bench_replay *r, size_t conv, size_t bn)
{
    const struct trace_op *c = &r->trace->ops[conv], *b = &r->trace->ops[bn];
    struct bench_pair *p = &r->pairs[r->n_pairs];
    *p = (struct bench_pair){.conv = conv, .bn = bn, .foldable = foldable(c, b)};
    p->act_bytes = trace_tensor_elements(&c->t[TRACE_OUT]) * trace_type_size(c->t[TRACE_OUT].type);
    r->pair_of_op[conv] = r->pair_of_op[bn] = (long)r->n_pairs++;
}

/* Walks the trace once, pairing each bn_inference with its stream's candidate conv. */
static void match(struct bench_replay *r, long *candidate)
{
    const struct trace *t = r->trace;
    int streams = 1; /* candidate[streams..] are all -1 */
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        long c = candidate[op->stream];
        if (op->kind == TRACE_BN_INFERENCE && c >= 0 &&
            same_tensor(&op->t[TRACE_IN], &t->ops[c].t[TRACE_OUT]))
            add_pair(r, (size_t)c, i);
        if (op->stream >= streams)
            streams = op->stream + 1;
        if (op->stream == 0)
            for (int s = 0; s < streams; s++)
                candidate[s] = -1;
        candidate[op->stream] =
            op->kind == TRACE_CONV_FWD || op->kind == TRACE_CONV_BIAS_ACT ? (long)i : -1;
    }
}

int pairs_find(struct bench_replay *r)
{
    const struct trace *t = r->trace;
    size_t n = t->n_ops ? t->n_ops : 1;
    long *candidate = malloc(TRACE_MAX_STREAMS * sizeof *candidate);
    struct sig_entry *table = NULL, *e, *tmp;
    int rc = 0;
    r->pairs = calloc(n, sizeof *r->pairs);
    r->pair_of_op = malloc(n * sizeof *r->pair_of_op);
    r->sigs = calloc(n, sizeof *r->sigs);
    if (!candidate || !r->pairs || !r->pair_of_op || !r->sigs) {
        free(candidate);
        return replay_fail(r, NULL, "out of memory for the pairs of %zu operations", t->n_ops);
    }
    for (size_t i = 0; i < n; i++)
        r->pair_of_op[i] = -1;
    for (int s = 0; s < TRACE_MAX_STREAMS; s++)
        candidate[s] = -1;
    match(r, candidate);
    for (size_t p = 0; rc == 0 && p < r->n_pairs; p++)
        rc = add_signature(r, &table, &r->pairs[p]);
    HASH_ITER(hh, table, e, tmp) {
        HASH_DEL(table, e);
        free(e);
    }
    free(candidate);
    return rc;
}

void pairs_close(struct bench_replay *r)
{
    free(r->pairs);
    free(r->pair_of_op);
    free(r->sigs);
    r->pairs = NULL;
    r->pair_of_op = NULL;
    r->sigs = NULL;
    r->n_pairs = r->n_sigs = 0;
}
