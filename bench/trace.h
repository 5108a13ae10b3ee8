/* The in-memory form of a trace (docs/trace-schema.md, schema version 1) and the reader
 * that builds it from JSON Lines.  Independent of the cuDNN headers: the replay maps these
 * enums onto cuDNN's.  Buffer ids are renumbered densely (0 .. n_buffers-1, in order of
 * first use) so that the replay can index arrays with them; TRACE_NO_BUF is a NULL
 * pointer. */
#ifndef CONVBN_BENCH_TRACE_H
#define CONVBN_BENCH_TRACE_H

#include <stddef.h>

#define TRACE_MAX_DIMS 8
#define TRACE_MAX_SPATIAL (TRACE_MAX_DIMS - 2)
#define TRACE_MAX_STREAMS 1024
#define TRACE_LINE_MAX 65536
#define TRACE_NO_BUF (-1)

/* TRACE_OTHER: a cuDNN type the recorder has no name for; such an operand is read (as
 * one byte per element) but cannot be replayed. */
enum trace_type {
    TRACE_FLOAT, TRACE_HALF, TRACE_BFLOAT16, TRACE_DOUBLE, TRACE_INT8, TRACE_UINT8, TRACE_INT32,
    TRACE_OTHER, TRACE_TYPE_COUNT
};

enum trace_kind {
    TRACE_CONV_FWD, TRACE_CONV_BIAS_ACT, TRACE_CONV_BWD_DATA, TRACE_CONV_BWD_FILTER,
    TRACE_BN_INFERENCE, TRACE_BN_TRAINING, TRACE_BN_BACKWARD, TRACE_ADD_TENSOR,
    TRACE_OP_TENSOR, TRACE_OPAQUE, TRACE_KIND_COUNT
};

enum trace_bn_mode { TRACE_BN_SPATIAL, TRACE_BN_SPATIAL_PERSISTENT, TRACE_BN_PER_ACTIVATION };
enum trace_activation {
    TRACE_ACT_IDENTITY, TRACE_ACT_RELU, TRACE_ACT_SIGMOID, TRACE_ACT_TANH,
    TRACE_ACT_CLIPPED_RELU, TRACE_ACT_ELU, TRACE_ACT_SWISH
};
enum trace_tensor_op { TRACE_OP_ADD, TRACE_OP_MUL, TRACE_OP_MIN, TRACE_OP_MAX, TRACE_OP_SQRT,
                       TRACE_OP_NOT };
enum trace_format { TRACE_NCHW, TRACE_NHWC, TRACE_NCHW_VECT_C };
enum trace_conv_mode { TRACE_CROSS_CORRELATION, TRACE_CONVOLUTION };
enum trace_math { TRACE_MATH_DEFAULT, TRACE_MATH_TENSOR_OP, TRACE_MATH_ALLOW_CONVERSION,
                  TRACE_MATH_FMA };

/* nb_dims == 0: the operand is absent. */
struct trace_tensor {
    enum trace_type type;
    int nb_dims;
    int dims[TRACE_MAX_DIMS];
    int strides[TRACE_MAX_DIMS];
    int buf;
};

struct trace_filter {
    enum trace_type type;
    enum trace_format format;
    int nb_dims;
    int dims[TRACE_MAX_DIMS];
    int buf;
};

struct trace_conv {
    int nb_spatial;
    int pad[TRACE_MAX_SPATIAL], stride[TRACE_MAX_SPATIAL], dilation[TRACE_MAX_SPATIAL];
    int groups;
    enum trace_conv_mode mode;
    enum trace_type compute;
    enum trace_math math;
};

/* Tensor slots of struct trace_op.  What each kind keeps where:
 *   conv_fwd        IN x, OUT y                       (w: filter)
 *   conv_bias_act   IN x, OUT y, AUX bias, AUX2 z     (w: filter)
 *   conv_bwd_data   IN dy, OUT dx                     (w: filter)
 *   conv_bwd_filter IN x, AUX dy                      (w: dw, the output)
 *   bn_inference, bn_training   IN x, OUT y, AUX params
 *   bn_backward     IN x, OUT dx, AUX dy, AUX2 params
 *   add_tensor      IN a, OUT c
 *   op_tensor       IN a, OUT c, AUX b                (its compute type in conv.compute) */
enum trace_slot { TRACE_IN, TRACE_OUT, TRACE_AUX, TRACE_AUX2, TRACE_SLOTS };

/* BN buffer slots of struct trace_op.bn_buf:
 *   bn_inference    scale, bias, mean, var
 *   bn_training     as bn_inference, plus saved_mean, saved_inv_var
 *   bn_backward     scale, dscale, dbias, saved_mean, saved_inv_var */
enum trace_bn_buf {
    TRACE_BN_SCALE, TRACE_BN_BIAS, TRACE_BN_MEAN, TRACE_BN_VAR, TRACE_BN_SAVED_MEAN,
    TRACE_BN_SAVED_INV_VAR, TRACE_BN_BUFS,
    TRACE_BN_DSCALE = TRACE_BN_BIAS, TRACE_BN_DBIAS = TRACE_BN_MEAN
};

struct trace_op {
    enum trace_kind kind;
    unsigned line; /* line of the trace file, for messages */
    long seq;
    int stream;
    struct trace_tensor t[TRACE_SLOTS];
    struct trace_filter w;
    struct trace_conv conv;
    int algo; /* -1 in the file (chosen by a backend plan) reads as 0 */
    int mode; /* bn_*: trace_bn_mode; conv_bias_act: trace_activation; op_tensor: trace_tensor_op */
    int bn_buf[TRACE_BN_BUFS];
    double alpha, beta, alpha2, eps, factor; /* op_tensor: alpha is alpha1; NaN for null */
    double alpha_param, beta_param;          /* bn_backward: parameter gradient scaling */
    int var_inv_std; /* bn_inference: var holds an inverse std ("var_form"); the replay
                      * still passes it to the legacy BN as a variance (timing only) */
};

struct trace {
    char *name;     /* the file name given to the reader */
    char *model;    /* header "model", or "" */
    char *source;   /* header "source" */
    char *device;   /* header "device" */
    struct trace_op *ops;
    size_t n_ops, cap_ops;
    int n_buffers;  /* distinct buffer ids */
};

/* Parses len bytes of JSON Lines named `name` (used in messages) into *out.  Refuses more
 * than max_ops operations.  Returns 0, or -1 with "name:line: what was expected" in err
 * (errlen bytes, always terminated) and *out left empty.  The caller owns *out and frees it
 * with trace_free. */
int trace_parse_buffer(const char *name, const char *buf, size_t len, size_t max_ops,
                       struct trace *out, char *err, size_t errlen);

/* Like trace_parse_buffer for the file at path, read in chunks (memory bounded by
 * max_ops and the line limit, not by the file size). */
int trace_load_file(const char *path, size_t max_ops, struct trace *out, char *err,
                    size_t errlen);

/* Releases what a successful parse allocated; *t is left empty. */
void trace_free(struct trace *t);

/* Return static names as written in traces ("conv_fwd", "float", ...). */
const char *trace_kind_name(enum trace_kind kind);
const char *trace_type_name(enum trace_type type);

/* Returns the size of one element of type in bytes. */
size_t trace_type_size(enum trace_type type);

/* Returns the number of bytes from a tensor's first element to the end of its last (0 for
 * an absent tensor); the reader guarantees it fits in 2^46. */
size_t trace_tensor_bytes(const struct trace_tensor *t);

/* Returns the bytes of a packed filter. */
size_t trace_filter_bytes(const struct trace_filter *w);

/* Returns the number of elements of a tensor's dims (not its strides). */
size_t trace_tensor_elements(const struct trace_tensor *t);

#endif
