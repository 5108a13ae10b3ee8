/* Replay of one prepared trace: issues each operation through the real cuDNN API (the
 * shim, when preloaded, sees ordinary calls) on its stream, in trace order, in one of the
 * bench's modes, and marks pairs and the whole replay on the clock.  `opaque` operations
 * become a cudaEventRecord on their stream: GPU work the shim must flush for, without
 * synchronising; the same event ends every replay, so that work the shim deferred is timed
 * in the replay that issued it.  Backend-API ops (`api` backend) replay through the legacy
 * call of their kind: algo -1 reads as 0, and a BN whose var holds an inverse std
 * (`var_form` inv_std) runs as a legacy BN on the same buffers (right for timing, not for
 * values; docs/trace-schema.md).  Owns the handle, streams and workspace of struct bench_replay and the
 * order in which the other modules prepare and release it. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const char *bench_mode_name(enum bench_mode mode)
{
    static const char *const names[] = {"baseline", "shim", "deploy"};
    return names[mode];
}

int replay_fail(struct bench_replay *r, const struct trace_op *op, const char *fmt, ...)
{
    int n = op ? snprintf(r->err, sizeof r->err, "%s:%u: ", r->trace->name, op->line)
               : snprintf(r->err, sizeof r->err, "%s: ", r->trace->name);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof r->err)
        vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

void *replay_ptr(const struct bench_replay *r, int buf)
{
    return buf == TRACE_NO_BUF ? NULL : r->bufs[buf].dev;
}

static int open_streams(struct bench_replay *r)
{
    for (size_t i = 0; i < r->trace->n_ops; i++) {
        int s = r->trace->ops[i].stream;
        if (s != 0 && !r->streams[s] && cudaStreamCreate(&r->streams[s]) != cudaSuccess)
            return replay_fail(r, &r->trace->ops[i], "cudaStreamCreate failed");
    }
    if (cudaEventCreateWithFlags(&r->flush_event, cudaEventDisableTiming) != cudaSuccess)
        return replay_fail(r, NULL, "cudaEventCreate failed");
    return 0;
}

int replay_open(struct bench_replay *r, const struct trace *t, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->trace = t;
    r->seed = seed;
    CUDNN_TRY(r, NULL, cudnnCreate, &r->handle);
    if (open_streams(r) || descs_open(r) || buffers_open(r) || pairs_find(r) || deploy_open(r))
        return -1;
    if (r->workspace_bytes && cudaMalloc(&r->workspace, r->workspace_bytes) != cudaSuccess)
        return replay_fail(r, NULL, "cudaMalloc of %zu workspace bytes failed", r->workspace_bytes);
    return 0;
}

void replay_close(struct bench_replay *r)
{
    deploy_close(r);
    pairs_close(r);
    descs_close(r);
    buffers_close(r);
    if (r->workspace)
        cudaFree(r->workspace);
    if (r->flush_event)
        cudaEventDestroy(r->flush_event);
    for (int s = 0; s < TRACE_MAX_STREAMS; s++)
        if (r->streams[s])
            cudaStreamDestroy(r->streams[s]);
    if (r->handle)
        cudnnDestroy(r->handle);
    memset(r, 0, sizeof *r);
}

/* Scaling factors are double for double data and float otherwise (cuDNN's rule). */
union scalar {
    float f;
    double d;
};

static const void *scalar(union scalar *s, double v, enum trace_type data)
{
    if (data == TRACE_DOUBLE) {
        s->d = v;
        return &s->d;
    }
    s->f = (float)v;
    return &s->f;
}

static void *in_ptr(const struct bench_replay *r, const struct trace_op *op, int slot)
{
    return replay_ptr(r, op->t[slot].buf);
}

static cudnnStatus_t issue_conv(struct bench_replay *r, const struct trace_op *op,
                                const struct op_descs *d)
{
    union scalar a, b;
    enum trace_type t = op->t[TRACE_IN].type;
    const void *alpha = scalar(&a, op->alpha, t), *beta = scalar(&b, op->beta, t);
    void *w = replay_ptr(r, op->w.buf);
    switch (op->kind) {
    case TRACE_CONV_FWD:
        return cudnnConvolutionForward(r->handle, alpha, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN),
                                       d->w, w, d->conv, (cudnnConvolutionFwdAlgo_t)op->algo,
                                       r->workspace, d->workspace, beta, d->t[TRACE_OUT],
                                       in_ptr(r, op, TRACE_OUT));
    case TRACE_CONV_BIAS_ACT:
        beta = scalar(&b, op->alpha2, t);
        return cudnnConvolutionBiasActivationForward(
            r->handle, alpha, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN), d->w, w, d->conv,
            (cudnnConvolutionFwdAlgo_t)op->algo, r->workspace, d->workspace, beta,
            d->t[TRACE_AUX2], in_ptr(r, op, TRACE_AUX2), d->t[TRACE_AUX], in_ptr(r, op, TRACE_AUX),
            d->act, d->t[TRACE_OUT], in_ptr(r, op, TRACE_OUT));
    case TRACE_CONV_BWD_DATA:
        return cudnnConvolutionBackwardData(r->handle, alpha, d->w, w, d->t[TRACE_IN],
                                            in_ptr(r, op, TRACE_IN), d->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)op->algo, r->workspace,
                                            d->workspace, beta, d->t[TRACE_OUT],
                                            in_ptr(r, op, TRACE_OUT));
    default:
        return cudnnConvolutionBackwardFilter(r->handle, alpha, d->t[TRACE_IN],
                                              in_ptr(r, op, TRACE_IN), d->t[TRACE_AUX],
                                              in_ptr(r, op, TRACE_AUX), d->conv,
                                              (cudnnConvolutionBwdFilterAlgo_t)op->algo,
                                              r->workspace, d->workspace, beta, d->w, w);
    }
}

static cudnnStatus_t issue_bn(struct bench_replay *r, const struct trace_op *op,
                              const struct op_descs *d)
{
    union scalar a, b, ap, bp;
    enum trace_type t = op->t[TRACE_IN].type;
    const void *alpha = scalar(&a, op->alpha, t), *beta = scalar(&b, op->beta, t);
    cudnnBatchNormMode_t mode = op->mode == TRACE_BN_SPATIAL ? CUDNN_BATCHNORM_SPATIAL
                                : op->mode == TRACE_BN_SPATIAL_PERSISTENT
                                    ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT
                                    : CUDNN_BATCHNORM_PER_ACTIVATION;
    const int *bb = op->bn_buf;
    if (op->kind == TRACE_BN_INFERENCE)
        return cudnnBatchNormalizationForwardInference(
            r->handle, mode, alpha, beta, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN), d->t[TRACE_OUT],
            in_ptr(r, op, TRACE_OUT), d->t[TRACE_AUX], replay_ptr(r, bb[TRACE_BN_SCALE]),
            replay_ptr(r, bb[TRACE_BN_BIAS]), replay_ptr(r, bb[TRACE_BN_MEAN]),
            replay_ptr(r, bb[TRACE_BN_VAR]), op->eps);
    if (op->kind == TRACE_BN_TRAINING)
        return cudnnBatchNormalizationForwardTraining(
            r->handle, mode, alpha, beta, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN), d->t[TRACE_OUT],
            in_ptr(r, op, TRACE_OUT), d->t[TRACE_AUX], replay_ptr(r, bb[TRACE_BN_SCALE]),
            replay_ptr(r, bb[TRACE_BN_BIAS]), op->factor, replay_ptr(r, bb[TRACE_BN_MEAN]),
            replay_ptr(r, bb[TRACE_BN_VAR]), op->eps, replay_ptr(r, bb[TRACE_BN_SAVED_MEAN]),
            replay_ptr(r, bb[TRACE_BN_SAVED_INV_VAR]));
    return cudnnBatchNormalizationBackward(
        r->handle, mode, alpha, beta, scalar(&ap, op->alpha_param, t),
        scalar(&bp, op->beta_param, t), d->t[TRACE_IN], in_ptr(r, op, TRACE_IN), d->t[TRACE_AUX],
        in_ptr(r, op, TRACE_AUX), d->t[TRACE_OUT], in_ptr(r, op, TRACE_OUT), d->t[TRACE_AUX2],
        replay_ptr(r, bb[TRACE_BN_SCALE]), replay_ptr(r, bb[TRACE_BN_DSCALE]),
        replay_ptr(r, bb[TRACE_BN_DBIAS]), op->eps, replay_ptr(r, bb[TRACE_BN_SAVED_MEAN]),
        replay_ptr(r, bb[TRACE_BN_SAVED_INV_VAR]));
}

static cudnnStatus_t issue_tensor_op(struct bench_replay *r, const struct trace_op *op,
                                     const struct op_descs *d)
{
    union scalar a, a2, b;
    enum trace_type t = op->t[TRACE_OUT].type;
    const void *alpha = scalar(&a, op->alpha, t), *beta = scalar(&b, op->beta, t);
    if (op->kind == TRACE_ADD_TENSOR)
        return cudnnAddTensor(r->handle, alpha, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN), beta,
                              d->t[TRACE_OUT], in_ptr(r, op, TRACE_OUT));
    return cudnnOpTensor(r->handle, d->op, alpha, d->t[TRACE_IN], in_ptr(r, op, TRACE_IN),
                         scalar(&a2, op->alpha2, t), d->t[TRACE_AUX], in_ptr(r, op, TRACE_AUX),
                         beta, d->t[TRACE_OUT], in_ptr(r, op, TRACE_OUT));
}

static int use_stream(struct bench_replay *r, const struct trace_op *op)
{
    if (op->stream != r->current_stream) {
        CUDNN_TRY(r, op, cudnnSetStream, r->handle, r->streams[op->stream]);
        r->current_stream = op->stream;
    }
    return 0;
}

/* Records the flush event on stream for op (NULL: the end of the replay): the shim runs
 * what it deferred there (on every stream for the legacy default stream, NULL) first. */
static int flush(struct bench_replay *r, const struct trace_op *op, cudaStream_t stream)
{
    if (cudaEventRecord(r->flush_event, stream) != cudaSuccess)
        return replay_fail(r, op, "cudaEventRecord failed");
    return 0;
}

/* Issues operation i as the baseline does. */
static int issue(struct bench_replay *r, size_t i)
{
    const struct trace_op *op = &r->trace->ops[i];
    const struct op_descs *d = &r->descs[i];
    cudnnStatus_t st;
    if (use_stream(r, op))
        return -1;
    if (op->kind == TRACE_OPAQUE)
        return flush(r, op, r->streams[op->stream]);
    if (bench_is_conv(op->kind))
        st = issue_conv(r, op, d);
    else if (op->kind == TRACE_ADD_TENSOR || op->kind == TRACE_OP_TENSOR)
        st = issue_tensor_op(r, op, d);
    else
        st = issue_bn(r, op, d);
    if (st != CUDNN_STATUS_SUCCESS)
        return replay_fail(r, op, "%s failed: %s", trace_kind_name(op->kind),
                           cudnnGetErrorString(st));
    return 0;
}

/* Issues operation i as `mode` replays it: in deploy mode a foldable pair's conv is
 * skipped and its BN becomes the folded conv + bias. */
static int issue_in_mode(struct bench_replay *r, size_t i, enum bench_mode mode)
{
    long p = r->pair_of_op[i];
    if (mode != BENCH_DEPLOY || p < 0 || !r->pairs[p].foldable)
        return issue(r, i);
    if (i == r->pairs[p].conv)
        return 0;
    const struct trace_op *op = &r->trace->ops[i];
    if (use_stream(r, op))
        return -1;
    cudnnStatus_t st = deploy_issue(r, (size_t)p);
    if (st != CUDNN_STATUS_SUCCESS)
        return replay_fail(r, op, "deploy conv + bias failed: %s", cudnnGetErrorString(st));
    return 0;
}

int replay_pair(struct bench_replay *r, size_t p, enum bench_mode mode)
{
    return issue_in_mode(r, r->pairs[p].conv, mode) || issue_in_mode(r, r->pairs[p].bn, mode)
               ? -1
               : 0;
}

/* Marks the clock before a pair's conv (after a flush, so that work deferred before the
 * pair is not counted in it) and after its BN; records the marks in start/end. */
static int mark_pair(struct bench_replay *r, struct bench_clock *clk, size_t i, long *start,
                     long *end)
{
    long p = r->pair_of_op[i];
    const struct trace_op *op = &r->trace->ops[i];
    cudaStream_t stream = r->streams[op->stream];
    int is_start = i == r->pairs[p].conv;
    if (is_start && flush(r, op, stream))
        return -1;
    if ((*(is_start ? &start[p] : &end[p]) = clock_mark(clk, stream)) < 0)
        return replay_fail(r, op, "cannot record a timing mark");
    return 0;
}

static int run_ops(struct bench_replay *r, enum bench_mode mode, struct bench_clock *clk,
                   long *start, long *end, replay_observer observer, void *ctx)
{
    for (size_t i = 0; i < r->trace->n_ops; i++) {
        int conv_of_pair = r->pair_of_op[i] >= 0 && r->pairs[r->pair_of_op[i]].conv == i;
        if (clk && conv_of_pair && mark_pair(r, clk, i, start, end))
            return -1;
        if (issue_in_mode(r, i, mode))
            return -1;
        if (clk && !conv_of_pair && r->pair_of_op[i] >= 0 && mark_pair(r, clk, i, start, end))
            return -1;
        if (observer)
            observer(ctx, i);
    }
    return 0;
}

int replay_run(struct bench_replay *r, enum bench_mode mode, struct bench_clock *clk,
               double *pair_ms, double *total_ms, replay_observer observer, void *ctx)
{
    long *marks = clk ? malloc(2 * (r->n_pairs + 1) * sizeof *marks) : NULL;
    long *start = marks, *end = marks ? marks + r->n_pairs : NULL, first = 0, last = 0;
    int rc = 0;
    if (clk && !marks)
        return replay_fail(r, NULL, "out of memory for timing marks");
    if (clk) {
        clock_restart(clk);
        first = clock_mark(clk, NULL);
    }
    rc = run_ops(r, mode, clk, start, end, observer, ctx) || flush(r, NULL, NULL);
    if (rc == 0 && clk && ((last = clock_mark(clk, NULL)) < 0 || first < 0 || clock_wait(clk)))
        rc = replay_fail(r, NULL, "cannot take the replay's timing marks");
    for (size_t p = 0; rc == 0 && clk && p < r->n_pairs; p++)
        pair_ms[p] = clock_ms(clk, start[p], end[p]);
    if (rc == 0 && clk)
        *total_ms = clock_ms(clk, first, last);
    free(marks);
    return rc ? -1 : 0;
}
