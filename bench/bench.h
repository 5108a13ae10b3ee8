/* Shared declarations of convbn-bench, the trace-replay bench: the prepared replay of one
 * trace (device buffers, cuDNN descriptors, conv -> BN pairs, the offline fold of the
 * deploy mode), the shim's control API, timing, the output check, the measurement loop,
 * and the reports.  Each module's file opens with what it owns. */
#ifndef CONVBN_BENCH_H
#define CONVBN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <json.h>

#include "convbn/convbn.h"
#include "trace.h"

#define BENCH_ERR 512

/* Calls a cuDNN function; on failure stores "file:line: fn failed: status" for op (which may
 * be NULL) in r->err and returns -1 from the calling function. */
#define CUDNN_TRY(r, op, fn, ...)                                                          \
    do {                                                                                   \
        cudnnStatus_t st_ = fn(__VA_ARGS__);                                               \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                   \
            return replay_fail((r), (op), #fn " failed: %s", cudnnGetErrorString(st_));    \
    } while (0)

/* The three ways a trace is replayed.  BASELINE: shim off.  SHIM: the shim in fuse mode.
 * DEPLOY: shim off, every foldable pair replaced by one conv + bias with the BN folded into
 * its weights offline (the best any fusion can do). */
enum bench_mode { BENCH_BASELINE, BENCH_SHIM, BENCH_DEPLOY, BENCH_MODES };

/* Returns 1 for the convolution kinds (those with a filter and a conv descriptor). */
static inline int bench_is_conv(enum trace_kind kind)
{
    return kind == TRACE_CONV_FWD || kind == TRACE_CONV_BIAS_ACT || kind == TRACE_CONV_BWD_DATA ||
           kind == TRACE_CONV_BWD_FILTER;
}

/* Returns "baseline", "shim" or "deploy". */
const char *bench_mode_name(enum bench_mode mode);

/* ---- shim_api.c: the shim's public control API, found with dlsym ---- */

struct shim_api {
    int (*set_mode)(const char *mode);
    int (*get_counters)(struct convbn_counters *out, size_t size);
    const char *(*reason_text)(int i);
};

/* Fills *api from the preloaded shim; returns 0, or -1 (api zeroed) when the shim is not
 * preloaded or lacks one of the functions. */
int shim_api_find(struct shim_api *api);

/* Switches the shim's mode when api has one (no-op otherwise); returns 0 or -1. */
int shim_set_mode(const struct shim_api *api, const char *mode);

/* Reads the shim's counters into *out (zeroed when api has none). */
void shim_counters(const struct shim_api *api, struct convbn_counters *out);

/* ---- data.c: host values, storage types, seeded random fills ---- */

/* Returns the value at element i of base, stored as type. */
double data_get(const void *base, enum trace_type type, size_t i);

/* Stores v at element i of base as type (round to nearest even for half and bfloat16). */
void data_put(void *base, enum trace_type type, size_t i, double v);

/* Fills bytes of device memory with values of type uniform in [lo, hi), from seed; the same
 * arguments give the same bytes.  Returns 0, or -1 when a copy fails. */
int data_fill(void *dev, size_t bytes, enum trace_type type, float lo, float hi, uint64_t seed);

/* Returns a well-mixed 64-bit value derived from a and b (seeds for fills). */
uint64_t data_seed(uint64_t a, uint64_t b);

/* ---- clock.c: timing with CUDA events on a GPU, wall clock under the emulation ---- */

struct bench_clock {
    int events;            /* 1: CUDA events; 0: host wall clock (CPU emulation) */
    char label[320];       /* how times were taken, for the reports */
    char device[256];      /* the device name */
    cudaEvent_t *ev;       /* events: one per mark (cap created) */
    double *host_ms;       /* wall clock: one per mark */
    size_t cap, used;
};

/* Chooses events or wall clock from the name of device 0.  Returns 0, or -1 with a
 * message in err (BENCH_ERR bytes). */
int clock_open(struct bench_clock *c, char *err);

/* Makes room for `marks` marks per replay; returns 0 or -1. */
int clock_reserve(struct bench_clock *c, size_t marks);

/* Starts a new iteration (forgets earlier marks). */
void clock_restart(struct bench_clock *c);

/* Marks now on stream; returns the mark's index, or -1 when full or on an error. */
long clock_mark(struct bench_clock *c, cudaStream_t stream);

/* Waits for every marked point; returns 0 or -1. */
int clock_wait(struct bench_clock *c);

/* Returns the milliseconds from mark a to mark b (after clock_wait). */
double clock_ms(const struct bench_clock *c, long a, long b);

/* Destroys the events and frees the marks. */
void clock_close(struct bench_clock *c);

/* ---- replay.c, buffers.c, pairs.c, deploy.c: one trace, prepared for replay ---- */

struct bench_buffer {
    size_t bytes;          /* the largest extent any operand gives it */
    enum trace_type type;  /* of its first use */
    float lo, hi;          /* range of its random values (by role: weights, BN variance, ...) */
    int role;              /* priority of the role that set lo/hi */
    void *dev;
};

/* Descriptors and workspace of one operation, built once before any replay. */
struct op_descs {
    cudnnTensorDescriptor_t t[TRACE_SLOTS];
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t act;
    cudnnOpTensorDescriptor_t op;
    size_t workspace;
};

/* A conv -> inference-BN pair: the BN's x is the y of the conv issued last on its stream. */
struct bench_pair {
    size_t conv, bn;        /* operation indices */
    size_t sig;             /* signature index */
    size_t act_bytes;       /* A: bytes of the conv output; a fused pair moves 2A fewer */
    int foldable;           /* deploy mode folds it (else replays both calls) */
    void *w_folded, *b_folded;
    cudnnTensorDescriptor_t bias_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    size_t workspace;
};

/* Pairs with the same geometry, types, layout and BN mode. */
struct bench_signature {
    size_t first;           /* index of its first pair */
    size_t count;           /* pairs per replay */
    uint64_t bytes_saved;   /* 2A summed over its foldable pairs */
    char label[112];
};

struct bench_replay {
    const struct trace *trace;
    cudnnHandle_t handle;
    cudaStream_t streams[TRACE_MAX_STREAMS];
    int current_stream;
    cudaEvent_t flush_event;       /* recorded for `opaque` operations */
    cudnnActivationDescriptor_t identity;
    struct bench_buffer *bufs;
    struct op_descs *descs;
    void *workspace;
    size_t workspace_bytes;
    struct bench_pair *pairs;
    size_t n_pairs;
    long *pair_of_op;              /* op index -> pair index, or -1 */
    struct bench_signature *sigs;
    size_t n_sigs;
    uint64_t seed;
    char err[BENCH_ERR];
};

/* Called after each operation of a replay (the summary reads the shim's counters). */
typedef void (*replay_observer)(void *ctx, size_t op);

/* Prepares trace t for replay: streams, one device buffer per buffer id filled with seeded
 * random data, descriptors and workspace for every operation, the pairs and their
 * signatures, and the folded weights of the deploy mode.  Returns 0, or -1 with
 * "file:line: ..." or another message in r->err; r must be closed with replay_close either
 * way.  t must outlive r. */
int replay_open(struct bench_replay *r, const struct trace *t, uint64_t seed);

/* Releases everything replay_open created (also after it failed). */
void replay_close(struct bench_replay *r);

/* Issues every operation of the trace in order, as `mode` replays it (the caller has set the
 * shim's mode).  With a clock, marks each pair and the whole replay and stores milliseconds
 * in pair_ms[n_pairs] and *total_ms; observer (may be NULL) runs after each operation.
 * Returns 0, or -1 with the failing call in r->err. */
int replay_run(struct bench_replay *r, enum bench_mode mode, struct bench_clock *clk,
               double *pair_ms, double *total_ms, replay_observer observer, void *ctx);

/* Issues only pair p as `mode` replays it.  Returns 0 or -1 (message in r->err). */
int replay_pair(struct bench_replay *r, size_t p, enum bench_mode mode);

/* Returns the device pointer of buffer index buf, NULL for TRACE_NO_BUF. */
void *replay_ptr(const struct bench_replay *r, int buf);

/* Formats "file:line: what" into r->err; returns -1. */
int replay_fail(struct bench_replay *r, const struct trace_op *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* buffers.c: sizes and value ranges of every buffer from its uses; allocates and fills
 * them.  Returns 0 or -1 (message in r->err). */
int buffers_open(struct bench_replay *r);
/* Frees the buffers (safe after a failed or partial buffers_open). */
void buffers_close(struct bench_replay *r);

/* Refills buffer index buf with the values of `salt` (same salt, same values). */
int buffers_refill(struct bench_replay *r, int buf, uint64_t salt);

/* descs.c: builds the descriptors and workspace of every operation (r->descs). */
int descs_open(struct bench_replay *r);
/* Destroys the descriptors (safe after a failed or partial descs_open). */
void descs_close(struct bench_replay *r);

/* Returns cuDNN's data type for a trace type. */
cudnnDataType_t descs_type(enum trace_type type);

/* pairs.c: finds the pairs, their signatures and which can be folded offline.  Returns 0
 * or -1 (message in r->err). */
int pairs_find(struct bench_replay *r);
/* Frees what pairs_find allocated. */
void pairs_close(struct bench_replay *r);

/* deploy.c: folds each foldable pair's BN into its conv on the host (fp32) and prepares the
 * conv + bias call that replaces the pair in deploy mode. */
int deploy_open(struct bench_replay *r);
/* Frees the folded weights and deploy descriptors (safe after a partial deploy_open). */
void deploy_close(struct bench_replay *r);

/* Issues the deploy call of foldable pair p; returns cuDNN's status. */
cudnnStatus_t deploy_issue(struct bench_replay *r, size_t p);

/* ---- check.c: each pair's output in shim and deploy mode against baseline ---- */

struct bench_check {
    double *sig_err[BENCH_MODES];   /* worst relative error per signature (BASELINE unused) */
    double max_err[BENCH_MODES];
    size_t failures;                /* pair outputs beyond tolerance */
    size_t pairs_checked;
};

/* Returns the tolerance for outputs of type (fp32 1e-4, half 1e-2, bfloat16 5e-2). */
double check_tolerance(enum trace_type type);

/* Replays every pair in each mode with the same inputs and compares the outputs with the
 * baseline's (|a - b| / max(1, |b|)); shim mode is skipped without a shim.  Returns 0, or -1
 * on a replay error (message in r->err). */
int check_pairs(struct bench_replay *r, const struct shim_api *shim, struct bench_check *out);
/* Frees the per-signature errors of a check. */
void check_free(struct bench_check *c);

/* ---- measure.c: warm-up and interleaved timed iterations ---- */

struct bench_options {
    int iterations, warmup;
    uint64_t seed;
    size_t max_ops;
    int no_shim, summary;
    const char *csv, *json;
};

/* Statistics of one series of iterations. */
struct bench_stat {
    double median, min, max;
};

struct bench_result {
    int iterations;
    int have_shim;
    struct bench_stat total[BENCH_MODES];  /* whole replay */
    struct bench_stat pairs[BENCH_MODES];  /* sum over pairs */
    struct bench_stat *sig[BENCH_MODES];   /* per signature (n_sigs) */
    double fused_per_iteration;            /* pairs the shim fused per shim replay */
    struct bench_check check;
};

/* Checks outputs, warms up, then runs opt->iterations iterations, each replaying the trace
 * once per mode in a rotating order.  Returns 0, or -1 (message in r->err). */
int measure_run(struct bench_replay *r, const struct shim_api *shim,
                const struct bench_options *opt, struct bench_clock *clk,
                struct bench_result *out);
/* Frees what measure_run allocated in *res (also after it failed). */
void measure_free(struct bench_result *res);

/* Returns the statistics of n values (n > 0); sorts values in place. */
struct bench_stat measure_stat(double *values, size_t n);

/* ---- report.c: the table, CSV and JSON of a measurement ---- */

/* Prints the table of one trace's results, the min..max spread, the shim's fused count
 * and the check line to out. */
void report_table(FILE *out, const struct bench_replay *r, const struct bench_result *res,
                  const struct bench_clock *clk);
/* Writes the CSV header line of report_csv. */
void report_csv_header(FILE *csv);

/* Writes s as one CSV field (quoted, quotes doubled). */
void report_csv_text(FILE *csv, const char *s);
/* Writes one CSV row per signature, then the all-pairs and whole-trace rows. */
void report_csv(FILE *csv, const struct bench_replay *r, const struct bench_result *res);

/* Returns a new JSON object for one trace's results (the caller owns it). */
struct json_object *report_json(const struct bench_replay *r, const struct bench_result *res);

/* Adds the JSON arrays of dims to obj under key (shared with the summary). */
void report_json_dims(struct json_object *obj, const char *key, const int *dims, int n);

/* ---- summary.c: `--summary`, one observe-mode replay read through the shim's counters ---- */

/* Replays r once in observe mode and prints pairs, fusable fraction, reasons and bytes
 * saved to out; appends CSV rows and a JSON object (per-layer rows) when given.  Returns 0,
 * or -1 (message in r->err). */
int summary_run(struct bench_replay *r, const struct shim_api *shim, FILE *out, FILE *csv,
                struct json_object *json_traces);
/* Writes the CSV header line of the summary's per-pair rows. */
void summary_csv_header(FILE *csv);

/* ---- progress.c: a progress bar on stderr when it is a terminal ---- */

/* Starts a bar of `steps` steps named label (which must outlive the bar). */
void progress_begin(const char *label, size_t steps);
/* Advances the bar by one step. */
void progress_step(void);
/* Erases the bar. */
void progress_end(void);

#endif
