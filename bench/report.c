/* The reports of a measurement: the table on stdout (one row per pair signature, then all
 * pairs and the whole trace), CSV rows and a JSON object per trace.  Times are medians over
 * the iterations in milliseconds per replay of the trace (a signature's time sums its
 * pairs); min and max go to CSV and JSON.  "Bytes saved" is the activation traffic a
 * fusion removes per replay: twice the conv output bytes of each foldable pair.  Owns
 * nothing. */
#include <math.h>
#include <string.h>

#include "bench.h"

#define MIN_LABEL 33 /* the column's heading */

static const char *human_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

static int label_width(const struct bench_replay *r)
{
    int w = MIN_LABEL;
    for (size_t g = 0; g < r->n_sigs; g++)
        if ((int)strlen(r->sigs[g].label) > w)
            w = (int)strlen(r->sigs[g].label);
    return w;
}

/* One table row: name, pair count, the three medians, the two ratios, bytes saved. */
static void row(FILE *out, int width, const char *index, const char *name, size_t count,
                const struct bench_stat *st, int have_shim, uint64_t bytes)
{
    char b[32], shim[16] = "-", sd[16] = "-", sb[16] = "-";
    double to_deploy = ratio(st[BENCH_SHIM].median, st[BENCH_DEPLOY].median);
    double to_base = ratio(st[BENCH_SHIM].median, st[BENCH_BASELINE].median);
    if (have_shim) {
        snprintf(shim, sizeof shim, "%.3f", st[BENCH_SHIM].median);
        if (isfinite(to_deploy))
            snprintf(sd, sizeof sd, "%.3f", to_deploy);
        if (isfinite(to_base))
            snprintf(sb, sizeof sb, "%.3f", to_base);
    }
    fprintf(out, "%4s %6zu  %-*s %10.3f %10s %10.3f %11s %10s %12s\n", index, count, width,
            name, st[BENCH_BASELINE].median, shim, st[BENCH_DEPLOY].median, sd, sb,
            human_bytes(bytes, b, sizeof b));
}

static void table_rows(FILE *out, const struct bench_replay *r, const struct bench_result *res)
{
    int width = label_width(r);
    uint64_t total_bytes = 0;
    fprintf(out, "%4s %6s  %-*s %10s %10s %10s %11s %10s %12s\n", "sig", "pairs", width,
            "conv (x > y, kernel, stride, ...)", "baseline", "shim", "deploy", "shim/deploy",
            "shim/base", "bytes saved");
    for (size_t g = 0; g < r->n_sigs; g++) {
        struct bench_stat st[BENCH_MODES];
        char index[24];
        for (int m = 0; m < BENCH_MODES; m++)
            st[m] = res->sig[m] ? res->sig[m][g] : (struct bench_stat){0, 0, 0};
        snprintf(index, sizeof index, "%zu", g + 1);
        row(out, width, index, r->sigs[g].label, r->sigs[g].count, st, res->have_shim,
            r->sigs[g].bytes_saved);
        total_bytes += r->sigs[g].bytes_saved;
    }
    row(out, width, "", "all pairs", r->n_pairs, res->pairs, res->have_shim, total_bytes);
    row(out, width, "", "whole trace (every operation)", r->n_pairs, res->total, res->have_shim,
        total_bytes);
}

static void spread(FILE *out, const char *what, const struct bench_stat *st, int have_shim)
{
    fprintf(out, "  %-12s baseline %.3f..%.3f", what, st[BENCH_BASELINE].min,
            st[BENCH_BASELINE].max);
    if (have_shim)
        fprintf(out, "  shim %.3f..%.3f", st[BENCH_SHIM].min, st[BENCH_SHIM].max);
    fprintf(out, "  deploy %.3f..%.3f ms\n", st[BENCH_DEPLOY].min, st[BENCH_DEPLOY].max);
}

/* Names the signatures whose worst error in mode m is beyond the tolerance of their type. */
static void check_failures(FILE *out, const struct bench_replay *r, const struct bench_result *res,
                           enum bench_mode m)
{
    for (size_t g = 0; g < r->n_sigs; g++) {
        const struct trace_op *bn = &r->trace->ops[r->pairs[r->sigs[g].first].bn];
        double e = res->check.sig_err[m][g];
        if (!(e <= check_tolerance(bn->t[TRACE_OUT].type)))
            fprintf(out, "check: signature %zu (%s): %s max rel error %.3g\n", g + 1,
                    r->sigs[g].label, bench_mode_name(m), e);
    }
}

static void check_line(FILE *out, const struct bench_replay *r, const struct bench_result *res)
{
    const struct bench_check *c = &res->check;
    fprintf(out, "check: %zu pairs, each output compared with its baseline output: max rel error",
            c->pairs_checked);
    if (res->have_shim)
        fprintf(out, " shim %.3g,", c->max_err[BENCH_SHIM]);
    fprintf(out, " deploy %.3g (tolerance float 1e-4, half 1e-2, bfloat16 5e-2): %s\n",
            c->max_err[BENCH_DEPLOY],
            c->failures ? "FAILED" : "ok");
    if (res->have_shim)
        check_failures(out, r, res, BENCH_SHIM);
    check_failures(out, r, res, BENCH_DEPLOY);
}

void report_table(FILE *out, const struct bench_replay *r, const struct bench_result *res,
                  const struct bench_clock *clk)
{
    const struct trace *t = r->trace;
    fprintf(out, "\n%s: %s%s%s trace, %zu operations, %zu conv->BN pairs in %zu signatures\n",
            t->name, t->model[0] ? t->model : "", t->model[0] ? ", " : "", t->source, t->n_ops,
            r->n_pairs, r->n_sigs);
    fprintf(out, "timing: %s; ms per replay, median of %d iteration%s\n", clk->label,
            res->iterations, res->iterations == 1 ? "" : "s");
    table_rows(out, r, res);
    fprintf(out, "min..max over the iterations:\n");
    spread(out, "all pairs", res->pairs, res->have_shim);
    spread(out, "whole trace", res->total, res->have_shim);
    if (res->have_shim)
        fprintf(out, "shim: fused %.0f of %zu pairs per replay\n", res->fused_per_iteration,
                r->n_pairs);
    else
        fprintf(out, "shim: not preloaded (--no-shim): baseline and deploy only\n");
    check_line(out, r, res);
}

void report_csv_text(FILE *csv, const char *s)
{
    fputc('"', csv);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', csv);
        fputc(*s, csv);
    }
    fputc('"', csv);
}

void report_csv_header(FILE *csv)
{
    fprintf(csv, "trace,signature,label,pairs");
    for (int m = 0; m < BENCH_MODES; m++)
        fprintf(csv, ",%s_ms,%s_min_ms,%s_max_ms", bench_mode_name((enum bench_mode)m),
                bench_mode_name((enum bench_mode)m), bench_mode_name((enum bench_mode)m));
    fprintf(csv, ",shim_over_deploy,shim_over_baseline,bytes_saved,max_rel_error_shim,"
                 "max_rel_error_deploy\n");
}

/* Writes ",v" (printf format fmt), or "," when v is absent or not finite. */
static void csv_number(FILE *csv, int have, double v, const char *fmt)
{
    fputc(',', csv);
    if (have && isfinite(v))
        fprintf(csv, fmt, v);
}

static void csv_row(FILE *csv, const struct bench_replay *r, const char *sig, const char *label,
                    size_t count, const struct bench_stat *st, int have_shim, uint64_t bytes,
                    const double *err)
{
    report_csv_text(csv, r->trace->name);
    fprintf(csv, ",%s,", sig);
    report_csv_text(csv, label);
    fprintf(csv, ",%zu", count);
    for (int m = 0; m < BENCH_MODES; m++) {
        int have = m != BENCH_SHIM || have_shim;
        csv_number(csv, have, st[m].median, "%.6f");
        csv_number(csv, have, st[m].min, "%.6f");
        csv_number(csv, have, st[m].max, "%.6f");
    }
    csv_number(csv, have_shim, ratio(st[BENCH_SHIM].median, st[BENCH_DEPLOY].median), "%.6f");
    csv_number(csv, have_shim, ratio(st[BENCH_SHIM].median, st[BENCH_BASELINE].median), "%.6f");
    fprintf(csv, ",%llu", (unsigned long long)bytes);
    csv_number(csv, err && have_shim, err ? err[BENCH_SHIM] : 0, "%.3g");
    csv_number(csv, err != NULL, err ? err[BENCH_DEPLOY] : 0, "%.3g");
    fputc('\n', csv);
}

void report_csv(FILE *csv, const struct bench_replay *r, const struct bench_result *res)
{
    uint64_t total_bytes = 0;
    for (size_t g = 0; g < r->n_sigs; g++) {
        struct bench_stat st[BENCH_MODES] = {{0, 0, 0}};
        double err[BENCH_MODES] = {0};
        char index[24];
        for (int m = 0; m < BENCH_MODES; m++) {
            if (res->sig[m])
                st[m] = res->sig[m][g];
            err[m] = res->check.sig_err[m] ? res->check.sig_err[m][g] : 0;
        }
        snprintf(index, sizeof index, "%zu", g + 1);
        csv_row(csv, r, index, r->sigs[g].label, r->sigs[g].count, st, res->have_shim,
                r->sigs[g].bytes_saved, err);
        total_bytes += r->sigs[g].bytes_saved;
    }
    csv_row(csv, r, "pairs", "all pairs", r->n_pairs, res->pairs, res->have_shim, total_bytes,
            res->check.max_err);
    csv_row(csv, r, "trace", "whole trace", r->n_pairs, res->total, res->have_shim, total_bytes,
            NULL);
}

void report_json_dims(struct json_object *obj, const char *key, const int *dims, int n)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int(dims[i]));
    json_object_object_add(obj, key, a);
}

/* A JSON number, or null for a value JSON cannot hold (NaN, infinity). */
static struct json_object *json_number(double v)
{
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

static struct json_object *json_stat(const struct bench_stat *st)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "median_ms", json_number(st->median));
    json_object_object_add(o, "min_ms", json_number(st->min));
    json_object_object_add(o, "max_ms", json_number(st->max));
    return o;
}

/* A number measured in shim mode: null without the shim. */
static struct json_object *shim_number(int have_shim, double v)
{
    return have_shim ? json_number(v) : NULL;
}

/* {"baseline": {...}, "shim": {...} or null, "deploy": {...}, ratios} */
static void json_modes(struct json_object *o, const struct bench_stat *st, int have_shim)
{
    double shim = st[BENCH_SHIM].median;
    for (int m = 0; m < BENCH_MODES; m++)
        json_object_object_add(o, bench_mode_name((enum bench_mode)m),
                               m == BENCH_SHIM && !have_shim ? NULL : json_stat(&st[m]));
    json_object_object_add(o, "shim_over_deploy",
                           shim_number(have_shim, ratio(shim, st[BENCH_DEPLOY].median)));
    json_object_object_add(o, "shim_over_baseline",
                           shim_number(have_shim, ratio(shim, st[BENCH_BASELINE].median)));
}

static struct json_object *json_signature(const struct bench_replay *r,
                                          const struct bench_result *res, size_t g)
{
    const struct bench_signature *sig = &r->sigs[g];
    const struct trace_op *conv = &r->trace->ops[r->pairs[sig->first].conv];
    struct json_object *o = json_object_new_object();
    struct bench_stat st[BENCH_MODES] = {{0, 0, 0}};
    for (int m = 0; m < BENCH_MODES; m++)
        if (res->sig[m])
            st[m] = res->sig[m][g];
    json_object_object_add(o, "signature", json_object_new_int64((int64_t)g + 1));
    json_object_object_add(o, "label", json_object_new_string(sig->label));
    json_object_object_add(o, "pairs", json_object_new_int64((int64_t)sig->count));
    report_json_dims(o, "x", conv->t[TRACE_IN].dims, conv->t[TRACE_IN].nb_dims);
    report_json_dims(o, "w", conv->w.dims, conv->w.nb_dims);
    report_json_dims(o, "y", conv->t[TRACE_OUT].dims, conv->t[TRACE_OUT].nb_dims);
    const char *type = trace_type_name(conv->t[TRACE_OUT].type);
    json_object_object_add(o, "type", json_object_new_string(type));
    json_modes(o, st, res->have_shim);
    json_object_object_add(o, "bytes_saved", json_object_new_int64((int64_t)sig->bytes_saved));
    json_object_object_add(o, "max_rel_error_shim",
                           shim_number(res->have_shim, res->check.sig_err[BENCH_SHIM][g]));
    json_object_object_add(o, "max_rel_error_deploy",
                           json_number(res->check.sig_err[BENCH_DEPLOY][g]));
    return o;
}

static struct json_object *json_check(const struct bench_result *res)
{
    const struct bench_check *c = &res->check;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "pairs", json_object_new_int64((int64_t)c->pairs_checked));
    json_object_object_add(o, "failures", json_object_new_int64((int64_t)c->failures));
    json_object_object_add(o, "max_rel_error_shim",
                           shim_number(res->have_shim, c->max_err[BENCH_SHIM]));
    json_object_object_add(o, "max_rel_error_deploy",
                           json_number(c->max_err[BENCH_DEPLOY]));
    json_object_object_add(o, "ok", json_object_new_boolean(c->failures == 0));
    return o;
}

struct json_object *report_json(const struct bench_replay *r, const struct bench_result *res)
{
    const struct trace *t = r->trace;
    struct json_object *o = json_object_new_object(), *sigs = json_object_new_array();
    struct json_object *pairs = json_object_new_object(), *whole = json_object_new_object();
    uint64_t bytes = 0;
    json_object_object_add(o, "trace", json_object_new_string(t->name));
    json_object_object_add(o, "model", json_object_new_string(t->model));
    json_object_object_add(o, "source", json_object_new_string(t->source));
    json_object_object_add(o, "operations", json_object_new_int64((int64_t)t->n_ops));
    json_object_object_add(o, "pairs", json_object_new_int64((int64_t)r->n_pairs));
    json_object_object_add(o, "iterations", json_object_new_int(res->iterations));
    json_object_object_add(o, "shim_fused_per_replay",
                           shim_number(res->have_shim, res->fused_per_iteration));
    for (size_t g = 0; g < r->n_sigs; g++) {
        json_object_array_add(sigs, json_signature(r, res, g));
        bytes += r->sigs[g].bytes_saved;
    }
    json_object_object_add(o, "signatures", sigs);
    json_modes(pairs, res->pairs, res->have_shim);
    json_object_object_add(pairs, "bytes_saved", json_object_new_int64((int64_t)bytes));
    json_object_object_add(o, "all_pairs", pairs);
    json_modes(whole, res->total, res->have_shim);
    json_object_object_add(o, "whole_trace", whole);
    json_object_object_add(o, "check", json_check(res));
    return o;
}
