/* The trace reader: JSON Lines (docs/trace-schema.md, schema version 1) into struct trace,
 * with json-c doing the JSON.  Each line is one object: the header first, then one
 * operation per line.  Every value is checked for type and range before it is stored, so
 * the replay can trust what it gets; anything else is an error naming file:line and what
 * was expected.  Unknown keys are ignored (forward compatibility).  Owns nothing beyond
 * the trace it builds for the caller. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "trace.h"

#define REQUIRED 1
#define OPTIONAL 0
#define JSON_DEPTH 16
#define MAX_BYTES (1ull << 46)    /* no tensor spans more (64 TiB) */
#define MAX_WINDOW (1l << 20)     /* pad, stride, dilation */
#define MAX_ALGO 1000
#define MAX_TEXT 256              /* longest header string kept */

static const char *const type_names[] = {"float", "half", "bfloat16", "double",
                                         "int8", "uint8", "int32", "other"};
static const size_t type_sizes[] = {4, 2, 2, 8, 1, 1, 4, 1};
static const char *const kind_names[] = {
    "conv_fwd", "conv_bias_act", "conv_bwd_data", "conv_bwd_filter", "bn_inference",
    "bn_training", "bn_backward", "add_tensor", "op_tensor", "opaque"};
static const char *const bn_mode_names[] = {"spatial", "spatial_persistent", "per_activation"};
static const char *const activation_names[] = {"identity", "relu", "sigmoid", "tanh",
                                               "clipped_relu", "elu", "swish"};
static const char *const tensor_op_names[] = {"add", "mul", "min", "max", "sqrt", "not"};
static const char *const format_names[] = {"NCHW", "NHWC", "NCHW_VECT_C"};
static const char *const conv_mode_names[] = {"cross_correlation", "convolution"};
static const char *const math_names[] = {"default", "tensor_op", "tensor_op_allow_conversion",
                                         "fma"};
static const char *const api_names[] = {"legacy", "backend"};
static const char *const source_names[] = {"recorded", "synthetic"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct parser {
    const char *name;
    unsigned line;
    size_t max_ops;
    struct trace *trace;
    struct json_tokener *tok;
    int have_header;
    long last_seq;
    char *err;
    size_t errlen;
};

const char *trace_kind_name(enum trace_kind kind)
{
    return kind_names[kind];
}

const char *trace_type_name(enum trace_type type)
{
    return type_names[type];
}

size_t trace_type_size(enum trace_type type)
{
    return type_sizes[type];
}

size_t trace_tensor_elements(const struct trace_tensor *t)
{
    size_t n = t->nb_dims ? 1 : 0;
    for (int i = 0; i < t->nb_dims; i++)
        n *= (size_t)t->dims[i];
    return n;
}

/* Bytes spanned by dims/strides of elem-byte elements, or MAX_BYTES + 1 when larger. */
static uint64_t span_bytes(int nb_dims, const int *dims, const int *strides, size_t elem)
{
    uint64_t last = 0, term;
    for (int i = 0; i < nb_dims; i++) {
        if (__builtin_mul_overflow((uint64_t)(dims[i] - 1), (uint64_t)strides[i], &term) ||
            __builtin_add_overflow(last, term, &last) || last >= MAX_BYTES)
            return MAX_BYTES + 1;
    }
    return (last + 1) * elem;
}

size_t trace_tensor_bytes(const struct trace_tensor *t)
{
    return t->nb_dims ? (size_t)span_bytes(t->nb_dims, t->dims, t->strides, type_sizes[t->type])
                      : 0;
}

size_t trace_filter_bytes(const struct trace_filter *w)
{
    size_t n = 1;
    for (int i = 0; i < w->nb_dims; i++)
        n *= (size_t)w->dims[i];
    return n * type_sizes[w->type];
}

static int fail(struct parser *p, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < p->errlen)
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void key_path(char *out, size_t cap, const char *ctx, const char *key)
{
    snprintf(out, cap, "%s%s%s", ctx ? ctx : "", ctx ? "." : "", key);
}

static int missing(struct parser *p, const char *ctx, const char *key, const char *expected)
{
    char path[96];
    key_path(path, sizeof path, ctx, key);
    return fail(p, "missing key \"%s\" (expected %s)", path, expected);
}

static int bad(struct parser *p, const char *ctx, const char *key, const char *expected,
               struct json_object *v)
{
    char path[96];
    const char *got = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null";
    key_path(path, sizeof path, ctx, key);
    return fail(p, "key \"%s\": expected %s, got %.40s%s", path, expected, got,
                strlen(got) > 40 ? "..." : "");
}

/* Finds ctx.key in obj: 1 when present (*v is NULL for JSON null), 0 when absent. */
static int lookup(struct json_object *obj, const char *key, struct json_object **v)
{
    *v = NULL;
    return json_object_object_get_ex(obj, key, v) ? 1 : 0;
}

static int int_value(struct json_object *v, long lo, long hi, long *out)
{
    if (!v || !json_object_is_type(v, json_type_int))
        return -1;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return -1;
    *out = (long)x;
    return 0;
}

static int get_int(struct parser *p, struct json_object *obj, const char *ctx, const char *key,
                   long lo, long hi, long *out)
{
    char expected[80];
    struct json_object *v;
    snprintf(expected, sizeof expected, "an integer in [%ld, %ld]", lo, hi);
    if (!lookup(obj, key, &v))
        return missing(p, ctx, key, expected);
    return int_value(v, lo, hi, out) ? bad(p, ctx, key, expected, v) : 0;
}

static int get_int32(struct parser *p, struct json_object *obj, const char *key, long lo,
                     long hi, int *out)
{
    long v = *out;
    int rc = get_int(p, obj, NULL, key, lo, hi, &v);
    *out = (int)v;
    return rc;
}

/* A number; null stands for a NaN or infinite value (how the recorder writes them). */
static int get_number(struct parser *p, struct json_object *obj, const char *key, double *out)
{
    static const char expected[] = "a number (or null)";
    struct json_object *v;
    if (!lookup(obj, key, &v))
        return missing(p, NULL, key, expected);
    if (!v) {
        *out = NAN;
        return 0;
    }
    if (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return bad(p, NULL, key, expected, v);
    *out = json_object_get_double(v);
    return 0;
}

/* Reads a string that must be one of names[0..n); stores its index. */
static int get_word(struct parser *p, struct json_object *obj, const char *ctx, const char *key,
                    const char *const *names, int n, int *out)
{
    char expected[256];
    size_t used = (size_t)snprintf(expected, sizeof expected, "one of");
    for (int i = 0; i < n && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s \"%s\"",
                                 i ? "," : "", names[i]);
    struct json_object *v;
    if (!lookup(obj, key, &v))
        return missing(p, ctx, key, expected);
    if (v && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        for (int i = 0; i < n; i++)
            if (strcmp(s, names[i]) == 0) {
                *out = i;
                return 0;
            }
    }
    return bad(p, ctx, key, expected, v);
}

/* Reads a string into a new allocation (at most MAX_TEXT bytes kept); *out stays when absent. */
static int get_text(struct parser *p, struct json_object *obj, const char *key, int required,
                    char **out)
{
    struct json_object *v;
    if (!lookup(obj, key, &v))
        return required ? missing(p, NULL, key, "a string") : 0;
    if (!v || !json_object_is_type(v, json_type_string))
        return bad(p, NULL, key, "a string", v);
    char *copy = strndup(json_object_get_string(v), MAX_TEXT);
    if (!copy)
        return fail(p, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

/* A buffer id: a non-negative integer, or null for a NULL pointer. */
static int get_buf(struct parser *p, struct json_object *obj, const char *ctx, const char *key,
                   int *out)
{
    static const char expected[] = "a buffer id (an integer in [0, 2147483647]) or null";
    struct json_object *v;
    long id;
    if (!lookup(obj, key, &v))
        return missing(p, ctx, key, expected);
    if (!v) {
        *out = TRACE_NO_BUF;
        return 0;
    }
    if (int_value(v, 0, INT_MAX, &id))
        return bad(p, ctx, key, expected, v);
    *out = (int)id;
    return 0;
}

/* An array of min_len..max_len integers in [lo, hi]; *len receives its length. */
static int get_ints(struct parser *p, struct json_object *obj, const char *ctx, const char *key,
                    int min_len, int max_len, long lo, long hi, int *out, int *len)
{
    char expected[96];
    struct json_object *v;
    snprintf(expected, sizeof expected, "an array of %d to %d integers in [%ld, %ld]", min_len,
             max_len, lo, hi);
    if (!lookup(obj, key, &v))
        return missing(p, ctx, key, expected);
    if (!v || !json_object_is_type(v, json_type_array))
        return bad(p, ctx, key, expected, v);
    size_t n = json_object_array_length(v);
    if (n < (size_t)min_len || n > (size_t)max_len)
        return bad(p, ctx, key, expected, v);
    for (size_t i = 0; i < n; i++) {
        long x;
        if (int_value(json_object_array_get_idx(v, i), lo, hi, &x))
            return bad(p, ctx, key, expected, v);
        out[i] = (int)x;
    }
    *len = (int)n;
    return 0;
}

/* The object at key; NULL after an error (missing, or not an object). */
static struct json_object *get_object(struct parser *p, struct json_object *obj, const char *key,
                                      const char *expected)
{
    struct json_object *v;
    if (!lookup(obj, key, &v)) {
        missing(p, NULL, key, expected);
        return NULL;
    }
    if (!v || !json_object_is_type(v, json_type_object)) {
        bad(p, NULL, key, expected, v);
        return NULL;
    }
    return v;
}

static const char tensor_expected[] = "a tensor object {\"type\", \"dims\", \"strides\", \"buf\"}";

static int get_tensor(struct parser *p, struct json_object *obj, const char *key,
                      struct trace_tensor *t)
{
    struct json_object *v = get_object(p, obj, key, tensor_expected);
    int type, n_strides;
    if (!v)
        return -1;
    if (get_word(p, v, key, "type", type_names, COUNT(type_names), &type) ||
        get_ints(p, v, key, "dims", 1, TRACE_MAX_DIMS, 1, INT_MAX, t->dims, &t->nb_dims) ||
        get_ints(p, v, key, "strides", 1, TRACE_MAX_DIMS, 1, INT_MAX, t->strides, &n_strides) ||
        get_buf(p, v, key, "buf", &t->buf))
        return -1;
    t->type = (enum trace_type)type;
    if (n_strides != t->nb_dims)
        return fail(p, "key \"%s.strides\": expected %d strides, one per dim", key, t->nb_dims);
    if (span_bytes(t->nb_dims, t->dims, t->strides, type_sizes[type]) > MAX_BYTES)
        return fail(p, "key \"%s\": tensor spans more than 2^46 bytes", key);
    return 0;
}

static int get_filter(struct parser *p, struct json_object *obj, const char *key,
                      struct trace_filter *w)
{
    static const char expected[] = "a filter object {\"type\", \"format\", \"dims\", \"buf\"}";
    struct json_object *v = get_object(p, obj, key, expected);
    int type, format;
    if (!v || get_word(p, v, key, "type", type_names, COUNT(type_names), &type) ||
        get_word(p, v, key, "format", format_names, COUNT(format_names), &format) ||
        get_ints(p, v, key, "dims", 1, TRACE_MAX_DIMS, 1, INT_MAX, w->dims, &w->nb_dims) ||
        get_buf(p, v, key, "buf", &w->buf))
        return -1;
    w->type = (enum trace_type)type;
    w->format = (enum trace_format)format;
    uint64_t bytes = type_sizes[type];
    for (int i = 0; i < w->nb_dims; i++)
        if (__builtin_mul_overflow(bytes, (uint64_t)w->dims[i], &bytes) || bytes > MAX_BYTES)
            return fail(p, "key \"%s\": filter holds more than 2^46 bytes", key);
    return 0;
}

static int get_conv(struct parser *p, struct json_object *obj, struct trace_conv *c)
{
    static const char expected[] = "a convolution object {\"pad\", \"stride\", \"dilation\", "
                                   "\"groups\", \"mode\", \"compute\", \"math\"}";
    struct json_object *v = get_object(p, obj, "conv", expected);
    int n_stride, n_dilation, mode, compute, math;
    long groups;
    const int n = TRACE_MAX_SPATIAL;
    if (!v || get_ints(p, v, "conv", "pad", 1, n, 0, MAX_WINDOW, c->pad, &c->nb_spatial) ||
        get_ints(p, v, "conv", "stride", 1, n, 1, MAX_WINDOW, c->stride, &n_stride) ||
        get_ints(p, v, "conv", "dilation", 1, n, 1, MAX_WINDOW, c->dilation, &n_dilation) ||
        get_int(p, v, "conv", "groups", 1, INT_MAX, &groups) ||
        get_word(p, v, "conv", "mode", conv_mode_names, COUNT(conv_mode_names), &mode) ||
        get_word(p, v, "conv", "compute", type_names, COUNT(type_names), &compute) ||
        get_word(p, v, "conv", "math", math_names, COUNT(math_names), &math))
        return -1;
    if (n_stride != c->nb_spatial || n_dilation != c->nb_spatial)
        return fail(p, "key \"conv\": expected \"pad\", \"stride\" and \"dilation\" of one length");
    c->groups = (int)groups;
    c->mode = (enum trace_conv_mode)mode;
    c->compute = (enum trace_type)compute;
    c->math = (enum trace_math)math;
    return 0;
}

/* The algorithm; -1 (chosen by a backend plan) replays as algorithm 0, which every
 * direction has. */
static int get_algo(struct parser *p, struct json_object *obj, struct trace_op *op)
{
    if (get_int32(p, obj, "algo", -1, MAX_ALGO, &op->algo))
        return -1;
    op->algo = op->algo < 0 ? 0 : op->algo;
    return 0;
}

static int parse_conv_fwd(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_tensor(p, o, "x", &op->t[TRACE_IN]) || get_filter(p, o, "w", &op->w) ||
           get_tensor(p, o, "y", &op->t[TRACE_OUT]) || get_conv(p, o, &op->conv) ||
           get_algo(p, o, op) || get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta);
}

static int parse_conv_bias_act(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_tensor(p, o, "x", &op->t[TRACE_IN]) || get_filter(p, o, "w", &op->w) ||
           get_tensor(p, o, "y", &op->t[TRACE_OUT]) || get_conv(p, o, &op->conv) ||
           get_algo(p, o, op) || get_number(p, o, "alpha", &op->alpha) ||
           get_tensor(p, o, "z", &op->t[TRACE_AUX2]) || get_number(p, o, "alpha2", &op->alpha2) ||
           get_tensor(p, o, "bias", &op->t[TRACE_AUX]) ||
           get_word(p, o, NULL, "activation", activation_names, COUNT(activation_names), &op->mode);
}

static int parse_conv_bwd_data(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_filter(p, o, "w", &op->w) || get_tensor(p, o, "dy", &op->t[TRACE_IN]) ||
           get_tensor(p, o, "dx", &op->t[TRACE_OUT]) || get_conv(p, o, &op->conv) ||
           get_algo(p, o, op) || get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta);
}

static int parse_conv_bwd_filter(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_tensor(p, o, "x", &op->t[TRACE_IN]) ||
           get_tensor(p, o, "dy", &op->t[TRACE_AUX]) || get_filter(p, o, "dw", &op->w) ||
           get_conv(p, o, &op->conv) || get_algo(p, o, op) ||
           get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta);
}

static int get_bn_mode(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_word(p, o, NULL, "mode", bn_mode_names, COUNT(bn_mode_names), &op->mode);
}

static int get_eps(struct parser *p, struct json_object *o, struct trace_op *op)
{
    if (get_number(p, o, "eps", &op->eps))
        return -1;
    return op->eps < 0 ? fail(p, "key \"eps\": expected a number >= 0") : 0;
}

/* The optional "var_form": what the var buffer holds (absent: the variance). */
static int get_var_form(struct parser *p, struct json_object *o, struct trace_op *op)
{
    static const char *const forms[] = {"variance", "inv_std"};
    struct json_object *v;
    return lookup(o, "var_form", &v) &&
           get_word(p, o, NULL, "var_form", forms, COUNT(forms), &op->var_inv_std);
}

static int parse_bn_inference(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_bn_mode(p, o, op) || get_var_form(p, o, op) || get_tensor(p, o, "x", &op->t[TRACE_IN]) ||
           get_tensor(p, o, "y", &op->t[TRACE_OUT]) ||
           get_tensor(p, o, "params", &op->t[TRACE_AUX]) ||
           get_buf(p, o, NULL, "scale", &op->bn_buf[TRACE_BN_SCALE]) ||
           get_buf(p, o, NULL, "bias", &op->bn_buf[TRACE_BN_BIAS]) ||
           get_buf(p, o, NULL, "mean", &op->bn_buf[TRACE_BN_MEAN]) ||
           get_buf(p, o, NULL, "var", &op->bn_buf[TRACE_BN_VAR]) || get_eps(p, o, op) ||
           get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta);
}

static int get_saved(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_buf(p, o, NULL, "saved_mean", &op->bn_buf[TRACE_BN_SAVED_MEAN]) ||
           get_buf(p, o, NULL, "saved_inv_var", &op->bn_buf[TRACE_BN_SAVED_INV_VAR]);
}

static int parse_bn_training(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return parse_bn_inference(p, o, op) || get_number(p, o, "factor", &op->factor) ||
           get_saved(p, o, op);
}

static int parse_bn_backward(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_bn_mode(p, o, op) || get_tensor(p, o, "x", &op->t[TRACE_IN]) ||
           get_tensor(p, o, "dy", &op->t[TRACE_AUX]) || get_tensor(p, o, "dx", &op->t[TRACE_OUT]) ||
           get_tensor(p, o, "params", &op->t[TRACE_AUX2]) ||
           get_buf(p, o, NULL, "scale", &op->bn_buf[TRACE_BN_SCALE]) ||
           get_buf(p, o, NULL, "dscale", &op->bn_buf[TRACE_BN_DSCALE]) ||
           get_buf(p, o, NULL, "dbias", &op->bn_buf[TRACE_BN_DBIAS]) || get_saved(p, o, op) ||
           get_eps(p, o, op) || get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta) ||
           get_number(p, o, "alpha_param", &op->alpha_param) ||
           get_number(p, o, "beta_param", &op->beta_param);
}

static int parse_add_tensor(struct parser *p, struct json_object *o, struct trace_op *op)
{
    return get_tensor(p, o, "a", &op->t[TRACE_IN]) ||
           get_tensor(p, o, "c", &op->t[TRACE_OUT]) ||
           get_number(p, o, "alpha", &op->alpha) ||
           get_number(p, o, "beta", &op->beta);
}

static int parse_op_tensor(struct parser *p, struct json_object *o, struct trace_op *op)
{
    int compute;
    if (get_word(p, o, NULL, "tensor_op", tensor_op_names, COUNT(tensor_op_names), &op->mode) ||
        get_word(p, o, NULL, "compute", type_names, COUNT(type_names), &compute) ||
        get_tensor(p, o, "a", &op->t[TRACE_IN]) || get_tensor(p, o, "b", &op->t[TRACE_AUX]) ||
        get_tensor(p, o, "c", &op->t[TRACE_OUT]) ||
        get_number(p, o, "alpha1", &op->alpha) || get_number(p, o, "alpha2", &op->alpha2) ||
        get_number(p, o, "beta", &op->beta))
        return -1;
    op->conv.compute = (enum trace_type)compute;
    return 0;
}

static int parse_opaque(struct parser *p, struct json_object *o, struct trace_op *op)
{
    char *name = NULL;
    int rc = get_text(p, o, "name", REQUIRED, &name);
    (void)op;
    free(name);
    return rc;
}

typedef int (*op_parser)(struct parser *, struct json_object *, struct trace_op *);
static const op_parser op_parsers[TRACE_KIND_COUNT] = {
    parse_conv_fwd, parse_conv_bias_act, parse_conv_bwd_data, parse_conv_bwd_filter,
    parse_bn_inference, parse_bn_training, parse_bn_backward, parse_add_tensor,
    parse_op_tensor, parse_opaque};

/* Appends an empty operation; NULL (with an error) at the limit or out of memory. */
static struct trace_op *new_op(struct parser *p)
{
    struct trace *t = p->trace;
    if (t->n_ops >= p->max_ops) {
        fail(p, "more than %zu operations (the limit; see --max-ops)", p->max_ops);
        return NULL;
    }
    if (t->n_ops == t->cap_ops) {
        size_t cap = t->cap_ops ? 2 * t->cap_ops : 64;
        struct trace_op *ops = realloc(t->ops, cap * sizeof *ops);
        if (!ops) {
            fail(p, "out of memory");
            return NULL;
        }
        t->ops = ops;
        t->cap_ops = cap;
    }
    struct trace_op *op = &t->ops[t->n_ops];
    memset(op, 0, sizeof *op);
    for (int i = 0; i < TRACE_BN_BUFS; i++)
        op->bn_buf[i] = TRACE_NO_BUF;
    op->line = p->line;
    return op;
}

static int parse_op(struct parser *p, struct json_object *o)
{
    struct trace_op *op = new_op(p);
    long seq = 0, stream = 0, thread = 0;
    int api;
    int kind;
    if (!op || get_int(p, o, NULL, "seq", 0, LONG_MAX, &seq) ||
        get_word(p, o, NULL, "op", kind_names, COUNT(kind_names), &kind) ||
        get_word(p, o, NULL, "api", api_names, COUNT(api_names), &api) ||
        get_int(p, o, NULL, "stream", 0, TRACE_MAX_STREAMS - 1, &stream) ||
        get_int(p, o, NULL, "thread", 0, INT_MAX, &thread))
        return -1;
    if (seq <= p->last_seq)
        return fail(p, "key \"seq\": expected a number above %ld (operations in call order)",
                    p->last_seq);
    op->kind = (enum trace_kind)kind;
    op->seq = p->last_seq = seq;
    op->stream = (int)stream;
    if (op_parsers[kind](p, o, op))
        return -1;
    p->trace->n_ops++;
    return 0;
}

static int parse_header(struct parser *p, struct json_object *o)
{
    struct trace *t = p->trace;
    long version = 0, pid = 0;
    char *ignored = NULL;
    int source;
    struct json_object *v;
    if (!lookup(o, "convbn_trace", &v))
        return fail(p, "expected the trace header {\"convbn_trace\": 1, ...} before any operation");
    if (get_int(p, o, NULL, "convbn_trace", 0, LONG_MAX, &version))
        return -1;
    if (version != 1)
        return fail(p, "trace schema version %ld is not supported (this reader knows 1)", version);
    int rc = get_text(p, o, "cudnn_version", REQUIRED, &ignored) ||
             get_text(p, o, "device", REQUIRED, &t->device) ||
             get_int(p, o, NULL, "pid", 0, LONG_MAX, &pid) ||
             get_text(p, o, "start_time", REQUIRED, &ignored) ||
             get_word(p, o, NULL, "source", source_names, COUNT(source_names), &source) ||
             get_text(p, o, "model", OPTIONAL, &t->model);
    free(ignored);
    if (rc)
        return -1;
    p->have_header = 1;
    if (!(t->source = strdup(source_names[source])))
        return fail(p, "out of memory");
    return 0;
}

static int only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Parses one line (without its newline) as a JSON object; NULL after an error. */
static struct json_object *parse_json(struct parser *p, const char *line, size_t len)
{
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    if (start == len || line[start] != '{') {
        fail(p, "expected a JSON object ({...}) on every line");
        return NULL;
    }
    json_tokener_reset(p->tok);
    struct json_object *o = json_tokener_parse_ex(p->tok, line, (int)len);
    enum json_tokener_error e = json_tokener_get_error(p->tok);
    size_t end = json_tokener_get_parse_end(p->tok);
    if (!o) {
        if (e == json_tokener_continue)
            fail(p, "incomplete JSON: the line ends inside an object");
        else
            fail(p, "invalid JSON at byte %zu: %s", end + 1, json_tokener_error_desc(e));
        return NULL;
    }
    if (!only_space(line + end, len - end)) {
        fail(p, "unexpected text after the JSON object at byte %zu", end + 1);
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int parse_line(struct parser *p, const char *line, size_t len)
{
    p->line++;
    if (len > TRACE_LINE_MAX)
        return fail(p, "line longer than %d bytes", TRACE_LINE_MAX);
    if (memchr(line, '\0', len))
        return fail(p, "NUL byte in the line (expected UTF-8 JSON text)");
    if (only_space(line, len))
        return 0;
    struct json_object *o = parse_json(p, line, len), *v;
    if (!o)
        return -1;
    int rc = !p->have_header             ? parse_header(p, o)
             : lookup(o, "convbn_trace", &v) ? fail(p, "a second trace header: the file holds "
                                                       "several traces (a path shared by runs or "
                                                       "processes); split it at its header lines")
                                         : parse_op(p, o);
    json_object_put(o);
    return rc ? -1 : 0;
}

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Calls visit on every buffer id field of the trace (NULL ones included). */
static void each_buf(struct trace *t, void (*visit)(int *buf, void *ctx), void *ctx)
{
    for (size_t i = 0; i < t->n_ops; i++) {
        struct trace_op *op = &t->ops[i];
        for (int s = 0; s < TRACE_SLOTS; s++)
            if (op->t[s].nb_dims)
                visit(&op->t[s].buf, ctx);
        if (op->w.nb_dims)
            visit(&op->w.buf, ctx);
        for (int b = 0; b < TRACE_BN_BUFS; b++)
            visit(&op->bn_buf[b], ctx);
    }
}

struct id_set {
    int *ids;
    size_t n;
};

static void collect_id(int *buf, void *ctx)
{
    struct id_set *set = ctx;
    if (*buf != TRACE_NO_BUF)
        set->ids[set->n++] = *buf;
}

static void renumber_id(int *buf, void *ctx)
{
    const struct id_set *set = ctx;
    if (*buf != TRACE_NO_BUF)
        *buf = (int)((int *)bsearch(buf, set->ids, set->n, sizeof *buf, compare_ints) - set->ids);
}

/* Replaces buffer ids by dense indices 0..n_buffers-1 (ascending id order). */
static int renumber_buffers(struct parser *p)
{
    struct trace *t = p->trace;
    size_t most = t->n_ops * (TRACE_SLOTS + 1 + TRACE_BN_BUFS) + 1; /* buffer fields per op */
    struct id_set set = {malloc(most * sizeof(int)), 0};
    if (!set.ids)
        return fail(p, "out of memory");
    each_buf(t, collect_id, &set);
    qsort(set.ids, set.n, sizeof *set.ids, compare_ints);
    size_t unique = 0;
    for (size_t i = 0; i < set.n; i++)
        if (unique == 0 || set.ids[unique - 1] != set.ids[i])
            set.ids[unique++] = set.ids[i];
    set.n = unique;
    each_buf(t, renumber_id, &set);
    t->n_buffers = (int)unique;
    free(set.ids);
    return 0;
}

static int finish(struct parser *p)
{
    if (!p->have_header)
        return fail(p, "empty trace: expected the header line {\"convbn_trace\": 1, ...}");
    if (!p->trace->model && !(p->trace->model = strdup("")))
        return fail(p, "out of memory");
    return renumber_buffers(p);
}

static int parser_open(struct parser *p, const char *name, size_t max_ops, struct trace *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    *p = (struct parser){.name = name, .max_ops = max_ops, .trace = out, .last_seq = -1,
                         .err = err, .errlen = errlen};
    if (errlen)
        err[0] = '\0';
    out->name = strdup(name);
    p->tok = json_tokener_new_ex(JSON_DEPTH);
    if (!out->name || !p->tok)
        return fail(p, "out of memory");
    json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return 0;
}

/* Ends a parse: rc 0 keeps the trace, anything else frees it.  Returns 0 or -1. */
static int parser_close(struct parser *p, int rc)
{
    if (p->tok)
        json_tokener_free(p->tok);
    if (rc == 0)
        rc = finish(p);
    if (rc != 0)
        trace_free(p->trace);
    return rc ? -1 : 0;
}

int trace_parse_buffer(const char *name, const char *buf, size_t len, size_t max_ops,
                       struct trace *out, char *err, size_t errlen)
{
    struct parser p;
    int rc = parser_open(&p, name, max_ops, out, err, errlen);
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t line_len = nl ? (size_t)(nl - (buf + at)) : len - at;
        rc = parse_line(&p, buf + at, line_len);
        at += line_len + 1;
    }
    return parser_close(&p, rc);
}

/* Parses the complete lines of chunk[0..*have) and moves the unfinished rest to the front. */
static int parse_chunk(struct parser *p, char *chunk, size_t *have, int at_eof)
{
    size_t at = 0;
    int rc = 0;
    for (char *nl; rc == 0 && (nl = memchr(chunk + at, '\n', *have - at));) {
        rc = parse_line(p, chunk + at, (size_t)(nl - (chunk + at)));
        at = (size_t)(nl - chunk) + 1;
    }
    if (rc == 0 && at_eof && at < *have) {
        rc = parse_line(p, chunk + at, *have - at);
        at = *have;
    }
    if (rc == 0 && *have - at > TRACE_LINE_MAX) {
        p->line++;
        return fail(p, "line longer than %d bytes", TRACE_LINE_MAX);
    }
    memmove(chunk, chunk + at, *have - at);
    *have -= at;
    return rc;
}

int trace_load_file(const char *path, size_t max_ops, struct trace *out, char *err,
                    size_t errlen)
{
    enum { CHUNK = 4 * TRACE_LINE_MAX };
    struct parser p;
    FILE *f = fopen(path, "rb");
    int open_errno = errno;
    char *chunk = malloc(CHUNK);
    int rc = parser_open(&p, path, max_ops, out, err, errlen);
    if (rc == 0 && !f) {
        snprintf(err, errlen, "%s: %s", path, strerror(open_errno));
        rc = -1;
    } else if (rc == 0 && !chunk) {
        rc = fail(&p, "out of memory");
    }
    for (size_t have = 0; rc == 0;) {
        size_t n = fread(chunk + have, 1, CHUNK - have, f);
        have += n;
        if (n == 0 && ferror(f)) {
            rc = fail(&p, "read error: %s", strerror(errno));
            break;
        }
        rc = parse_chunk(&p, chunk, &have, n == 0);
        if (n == 0)
            break;
    }
    if (f)
        fclose(f);
    free(chunk);
    return parser_close(&p, rc);
}

void trace_free(struct trace *t)
{
    free(t->name);
    free(t->model);
    free(t->source);
    free(t->device);
    free(t->ops);
    memset(t, 0, sizeof *t);
}
