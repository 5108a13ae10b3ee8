/* The call-trace recorder (CONVBN_TRACE, DESIGN.md section 3: an observer).  Hooks describe
 * each intercepted operation as a struct convbn_trace_op; the recorder writes it as one
 * JSON line (docs/trace-schema.md), mapping pointers, streams and threads to small ids.
 * A struct convbn_tracer is one trace file; the process has one, started by convbn_init. */
#ifndef CONVBN_TRACE_H
#define CONVBN_TRACE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "convbn/config.h"
#include "convbn/geometry.h"
#include "convbn/records.h"

#define CONVBN_TRACE_VERSION 1
#define CONVBN_TRACE_FLUSH_BYTES 65536 /* write(2) once the buffer holds this much */
#define CONVBN_TRACE_FLUSH_OPS 256     /* ... or this many ops */
#define CONVBN_TRACE_LINE_MAX 16384    /* longest line; longer ones are dropped */
#define CONVBN_TRACE_MAX_BUFFERS 65536 /* distinct pointers; more stops the trace */
#define CONVBN_TRACE_MAX_STREAMS 4096
#define CONVBN_TRACE_MAX_THREADS 4096
#define CONVBN_TRACE_MAX_SITES 4096    /* distinct callers named; later ones get no `site` */

enum convbn_trace_kind {
    CONVBN_TRACE_CONV_FWD,
    CONVBN_TRACE_CONV_BIAS_ACT,
    CONVBN_TRACE_CONV_BWD_DATA,
    CONVBN_TRACE_CONV_BWD_FILTER,
    CONVBN_TRACE_BN_INFERENCE,
    CONVBN_TRACE_BN_TRAINING,
    CONVBN_TRACE_BN_BACKWARD,
    CONVBN_TRACE_ADD_TENSOR,
    CONVBN_TRACE_OP_TENSOR,
    CONVBN_TRACE_OPAQUE,
};

/* An operand: its geometry and the device pointer the call passed. */
struct convbn_trace_tensor {
    struct convbn_tensor_geom geom;
    const void *buf;
};

struct convbn_trace_filter {
    struct convbn_filter_geom geom;
    const void *buf;
};

/* One operation as the program asked for it.  Each kind writes only its own fields, under
 * the keys of docs/trace-schema.md: the field's name, except that conv_bwd_filter writes `w`
 * as `dw`, BatchNorm writes `bn_bias` as `bias`, and op_tensor writes `mode` as `tensor_op`
 * and `alpha` as `alpha1`. */
struct convbn_trace_op {
    enum convbn_trace_kind kind;
    enum convbn_api api;
    const char *name;     /* the cuDNN function; written for every kind */
    cudaStream_t stream;  /* NULL and cudaStreamLegacy are the legacy default stream */
    const void *caller;   /* return address into the program (`site`), NULL for none */
    struct convbn_trace_tensor x, y, z, dx, dy, bias, params, a, b, c;
    struct convbn_trace_filter w;
    struct convbn_conv_geom conv;
    int algo;
    int mode;             /* cudnnBatchNormMode_t, or cudnnOpTensorOp_t */
    int activation;       /* cudnnActivationMode_t */
    int compute;          /* op_tensor: cudnnDataType_t of the computation */
    double alpha, beta, alpha2, alpha_param, beta_param, eps, factor;
    int var_inv_std;      /* bn_inference: var holds 1/sqrt(var + eps) ("var_form") */
    const void *scale, *bn_bias, *mean, *var, *saved_mean, *saved_inv_var, *dscale, *dbias;
};

/* What the header line says about the recording process. */
struct convbn_trace_header {
    long cudnn_version;   /* cudnnGetVersion(); 0 when unknown */
    char device[256];     /* "" when unknown */
    long pid;
    time_t start;
};

/* Fills the header of a trace that is about to be opened. */
typedef void (*convbn_trace_header_fn)(struct convbn_trace_header *out);
/* Names the caller of the current hook into buf ("function+0xoff (object)"); returns buf.
 * convbn_callsite_describe has this type. */
typedef char *(*convbn_trace_site_fn)(char *buf, size_t cap);

struct convbn_trace_id; /* one entry of an id table (trace.c) */

enum convbn_tracer_state { CONVBN_TRACER_IDLE, CONVBN_TRACER_OPEN, CONVBN_TRACER_STOPPED };

/* One trace file.  All fields are private to trace.c and guarded by lock. */
struct convbn_tracer {
    pthread_mutex_t lock;
    enum convbn_tracer_state state;
    char path[CONVBN_PATH_MAX];
    convbn_trace_header_fn header;
    convbn_trace_site_fn site;
    int fd;
    char *buf;            /* CONVBN_TRACE_FLUSH_BYTES + CONVBN_TRACE_LINE_MAX bytes */
    size_t len;
    unsigned unflushed;   /* ops in buf */
    long seq;
    struct convbn_trace_id *buffers, *streams, *threads, *sites;
    long n_buffers, n_streams, n_threads, n_sites;
};

/* Prepares t to write to path (copied; nothing is opened yet).  header fills the header line
 * when the first op opens the file; site names callers (NULL: no `site` keys). */
void convbn_tracer_init(struct convbn_tracer *t, const char *path, convbn_trace_header_fn header,
                        convbn_trace_site_fn site);

/* Appends op as the next line (opening the file and writing the header first if needed) and
 * writes the buffer out when it holds CONVBN_TRACE_FLUSH_BYTES or CONVBN_TRACE_FLUSH_OPS
 * ops.  Thread-safe.  Returns 0, or -1 when t records nothing more: stopped, or the file
 * could not be opened or written, or an id table is full (one `convbn:` warning then). */
int convbn_tracer_record(struct convbn_tracer *t, const struct convbn_trace_op *op);

/* Writes out every buffered line.  Returns 0, or -1 as convbn_tracer_record. */
int convbn_tracer_flush(struct convbn_tracer *t);

/* Flushes, closes the file and frees t's tables; t records nothing afterwards. */
void convbn_tracer_stop(struct convbn_tracer *t);

/* Writes the header line (with its newline, NUL-terminated) into buf; returns its length,
 * or 0 when it does not fit in cap. */
size_t convbn_trace_format_header(char *buf, size_t cap, const struct convbn_trace_header *h);

/* --- The process's trace (CONVBN_TRACE) --- */

/* 1 while the process records a trace; read it through convbn_tracing(). */
extern int convbn_trace_enabled;

/* Returns 1 when hooks should describe their call to convbn_trace_record: the one branch
 * that tracing costs when CONVBN_TRACE is unset. */
static inline int convbn_tracing(void)
{
    return __builtin_expect(__atomic_load_n(&convbn_trace_enabled, __ATOMIC_RELAXED), 0);
}

/* Starts the process's trace when cfg names a file and the mode is not off.  Call once. */
void convbn_trace_start(const struct convbn_config *cfg);

/* Records op in the process's trace; stops tracing when the tracer gives up. */
void convbn_trace_record(const struct convbn_trace_op *op);

/* Flushes and closes the process's trace (at exit). */
void convbn_trace_stop(void);

/* Fills *out with a convolution call as op `kind` (conv_fwd, conv_bwd_data, conv_bwd_filter
 * or opaque) named `name` (not copied), caller NULL: c holds its api, stream, algo,
 * alpha/beta and operands in forward roles (backward data: dx in x, dy in y; backward
 * filter: dw in w, dy in y).  The backend hooks record what it fills. */
void convbn_trace_describe_conv(const struct convbn_conv_call *c, enum convbn_trace_kind kind,
                                const char *name, struct convbn_trace_op *out);

/* Fills *out with a BatchNorm inference call as bn_inference named `name` (not copied),
 * caller NULL; bn->inv_std becomes var_inv_std. */
void convbn_trace_describe_bn(const struct convbn_bn_call *bn, const char *name,
                              struct convbn_trace_op *out);

/* Fills *out from a tensor descriptor and pointer; returns 0, or -1 when the descriptor
 * cannot be read (the caller then records the call as opaque). */
static inline int convbn_trace_tensor_of(cudnnTensorDescriptor_t desc, const void *buf,
                                         struct convbn_trace_tensor *out)
{
    out->buf = buf;
    return convbn_snapshot_tensor(desc, &out->geom);
}

#endif
