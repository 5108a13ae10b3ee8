/* The replay's device buffers: one per buffer id of the trace, as large as the largest
 * extent any operand gives it, filled with seeded random values whose range follows the
 * buffer's role (weights scaled by their fan-in, BN variance positive, activations in
 * [-1, 1); never zeros).  Owns those allocations. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"

/* Roles in increasing priority: a buffer with several keeps the range of the highest. */
enum role { ROLE_DATA, ROLE_PARAM, ROLE_WEIGHT, ROLE_POSITIVE };

#define MIN_ALLOC 256

static void use(struct bench_buffer *b, size_t bytes, enum trace_type type, enum role role,
                float lo, float hi)
{
    if (b->bytes == 0)
        b->type = type;
    if (bytes > b->bytes)
        b->bytes = bytes;
    if ((int)role > b->role) {
        b->role = (int)role;
        b->lo = lo;
        b->hi = hi;
    }
}

static void use_tensor(struct bench_replay *r, const struct trace_tensor *t, enum role role,
                       float lo, float hi)
{
    if (t->nb_dims && t->buf != TRACE_NO_BUF)
        use(&r->bufs[t->buf], trace_tensor_bytes(t), t->type, role, lo, hi);
}

static void use_filter(struct bench_replay *r, const struct trace_filter *w)
{
    double fan_in = 1;
    for (int i = 1; i < w->nb_dims; i++)
        fan_in *= w->dims[i];
    float bound = (float)(1 / sqrt(fan_in));
    if (w->nb_dims && w->buf != TRACE_NO_BUF)
        use(&r->bufs[w->buf], trace_filter_bytes(w), w->type, ROLE_WEIGHT, -bound, bound);
}

/* The BN parameter buffers of op, sized and typed by its params tensor. */
static void use_bn_buffers(struct bench_replay *r, const struct trace_op *op)
{
    static const struct { enum role role; float lo, hi; } forward[TRACE_BN_BUFS] = {
        [TRACE_BN_SCALE] = {ROLE_PARAM, 0.5f, 1.5f},
        [TRACE_BN_BIAS] = {ROLE_PARAM, -0.5f, 0.5f},
        [TRACE_BN_MEAN] = {ROLE_PARAM, -0.2f, 0.2f},
        [TRACE_BN_VAR] = {ROLE_POSITIVE, 0.5f, 1.5f},
        [TRACE_BN_SAVED_MEAN] = {ROLE_PARAM, -0.2f, 0.2f},
        [TRACE_BN_SAVED_INV_VAR] = {ROLE_POSITIVE, 0.5f, 1.5f}};
    int backward = op->kind == TRACE_BN_BACKWARD;
    const struct trace_tensor *params = &op->t[backward ? TRACE_AUX2 : TRACE_AUX];
    for (int i = 0; i < TRACE_BN_BUFS; i++) {
        int buf = op->bn_buf[i];
        int output = backward && (i == TRACE_BN_DSCALE || i == TRACE_BN_DBIAS);
        if (buf != TRACE_NO_BUF)
            use(&r->bufs[buf], trace_tensor_bytes(params), params->type,
                output ? ROLE_DATA : forward[i].role, output ? -1.0f : forward[i].lo,
                output ? 1.0f : forward[i].hi);
    }
}

static void plan(struct bench_replay *r)
{
    const struct trace *t = r->trace;
    for (int i = 0; i < t->n_buffers; i++)
        r->bufs[i] = (struct bench_buffer){.lo = -1, .hi = 1, .role = ROLE_DATA};
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        for (int s = 0; s < TRACE_SLOTS; s++) {
            int conv_bias = op->kind == TRACE_CONV_BIAS_ACT && s == TRACE_AUX;
            use_tensor(r, &op->t[s], conv_bias ? ROLE_PARAM : ROLE_DATA, conv_bias ? -0.5f : -1,
                       conv_bias ? 0.5f : 1);
        }
        use_filter(r, &op->w);
        if (op->kind == TRACE_BN_INFERENCE || op->kind == TRACE_BN_TRAINING ||
            op->kind == TRACE_BN_BACKWARD)
            use_bn_buffers(r, op);
    }
}

static int check_memory(struct bench_replay *r)
{
    size_t need = 0, free_bytes = 0, total = 0;
    for (int i = 0; i < r->trace->n_buffers; i++) {
        size_t bytes = r->bufs[i].bytes < MIN_ALLOC ? MIN_ALLOC : r->bufs[i].bytes;
        if (__builtin_add_overflow(need, bytes, &need))
            need = SIZE_MAX;
    }
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess)
        return replay_fail(r, NULL, "cudaMemGetInfo failed");
    if (need > free_bytes)
        return replay_fail(r, NULL, "the trace needs %.1f MiB of device memory for its buffers; "
                           "%.1f MiB are free", need / 1048576.0, free_bytes / 1048576.0);
    return 0;
}

static int allocate(struct bench_replay *r, void **dev, size_t bytes)
{
    if (cudaMalloc(dev, bytes < MIN_ALLOC ? MIN_ALLOC : bytes) != cudaSuccess) {
        *dev = NULL;
        return replay_fail(r, NULL, "cudaMalloc of %zu bytes failed", bytes);
    }
    return 0;
}

int buffers_open(struct bench_replay *r)
{
    int n = r->trace->n_buffers;
    if (!(r->bufs = calloc(n ? (size_t)n : 1, sizeof *r->bufs)))
        return replay_fail(r, NULL, "out of memory for %d buffers", n);
    plan(r);
    if (check_memory(r))
        return -1;
    for (int i = 0; i < n; i++)
        if (allocate(r, &r->bufs[i].dev, r->bufs[i].bytes) || buffers_refill(r, i, 0))
            return -1;
    return 0;
}

int buffers_refill(struct bench_replay *r, int buf, uint64_t salt)
{
    if (buf == TRACE_NO_BUF)
        return 0;
    struct bench_buffer *b = &r->bufs[buf];
    if (data_fill(b->dev, b->bytes, b->type, b->lo, b->hi,
                  data_seed(data_seed(r->seed, (uint64_t)buf), salt)))
        return replay_fail(r, NULL, "cudaMemcpy into buffer %d failed", buf);
    return 0;
}

void buffers_close(struct bench_replay *r)
{
    for (int i = 0; r->bufs && i < r->trace->n_buffers; i++)
        if (r->bufs[i].dev)
            cudaFree(r->bufs[i].dev);
    free(r->bufs);
    r->bufs = NULL;
}
