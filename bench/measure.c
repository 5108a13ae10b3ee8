/* The measurement loop: checks every pair's output in each mode, warms up, then times
 * `iterations` iterations, each replaying the whole trace once per mode.  The order of the
 * modes rotates from one iteration to the next, so drift (clocks, caches, other load) hits
 * all of them alike.  Keeps per-signature sums per iteration and reduces them to median,
 * min and max.  Owns the series it allocates until they are reduced. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct bench_stat measure_stat(double *values, size_t n)
{
    qsort(values, n, sizeof *values, compare_doubles);
    double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    return (struct bench_stat){median, values[0], values[n - 1]};
}

/* Timings of every iteration: [mode][iteration] and [mode][signature * n + iteration]. */
struct series {
    double *total[BENCH_MODES], *pairs[BENCH_MODES], *sig[BENCH_MODES];
    double *pair_ms;
};

static void free_series(struct series *s)
{
    for (int m = 0; m < BENCH_MODES; m++) {
        free(s->total[m]);
        free(s->pairs[m]);
        free(s->sig[m]);
    }
    free(s->pair_ms);
}

static int alloc_series(struct series *s, const struct bench_replay *r, size_t n)
{
    memset(s, 0, sizeof *s);
    s->pair_ms = calloc(r->n_pairs + 1, sizeof(double));
    int ok = s->pair_ms != NULL;
    for (int m = 0; m < BENCH_MODES; m++) {
        s->total[m] = calloc(n, sizeof(double));
        s->pairs[m] = calloc(n, sizeof(double));
        s->sig[m] = calloc((r->n_sigs + 1) * n, sizeof(double));
        ok = ok && s->total[m] && s->pairs[m] && s->sig[m];
    }
    return ok ? 0 : -1;
}

/* Replays once in mode; stores the timings at iteration it (it < 0: warm-up, not kept). */
static int timed_replay(struct bench_replay *r, const struct shim_api *shim,
                        struct bench_clock *clk, enum bench_mode m, long it, size_t n,
                        struct series *s, uint64_t *fused)
{
    struct convbn_counters before, after;
    double total = 0;
    if (shim_set_mode(shim, m == BENCH_SHIM ? "fuse" : "off"))
        return replay_fail(r, NULL, "convbn_set_mode refused a mode");
    shim_counters(shim, &before);
    if (replay_run(r, m, clk, s->pair_ms, &total, NULL, NULL))
        return -1;
    shim_counters(shim, &after);
    if (it < 0)
        return 0;
    if (m == BENCH_SHIM)
        *fused += after.pairs_fused - before.pairs_fused;
    s->total[m][it] = total;
    for (size_t p = 0; p < r->n_pairs; p++) {
        s->pairs[m][it] += s->pair_ms[p];
        s->sig[m][r->pairs[p].sig * n + (size_t)it] += s->pair_ms[p];
    }
    return 0;
}

static int reduce(const struct bench_replay *r, struct series *s, size_t n, int m,
                  struct bench_result *out)
{
    out->total[m] = measure_stat(s->total[m], n);
    out->pairs[m] = measure_stat(s->pairs[m], n);
    if (!(out->sig[m] = calloc(r->n_sigs + 1, sizeof *out->sig[m])))
        return -1;
    for (size_t g = 0; g < r->n_sigs; g++)
        out->sig[m][g] = measure_stat(s->sig[m] + g * n, n);
    return 0;
}

static int iterate(struct bench_replay *r, const struct shim_api *shim,
                   const struct bench_options *opt, struct bench_clock *clk, struct series *s,
                   const enum bench_mode *modes, int n_modes, uint64_t *fused)
{
    size_t n = (size_t)opt->iterations;
    for (long it = -opt->warmup; it < (long)n; it++)
        for (int j = 0; j < n_modes; j++) {
            enum bench_mode m = modes[(size_t)(it + opt->warmup + j) % (size_t)n_modes];
            if (timed_replay(r, shim, clk, m, it, n, s, fused))
                return -1;
            progress_step();
        }
    return shim_set_mode(shim, "off");
}

int measure_run(struct bench_replay *r, const struct shim_api *shim,
                const struct bench_options *opt, struct bench_clock *clk,
                struct bench_result *out)
{
    enum bench_mode modes[BENCH_MODES];
    int n_modes = 0;
    size_t n = (size_t)opt->iterations;
    uint64_t fused = 0;
    struct series s;
    memset(out, 0, sizeof *out);
    out->iterations = opt->iterations;
    out->have_shim = shim->set_mode != NULL;
    modes[n_modes++] = BENCH_BASELINE;
    if (out->have_shim)
        modes[n_modes++] = BENCH_SHIM;
    modes[n_modes++] = BENCH_DEPLOY;
    if (clock_reserve(clk, 2 * r->n_pairs + 2))
        return replay_fail(r, NULL, "cannot prepare %zu timing marks", 2 * r->n_pairs + 2);
    if (alloc_series(&s, r, n)) {
        free_series(&s);
        return replay_fail(r, NULL, "out of memory for %zu iterations", n);
    }
    progress_begin(r->trace->name, 1 + (size_t)(opt->warmup + opt->iterations) * (size_t)n_modes);
    int rc = check_pairs(r, shim, &out->check);
    progress_step();
    rc = rc || iterate(r, shim, opt, clk, &s, modes, n_modes, &fused);
    progress_end();
    for (int j = 0; !rc && j < n_modes; j++)
        rc = reduce(r, &s, n, modes[j], out) ? replay_fail(r, NULL, "out of memory") : 0;
    out->fused_per_iteration = (double)fused / (double)n;
    free_series(&s);
    return rc ? -1 : 0;
}

void measure_free(struct bench_result *res)
{
    for (int m = 0; m < BENCH_MODES; m++)
        free(res->sig[m]);
    check_free(&res->check);
    memset(res, 0, sizeof *res);
}
