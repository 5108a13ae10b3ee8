/* The output check: every pair is replayed alone in each mode from the same inputs
 * (refilled before each run, see refill_inputs) and its BN output is compared with the
 * baseline's, element by element, as |out - ref| / max(1, |ref|) (equal values, NaN with
 * NaN included, agree).  Each pair is thus judged on its own output, not on errors
 * carried in from earlier layers.  Owns two host copies of one pair output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

double check_tolerance(enum trace_type type)
{
    return type == TRACE_HALF ? 1e-2 : type == TRACE_BFLOAT16 ? 5e-2 : 1e-4;
}

static double max_rel_error(const void *out, const void *ref, enum trace_type type, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double a = data_get(out, type, i), b = data_get(ref, type, i);
        double e = a == b || (isnan(a) && isnan(b))  ? 0
                   : isnan(a) || isnan(b) || isinf(b) ? INFINITY
                                                      : fabs(a - b) / fmax(1.0, fabs(b));
        worst = fmax(worst, e);
    }
    return worst;
}

/* Gives pair p its inputs: fresh values (salt p + 1) for the conv's x and y and the BN's
 * output, and the initial values (salt 0, those deploy folded) for the weights and BN
 * parameters, which a recorded trace may share with activations that another operation
 * overwrote (freed memory handed out again). */
static int refill_inputs(struct bench_replay *r, size_t p)
{
    const struct trace_op *conv = &r->trace->ops[r->pairs[p].conv];
    const struct trace_op *bn = &r->trace->ops[r->pairs[p].bn];
    int fresh[] = {conv->t[TRACE_IN].buf, conv->t[TRACE_OUT].buf, bn->t[TRACE_OUT].buf};
    int initial[] = {conv->w.buf, bn->bn_buf[TRACE_BN_SCALE], bn->bn_buf[TRACE_BN_BIAS],
                     bn->bn_buf[TRACE_BN_MEAN], bn->bn_buf[TRACE_BN_VAR],
                     conv->kind == TRACE_CONV_BIAS_ACT ? conv->t[TRACE_AUX].buf : TRACE_NO_BUF};
    for (size_t i = 0; i < sizeof initial / sizeof initial[0]; i++)
        if (buffers_refill(r, initial[i], 0))
            return -1;
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++)
        if (buffers_refill(r, fresh[i], p + 1))
            return -1;
    return 0;
}

/* Runs pair p in mode from its inputs and copies its output into host. */
static int run_one(struct bench_replay *r, const struct shim_api *shim, size_t p,
                   enum bench_mode mode, void *host, size_t bytes)
{
    const struct trace_op *bn = &r->trace->ops[r->pairs[p].bn];
    if (shim_set_mode(shim, mode == BENCH_SHIM ? "fuse" : "off"))
        return replay_fail(r, NULL, "convbn_set_mode refused a mode");
    if (refill_inputs(r, p) || replay_pair(r, p, mode))
        return -1;
    if (cudaMemcpy(host, replay_ptr(r, bn->t[TRACE_OUT].buf), bytes, cudaMemcpyDeviceToHost) !=
        cudaSuccess)
        return replay_fail(r, bn, "cudaMemcpy of the pair's output failed");
    return 0;
}

static int check_pair(struct bench_replay *r, const struct shim_api *shim, size_t p,
                      void *ref, void *out, struct bench_check *c)
{
    const struct trace_tensor *z = &r->trace->ops[r->pairs[p].bn].t[TRACE_OUT];
    size_t bytes = trace_tensor_bytes(z), n = bytes / trace_type_size(z->type);
    if (z->buf == TRACE_NO_BUF)
        return 0;
    if (run_one(r, shim, p, BENCH_BASELINE, ref, bytes))
        return -1;
    for (int m = BENCH_SHIM; m < BENCH_MODES; m++) {
        if (m == BENCH_SHIM && !shim->set_mode)
            continue;
        if (run_one(r, shim, p, (enum bench_mode)m, out, bytes))
            return -1;
        double e = max_rel_error(out, ref, z->type, n);
        double *sig = &c->sig_err[m][r->pairs[p].sig];
        *sig = fmax(*sig, e);
        c->max_err[m] = fmax(c->max_err[m], e);
        c->failures += !(e <= check_tolerance(z->type));
    }
    c->pairs_checked++;
    return 0;
}

int check_pairs(struct bench_replay *r, const struct shim_api *shim, struct bench_check *c)
{
    size_t most = 1;
    memset(c, 0, sizeof *c);
    for (size_t p = 0; p < r->n_pairs; p++) {
        size_t bytes = trace_tensor_bytes(&r->trace->ops[r->pairs[p].bn].t[TRACE_OUT]);
        most = bytes > most ? bytes : most;
    }
    void *ref = malloc(most), *out = malloc(most);
    int rc = ref && out ? 0 : replay_fail(r, NULL, "out of memory for pair outputs");
    for (int m = 0; rc == 0 && m < BENCH_MODES; m++)
        if (!(c->sig_err[m] = calloc(r->n_sigs ? r->n_sigs : 1, sizeof(double))))
            rc = replay_fail(r, NULL, "out of memory");
    for (size_t p = 0; rc == 0 && p < r->n_pairs; p++)
        rc = check_pair(r, shim, p, ref, out, c);
    free(ref);
    free(out);
    return rc;
}

void check_free(struct bench_check *c)
{
    for (int m = 0; m < BENCH_MODES; m++)
        free(c->sig_err[m]);
    memset(c, 0, sizeof *c);
}
