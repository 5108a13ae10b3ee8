/* `convbn-bench --summary`: replays a trace once with the shim in observe mode and reports
 * what the shim found, read from its own counters (convbn_get_counters): pairs, the
 * fusable fraction, the reasons the others cannot fold, and the activation bytes a fusion
 * would save per iteration (one replay of the trace).  Reading the counters after every
 * operation attributes each pair to its layer, so the JSON and CSV carry one row per pair
 * (layer index, shapes, verdict, bytes saved) for per-layer plots.  Owns the layer rows of
 * one replay. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct layer {
    long conv;           /* the last convolution on the BN's stream, or -1 */
    size_t bn;
    int reason;          /* 0 fusable, a convbn reason index, or -1 unknown */
    uint64_t bytes;
};

struct summary {
    struct bench_replay *r;
    const struct shim_api *shim;
    struct convbn_counters first, last;
    long last_conv[TRACE_MAX_STREAMS];
    struct layer *layers;
    size_t n_layers, cap;
};

/* The reason whose counter grew from a to b, or -1. */
static int grown_reason(const struct convbn_counters *a, const struct convbn_counters *b)
{
    for (int i = 1; i < CONVBN_COUNTERS_REASONS; i++)
        if (b->not_fusable[i] > a->not_fusable[i])
            return i;
    return -1;
}

static void observe(void *ctx, size_t i)
{
    struct summary *s = ctx;
    const struct trace_op *op = &s->r->trace->ops[i];
    struct convbn_counters now;
    shim_counters(s->shim, &now);
    if (op->kind == TRACE_CONV_FWD || op->kind == TRACE_CONV_BIAS_ACT)
        s->last_conv[op->stream] = (long)i;
    if (now.pairs_seen > s->last.pairs_seen && s->n_layers < s->cap) {
        struct layer *l = &s->layers[s->n_layers++];
        l->conv = s->last_conv[op->stream];
        l->bn = i;
        l->reason = now.pairs_fusable > s->last.pairs_fusable ? 0 : grown_reason(&s->last, &now);
        l->bytes = now.bytes_saveable - s->last.bytes_saveable;
    }
    s->last = now;
}

static const char *verdict(const struct summary *s, int reason)
{
    const char *text = reason > 0 ? s->shim->reason_text(reason) : NULL;
    return reason == 0 ? "fusable" : text ? text : "unknown";
}

static void print_summary(FILE *out, const struct summary *s)
{
    const struct trace *t = s->r->trace;
    const struct convbn_counters *a = &s->first, *b = &s->last;
    uint64_t pairs = b->pairs_seen - a->pairs_seen, fusable = b->pairs_fusable - a->pairs_fusable;
    uint64_t bytes = b->bytes_saveable - a->bytes_saveable;
    fprintf(out, "%s: %s%s%s trace, %zu operations (one replay, shim in observe mode)\n", t->name,
            t->model, t->model[0] ? ", " : "", t->source, t->n_ops);
    fprintf(out, "  %-36s %12llu\n", "pairs", (unsigned long long)pairs);
    fprintf(out, "  %-36s %12llu (%.1f%%)\n", "fusable", (unsigned long long)fusable,
            pairs ? 100.0 * (double)fusable / (double)pairs : 0.0);
    for (int i = 1; i < CONVBN_COUNTERS_REASONS; i++)
        if (b->not_fusable[i] > a->not_fusable[i]) {
            char what[64];
            snprintf(what, sizeof what, "not fusable: %s", verdict(s, i));
            fprintf(out, "  %-36s %12llu\n", what,
                    (unsigned long long)(b->not_fusable[i] - a->not_fusable[i]));
        }
    fprintf(out, "  %-36s %12llu (%.1f MiB)\n", "activation bytes saved per iteration",
            (unsigned long long)bytes, (double)bytes / 1048576.0);
}

static void dims_text(char *buf, size_t cap, const int *dims, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? "x" : "", dims[i]);
}

void summary_csv_header(FILE *csv)
{
    fprintf(csv, "trace,layer,conv_seq,bn_seq,x,w,y,type,verdict,bytes_saved\n");
}

static void write_csv(FILE *csv, const struct summary *s)
{
    const struct trace *t = s->r->trace;
    for (size_t i = 0; i < s->n_layers; i++) {
        const struct layer *l = &s->layers[i];
        const struct trace_op *bn = &t->ops[l->bn], *conv = l->conv >= 0 ? &t->ops[l->conv] : NULL;
        char x[96] = "", w[96] = "", y[96];
        if (conv) {
            dims_text(x, sizeof x, conv->t[TRACE_IN].dims, conv->t[TRACE_IN].nb_dims);
            dims_text(w, sizeof w, conv->w.dims, conv->w.nb_dims);
        }
        dims_text(y, sizeof y, bn->t[TRACE_IN].dims, bn->t[TRACE_IN].nb_dims);
        report_csv_text(csv, t->name);
        fprintf(csv, ",%zu,%ld,%ld,%s,%s,%s,%s,%s,%llu\n", i, conv ? conv->seq : -1, bn->seq, x, w,
                y, trace_type_name(bn->t[TRACE_IN].type),
                verdict(s, l->reason), (unsigned long long)l->bytes);
    }
}

static struct json_object *json_layer(const struct summary *s, size_t i)
{
    const struct layer *l = &s->layers[i];
    const struct trace *t = s->r->trace;
    const struct trace_op *bn = &t->ops[l->bn], *conv = l->conv >= 0 ? &t->ops[l->conv] : NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "layer", json_object_new_int64((int64_t)i));
    json_object_object_add(o, "conv_seq", conv ? json_object_new_int64(conv->seq) : NULL);
    json_object_object_add(o, "bn_seq", json_object_new_int64(bn->seq));
    if (conv) {
        report_json_dims(o, "x", conv->t[TRACE_IN].dims, conv->t[TRACE_IN].nb_dims);
        report_json_dims(o, "w", conv->w.dims, conv->w.nb_dims);
    }
    report_json_dims(o, "y", bn->t[TRACE_IN].dims, bn->t[TRACE_IN].nb_dims);
    const char *type = trace_type_name(bn->t[TRACE_IN].type);
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "verdict", json_object_new_string(verdict(s, l->reason)));
    json_object_object_add(o, "bytes_saved", json_object_new_int64((int64_t)l->bytes));
    return o;
}

static struct json_object *summary_json(const struct summary *s)
{
    const struct trace *t = s->r->trace;
    const struct convbn_counters *a = &s->first, *b = &s->last;
    uint64_t pairs = b->pairs_seen - a->pairs_seen, fusable = b->pairs_fusable - a->pairs_fusable;
    struct json_object *o = json_object_new_object(), *reasons = json_object_new_object();
    struct json_object *layers = json_object_new_array();
    json_object_object_add(o, "trace", json_object_new_string(t->name));
    json_object_object_add(o, "model", json_object_new_string(t->model));
    json_object_object_add(o, "source", json_object_new_string(t->source));
    json_object_object_add(o, "operations", json_object_new_int64((int64_t)t->n_ops));
    json_object_object_add(o, "pairs", json_object_new_int64((int64_t)pairs));
    json_object_object_add(o, "fusable", json_object_new_int64((int64_t)fusable));
    json_object_object_add(o, "fusable_fraction",
                           json_object_new_double(pairs ? (double)fusable / (double)pairs : 0));
    for (int i = 1; i < CONVBN_COUNTERS_REASONS; i++) {
        uint64_t n = b->not_fusable[i] - a->not_fusable[i];
        if (n)
            json_object_object_add(reasons, verdict(s, i), json_object_new_int64((int64_t)n));
    }
    json_object_object_add(o, "not_fusable", reasons);
    json_object_object_add(o, "bytes_saved_per_iteration",
                           json_object_new_int64((int64_t)(b->bytes_saveable - a->bytes_saveable)));
    for (size_t i = 0; i < s->n_layers; i++)
        json_object_array_add(layers, json_layer(s, i));
    json_object_object_add(o, "layers", layers);
    return o;
}

int summary_run(struct bench_replay *r, const struct shim_api *shim, FILE *out, FILE *csv,
                struct json_object *json_traces)
{
    struct summary s = {.r = r, .shim = shim};
    size_t n_bn = 0;
    for (size_t i = 0; i < r->trace->n_ops; i++)
        n_bn += r->trace->ops[i].kind == TRACE_BN_INFERENCE;
    for (int i = 0; i < TRACE_MAX_STREAMS; i++)
        s.last_conv[i] = -1;
    s.cap = n_bn + 1;
    if (!(s.layers = calloc(s.cap, sizeof *s.layers)))
        return replay_fail(r, NULL, "out of memory for %zu layers", n_bn);
    if (shim_set_mode(shim, "observe")) {
        free(s.layers);
        return replay_fail(r, NULL, "convbn_set_mode refused \"observe\"");
    }
    shim_counters(shim, &s.first);
    s.last = s.first;
    int rc = replay_run(r, BENCH_BASELINE, NULL, NULL, NULL, observe, &s);
    shim_set_mode(shim, "off");
    if (rc == 0) {
        print_summary(out, &s);
        if (csv)
            write_csv(csv, &s);
        if (json_traces)
            json_object_array_add(json_traces, summary_json(&s));
    }
    free(s.layers);
    return rc;
}
