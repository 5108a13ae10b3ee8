/* The call-trace recorder (CONVBN_TRACE, docs/trace-schema.md).  Formats each operation the
 * hooks describe as one JSON line into an in-memory buffer, maps device pointers, streams and
 * threads to small ids in order of first use (bounded uthash tables), and writes whole lines
 * with write(2) every CONVBN_TRACE_FLUSH_OPS ops, whenever the buffer passes
 * CONVBN_TRACE_FLUSH_BYTES, and at exit: a crash loses only the lines not yet written.
 * Owns the process's tracer and convbn_trace_enabled.  An observer: it never changes what
 * the shim does, and calls nothing in cuDNN or CUDA but the version and the device name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "convbn/hash.h"
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) ((elt)->id = -1)
#include <uthash.h>

#include "convbn/callsite.h"
#include "convbn/log.h"
#include "convbn/real.h"
#include "convbn/trace.h"

struct convbn_trace_id {
    const void *key;
    long id;
    char *text; /* sites only: the caller's name */
    UT_hash_handle hh;
};

/* One line being written into p[0..cap); nothing is written past cap. */
struct emit {
    struct convbn_tracer *t;
    char *p;
    size_t len, cap;
    int overflow;     /* the line did not fit: it is dropped */
    const char *full; /* the id table that is full ("buffers", ...): the trace stops */
};

/* ---- JSON output ---- */

static void put(struct emit *e, const char *s, size_t n)
{
    if (e->len + n >= e->cap) {
        e->overflow = 1;
        return;
    }
    memcpy(e->p + e->len, s, n);
    e->len += n;
}

/* Returns the length of the well-formed UTF-8 sequence at s (2 to 4), 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (n == 0 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Writes s as a JSON string: quotes and backslashes escaped, control characters as \u00XX,
 * bytes that are not well-formed UTF-8 as U+FFFD. */
static void put_string(struct emit *e, const char *s)
{
    put(e, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        size_t n = *c >= 0x80 ? utf8_len(c) : 1;
        if (*c == '"' || *c == '\\') {
            put(e, "\\", 1);
            put(e, (const char *)c, 1);
        } else if (*c < 0x20) {
            const char escape[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[*c >> 4],
                                    "0123456789abcdef"[*c & 15]};
            put(e, escape, sizeof escape);
        } else if (n == 0) {
            put(e, "\\ufffd", 6);
        } else {
            put(e, (const char *)c, n);
            c += n - 1;
        }
    }
    put(e, "\"", 1);
}

/* Writes v in decimal (printf is the slow part of a line). */
static void put_long(struct emit *e, long v)
{
    char digits[24], *p = digits + sizeof digits;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    put(e, p, (size_t)(digits + sizeof digits - p));
}

/* Writes a word known to need no escaping (keys, enum names) in quotes. */
static void put_quoted(struct emit *e, const char *word)
{
    put(e, "\"", 1);
    put(e, word, strlen(word));
    put(e, "\"", 1);
}

/* Writes "key": preceded by a comma unless it is the first key of an object. */
static void key(struct emit *e, const char *k)
{
    if (e->len == 0 || e->p[e->len - 1] != '{')
        put(e, ",", 1);
    put_quoted(e, k);
    put(e, ":", 1);
}

static void put_int(struct emit *e, const char *k, long v)
{
    key(e, k);
    put_long(e, v);
}

static void put_word(struct emit *e, const char *k, const char *word)
{
    key(e, k);
    put_quoted(e, word);
}

static void put_text(struct emit *e, const char *k, const char *s)
{
    key(e, k);
    put_string(e, s);
}

/* Writes the shortest of %.15g, %.16g, %.17g that reads back as v (integers below 1e15
 * directly, as %.15g would); null when not finite. */
static void put_number(struct emit *e, const char *k, double v)
{
    char text[40];
    key(e, k);
    if (!isfinite(v)) {
        put(e, "null", 4);
        return;
    }
    if (fabs(v) < 1e15 && v == (double)(long)v && !(v == 0 && signbit(v))) {
        put_long(e, (long)v);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    put(e, text, strlen(text));
}

static void put_ints(struct emit *e, const char *k, const int *v, int n)
{
    key(e, k);
    put(e, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i)
            put(e, ",", 1);
        put_long(e, v[i]);
    }
    put(e, "]", 1);
}

/* ---- ids ---- */

/* Returns the entry of key in *table, adding it with id *count when new; NULL when the table
 * already holds max entries or memory ran out. */
static struct convbn_trace_id *id_entry(struct convbn_trace_id **table, long *count, long max,
                                        const void *key)
{
    struct convbn_trace_id *entry;
    HASH_FIND_PTR(*table, &key, entry);
    if (entry || *count >= max || !(entry = calloc(1, sizeof *entry)))
        return entry;
    entry->key = key;
    entry->id = *count;
    HASH_ADD_PTR(*table, key, entry);
    if (entry->id < 0) {
        free(entry);
        return NULL;
    }
    (*count)++;
    return entry;
}

/* Returns the id of key; -1 (and e->full = what) when the table cannot take it. */
static long id_of(struct emit *e, struct convbn_trace_id **table, long *count, long max,
                  const void *key, const char *what)
{
    struct convbn_trace_id *entry = id_entry(table, count, max, key);
    if (!entry)
        e->full = what;
    return entry ? entry->id : -1;
}

static void free_ids(struct convbn_trace_id **table)
{
    struct convbn_trace_id *entry, *tmp;
    HASH_ITER(hh, *table, entry, tmp) {
        HASH_DEL(*table, entry);
        free(entry->text);
        free(entry);
    }
}

/* Writes the id of a device pointer, null for NULL. */
static void put_buf(struct emit *e, const char *k, const void *ptr)
{
    struct convbn_tracer *t = e->t;
    if (!ptr) {
        key(e, k);
        put(e, "null", 4);
        return;
    }
    put_int(e, k, id_of(e, &t->buffers, &t->n_buffers, CONVBN_TRACE_MAX_BUFFERS, ptr, "buffers"));
}

/* Returns the name of the caller at `caller`, NULL when unknown or the site table is full. */
static const char *site_of(struct convbn_tracer *t, const void *caller)
{
    char name[512];
    if (!t->site || !caller)
        return NULL;
    struct convbn_trace_id *entry = id_entry(&t->sites, &t->n_sites, CONVBN_TRACE_MAX_SITES, caller);
    if (entry && !entry->text)
        entry->text = strdup(t->site(name, sizeof name));
    return entry ? entry->text : NULL;
}

/* ---- operands and operations ---- */

#define NAME_IN(names, v) ((v) >= 0 && (size_t)(v) < sizeof(names) / sizeof(names)[0] && (names)[v] \
                           ? (names)[v] : "unknown")

static const char *const format_names[] = {
    [CUDNN_TENSOR_NCHW] = "NCHW", [CUDNN_TENSOR_NHWC] = "NHWC",
    [CUDNN_TENSOR_NCHW_VECT_C] = "NCHW_VECT_C"};
static const char *const conv_mode_names[] = {
    [CUDNN_CONVOLUTION] = "convolution", [CUDNN_CROSS_CORRELATION] = "cross_correlation"};
static const char *const math_names[] = {
    [CUDNN_DEFAULT_MATH] = "default", [CUDNN_TENSOR_OP_MATH] = "tensor_op",
    [CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION] = "tensor_op_allow_conversion",
    [CUDNN_FMA_MATH] = "fma"};
static const char *const bn_mode_names[] = {
    [CUDNN_BATCHNORM_PER_ACTIVATION] = "per_activation", [CUDNN_BATCHNORM_SPATIAL] = "spatial",
    [CUDNN_BATCHNORM_SPATIAL_PERSISTENT] = "spatial_persistent"};
static const char *const activation_names[] = {
    [CUDNN_ACTIVATION_SIGMOID] = "sigmoid", [CUDNN_ACTIVATION_RELU] = "relu",
    [CUDNN_ACTIVATION_TANH] = "tanh", [CUDNN_ACTIVATION_CLIPPED_RELU] = "clipped_relu",
    [CUDNN_ACTIVATION_ELU] = "elu", [CUDNN_ACTIVATION_IDENTITY] = "identity",
    [CUDNN_ACTIVATION_SWISH] = "swish"};
static const char *const op_tensor_names[] = {
    [CUDNN_OP_TENSOR_ADD] = "add", [CUDNN_OP_TENSOR_MUL] = "mul", [CUDNN_OP_TENSOR_MIN] = "min",
    [CUDNN_OP_TENSOR_MAX] = "max", [CUDNN_OP_TENSOR_SQRT] = "sqrt", [CUDNN_OP_TENSOR_NOT] = "not"};
static const char *const api_names[] = {[CONVBN_API_LEGACY] = "legacy",
                                        [CONVBN_API_BACKEND] = "backend"};

static void put_tensor(struct emit *e, const char *k, const struct convbn_trace_tensor *x)
{
    key(e, k);
    put(e, "{", 1);
    put_word(e, "type", convbn_type_name(x->geom.type));
    put_ints(e, "dims", x->geom.dims, x->geom.nb_dims);
    put_ints(e, "strides", x->geom.strides, x->geom.nb_dims);
    put_buf(e, "buf", x->buf);
    put(e, "}", 1);
}

static void put_filter(struct emit *e, const char *k, const struct convbn_trace_filter *w)
{
    key(e, k);
    put(e, "{", 1);
    put_word(e, "type", convbn_type_name(w->geom.type));
    put_word(e, "format", NAME_IN(format_names, w->geom.format));
    put_ints(e, "dims", w->geom.dims, w->geom.nb_dims);
    put_buf(e, "buf", w->buf);
    put(e, "}", 1);
}

/* Writes the `conv` object, `algo`, `alpha` and (unless bias-activation) `beta`. */
static void put_conv(struct emit *e, const struct convbn_trace_op *op)
{
    const struct convbn_conv_geom *c = &op->conv;
    key(e, "conv");
    put(e, "{", 1);
    put_ints(e, "pad", c->pad, c->nb_spatial);
    put_ints(e, "stride", c->stride, c->nb_spatial);
    put_ints(e, "dilation", c->dilation, c->nb_spatial);
    put_int(e, "groups", c->groups);
    put_word(e, "mode", NAME_IN(conv_mode_names, c->mode));
    put_word(e, "compute", convbn_type_name(c->compute_type));
    put_word(e, "math", NAME_IN(math_names, c->math_type));
    put(e, "}", 1);
    put_int(e, "algo", op->algo);
    put_number(e, "alpha", op->alpha);
    if (op->kind != CONVBN_TRACE_CONV_BIAS_ACT)
        put_number(e, "beta", op->beta);
}

static void write_conv_fwd(struct emit *e, const struct convbn_trace_op *op)
{
    put_tensor(e, "x", &op->x);
    put_filter(e, "w", &op->w);
    put_tensor(e, "y", &op->y);
    put_conv(e, op);
}

static void write_conv_bias_act(struct emit *e, const struct convbn_trace_op *op)
{
    write_conv_fwd(e, op);
    put_tensor(e, "z", &op->z);
    put_number(e, "alpha2", op->alpha2);
    put_tensor(e, "bias", &op->bias);
    put_word(e, "activation", NAME_IN(activation_names, op->activation));
}

static void write_conv_bwd_data(struct emit *e, const struct convbn_trace_op *op)
{
    put_filter(e, "w", &op->w);
    put_tensor(e, "dy", &op->dy);
    put_tensor(e, "dx", &op->dx);
    put_conv(e, op);
}

static void write_conv_bwd_filter(struct emit *e, const struct convbn_trace_op *op)
{
    put_tensor(e, "x", &op->x);
    put_tensor(e, "dy", &op->dy);
    put_filter(e, "dw", &op->w);
    put_conv(e, op);
}

static void write_bn_inference(struct emit *e, const struct convbn_trace_op *op)
{
    put_word(e, "mode", NAME_IN(bn_mode_names, op->mode));
    put_tensor(e, "x", &op->x);
    put_tensor(e, "y", &op->y);
    put_tensor(e, "params", &op->params);
    put_buf(e, "scale", op->scale);
    put_buf(e, "bias", op->bn_bias);
    put_buf(e, "mean", op->mean);
    put_buf(e, "var", op->var);
    if (op->var_inv_std)
        put_word(e, "var_form", "inv_std");
    put_number(e, "eps", op->eps);
    put_number(e, "alpha", op->alpha);
    put_number(e, "beta", op->beta);
}

static void write_bn_training(struct emit *e, const struct convbn_trace_op *op)
{
    write_bn_inference(e, op);
    put_number(e, "factor", op->factor);
    put_buf(e, "saved_mean", op->saved_mean);
    put_buf(e, "saved_inv_var", op->saved_inv_var);
}

static void write_bn_backward(struct emit *e, const struct convbn_trace_op *op)
{
    put_word(e, "mode", NAME_IN(bn_mode_names, op->mode));
    put_tensor(e, "x", &op->x);
    put_tensor(e, "dy", &op->dy);
    put_tensor(e, "dx", &op->dx);
    put_tensor(e, "params", &op->params);
    put_buf(e, "scale", op->scale);
    put_buf(e, "dscale", op->dscale);
    put_buf(e, "dbias", op->dbias);
    put_buf(e, "saved_mean", op->saved_mean);
    put_buf(e, "saved_inv_var", op->saved_inv_var);
    put_number(e, "eps", op->eps);
    put_number(e, "alpha", op->alpha);
    put_number(e, "beta", op->beta);
    put_number(e, "alpha_param", op->alpha_param);
    put_number(e, "beta_param", op->beta_param);
}

static void write_add_tensor(struct emit *e, const struct convbn_trace_op *op)
{
    put_tensor(e, "a", &op->a);
    put_tensor(e, "c", &op->c);
    put_number(e, "alpha", op->alpha);
    put_number(e, "beta", op->beta);
}

static void write_op_tensor(struct emit *e, const struct convbn_trace_op *op)
{
    put_word(e, "tensor_op", NAME_IN(op_tensor_names, op->mode));
    put_word(e, "compute", convbn_type_name(op->compute));
    put_tensor(e, "a", &op->a);
    put_tensor(e, "b", &op->b);
    put_tensor(e, "c", &op->c);
    put_number(e, "alpha1", op->alpha);
    put_number(e, "alpha2", op->alpha2);
    put_number(e, "beta", op->beta);
}

static void write_opaque(struct emit *e, const struct convbn_trace_op *op)
{
    (void)e;
    (void)op;
}

static const struct {
    const char *op;
    void (*write)(struct emit *e, const struct convbn_trace_op *op);
} kinds[] = {
    [CONVBN_TRACE_CONV_FWD] = {"conv_fwd", write_conv_fwd},
    [CONVBN_TRACE_CONV_BIAS_ACT] = {"conv_bias_act", write_conv_bias_act},
    [CONVBN_TRACE_CONV_BWD_DATA] = {"conv_bwd_data", write_conv_bwd_data},
    [CONVBN_TRACE_CONV_BWD_FILTER] = {"conv_bwd_filter", write_conv_bwd_filter},
    [CONVBN_TRACE_BN_INFERENCE] = {"bn_inference", write_bn_inference},
    [CONVBN_TRACE_BN_TRAINING] = {"bn_training", write_bn_training},
    [CONVBN_TRACE_BN_BACKWARD] = {"bn_backward", write_bn_backward},
    [CONVBN_TRACE_ADD_TENSOR] = {"add_tensor", write_add_tensor},
    [CONVBN_TRACE_OP_TENSOR] = {"op_tensor", write_op_tensor},
    [CONVBN_TRACE_OPAQUE] = {"opaque", write_opaque},
};

/* Writes the keys every op has: seq, op, api, stream, thread, name and site. */
static void write_common(struct emit *e, const struct convbn_trace_op *op)
{
    struct convbn_tracer *t = e->t;
    const void *stream = op->stream == cudaStreamLegacy ? NULL : op->stream;
    const char *site = site_of(t, op->caller);
    put_int(e, "seq", t->seq);
    put_word(e, "op", kinds[op->kind].op);
    put_word(e, "api", NAME_IN(api_names, op->api));
    put_int(e, "stream", id_of(e, &t->streams, &t->n_streams, CONVBN_TRACE_MAX_STREAMS, stream,
                               "streams"));
    put_int(e, "thread", id_of(e, &t->threads, &t->n_threads, CONVBN_TRACE_MAX_THREADS,
                               (const void *)pthread_self(), "threads"));
    put_text(e, "name", op->name);
    if (site)
        put_text(e, "site", site);
}

static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void make_c_numeric(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Appends op's line to t->buf (which has room for CONVBN_TRACE_LINE_MAX bytes), with numbers
 * in the C locale whatever the program set.  A line that does not fit is dropped.  Returns
 * NULL, or the name of the id table that is full. */
static const char *append_op(struct convbn_tracer *t, const struct convbn_trace_op *op)
{
    struct emit e = {.t = t, .p = t->buf + t->len, .cap = CONVBN_TRACE_LINE_MAX};
    pthread_once(&c_numeric_once, make_c_numeric);
    locale_t program_locale = c_numeric ? uselocale(c_numeric) : (locale_t)0;
    put(&e, "{", 1);
    write_common(&e, op);
    kinds[op->kind].write(&e, op);
    put(&e, "}\n", 2);
    if (program_locale)
        uselocale(program_locale);
    if (!e.full && !e.overflow) {
        t->len += e.len;
        t->seq++;
        t->unflushed++;
    }
    return e.full;
}

/* Writes "MAJOR.MINOR.PATCH" of a cudnnGetVersion() value (9xxyy from cuDNN 9 on, xyzz
 * before), "unknown" for 0. */
static void format_version(char *buf, size_t cap, long v)
{
    if (v <= 0)
        snprintf(buf, cap, "unknown");
    else if (v >= 90000)
        snprintf(buf, cap, "%ld.%ld.%ld", v / 10000, v / 100 % 100, v % 100);
    else
        snprintf(buf, cap, "%ld.%ld.%ld", v / 1000, v / 100 % 10, v % 100);
}

size_t convbn_trace_format_header(char *buf, size_t cap, const struct convbn_trace_header *h)
{
    struct emit e = {.p = buf, .cap = cap};
    char version[64], when[32];
    struct tm tm;
    format_version(version, sizeof version, h->cudnn_version);
    if (!gmtime_r(&h->start, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof when, "unknown");
    put(&e, "{", 1);
    put_int(&e, "convbn_trace", CONVBN_TRACE_VERSION);
    put_text(&e, "cudnn_version", version);
    put_text(&e, "device", h->device[0] ? h->device : "unknown");
    put_int(&e, "pid", h->pid);
    put_text(&e, "start_time", when);
    put_text(&e, "source", "recorded");
    put(&e, "}\n", 2);
    if (e.overflow)
        return 0;
    buf[e.len] = '\0';
    return e.len;
}

/* ---- the tracer ---- */

void convbn_tracer_init(struct convbn_tracer *t, const char *path, convbn_trace_header_fn header,
                        convbn_trace_site_fn site)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->header = header;
    t->site = site;
    t->fd = -1;
}

/* Closes the file and frees everything; t records nothing afterwards. */
static void release(struct convbn_tracer *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    free(t->buf);
    t->buf = NULL;
    t->len = 0;
    free_ids(&t->buffers);
    free_ids(&t->streams);
    free_ids(&t->threads);
    free_ids(&t->sites);
    t->state = CONVBN_TRACER_STOPPED;
}

/* Stops t with one warning: "what" failed, err is an errno value or 0.  Returns -1. */
static int give_up(struct convbn_tracer *t, const char *what, int err)
{
    convbn_logf("trace %s: %s%s%s; tracing stopped after %ld ops", t->path, what,
                err ? ": " : "", err ? strerror(err) : "", t->seq);
    release(t);
    return -1;
}

/* Writes out the buffer (whole lines).  Returns 0, or -1 after giving up. */
static int flush_locked(struct convbn_tracer *t)
{
    size_t off = 0;
    while (off < t->len) {
        ssize_t n = write(t->fd, t->buf + off, t->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return give_up(t, "cannot write", n < 0 ? errno : EIO);
        off += (size_t)n;
    }
    t->len = 0;
    t->unflushed = 0;
    return 0;
}

/* Opens the file and writes the header line.  Returns 0, or -1 after giving up. */
static int open_locked(struct convbn_tracer *t)
{
    struct convbn_trace_header h;
    memset(&h, 0, sizeof h);
    t->buf = malloc(CONVBN_TRACE_FLUSH_BYTES + CONVBN_TRACE_LINE_MAX);
    if (!t->buf || !id_entry(&t->streams, &t->n_streams, CONVBN_TRACE_MAX_STREAMS, NULL))
        return give_up(t, "out of memory", 0);
    t->fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (t->fd < 0)
        return give_up(t, "cannot open", errno);
    t->header(&h);
    t->len = convbn_trace_format_header(t->buf, CONVBN_TRACE_LINE_MAX, &h);
    t->state = CONVBN_TRACER_OPEN;
    return flush_locked(t);
}

static int record_locked(struct convbn_tracer *t, const struct convbn_trace_op *op)
{
    char what[64];
    if (t->state == CONVBN_TRACER_STOPPED ||
        (t->state == CONVBN_TRACER_IDLE && open_locked(t) != 0))
        return -1;
    const char *full = append_op(t, op);
    if (full) {
        snprintf(what, sizeof what, "too many distinct %s", full);
        flush_locked(t);
        return t->state == CONVBN_TRACER_OPEN ? give_up(t, what, 0) : -1;
    }
    if (t->len >= CONVBN_TRACE_FLUSH_BYTES || t->unflushed >= CONVBN_TRACE_FLUSH_OPS)
        return flush_locked(t);
    return 0;
}

int convbn_tracer_record(struct convbn_tracer *t, const struct convbn_trace_op *op)
{
    pthread_mutex_lock(&t->lock);
    int rc = record_locked(t, op);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int convbn_tracer_flush(struct convbn_tracer *t)
{
    pthread_mutex_lock(&t->lock);
    int rc = t->state == CONVBN_TRACER_OPEN ? flush_locked(t)
             : t->state == CONVBN_TRACER_IDLE ? 0 : -1;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void convbn_tracer_stop(struct convbn_tracer *t)
{
    pthread_mutex_lock(&t->lock);
    if (t->state == CONVBN_TRACER_OPEN)
        flush_locked(t);
    release(t);
    pthread_mutex_unlock(&t->lock);
}

/* ---- describing calls ---- */

void convbn_trace_describe_conv(const struct convbn_conv_call *c, enum convbn_trace_kind kind,
                                const char *name, struct convbn_trace_op *out)
{
    *out = (struct convbn_trace_op){
        .kind = kind, .api = c->api, .name = name, .stream = c->stream,
        .x = {c->x, c->x_ptr}, .dx = {c->x, c->x_ptr}, .w = {c->w, c->w_ptr},
        .y = {c->y, c->y_ptr}, .dy = {c->y, c->y_ptr}, .conv = c->conv, .algo = c->algo,
        .alpha = c->alpha, .beta = c->beta};
}

void convbn_trace_describe_bn(const struct convbn_bn_call *bn, const char *name,
                              struct convbn_trace_op *out)
{
    *out = (struct convbn_trace_op){
        .kind = CONVBN_TRACE_BN_INFERENCE, .api = bn->api, .name = name, .stream = bn->stream,
        .mode = bn->mode, .x = {bn->x, bn->x_ptr}, .y = {bn->y, bn->y_ptr},
        .params = {bn->params, NULL}, .scale = bn->scale, .bn_bias = bn->bias,
        .mean = bn->mean, .var = bn->var, .var_inv_std = bn->inv_std, .eps = bn->eps,
        .alpha = bn->alpha, .beta = bn->beta};
}

/* ---- the process's trace ---- */

int convbn_trace_enabled;
static struct convbn_tracer process_tracer;

typedef cudaError_t (*get_device_fn)(int *device);
typedef cudaError_t (*get_props_fn)(struct cudaDeviceProp *prop, int device);

/* Copies the current device's name into buf (cap bytes) when libcudart is loaded and says;
 * leaves "" otherwise.  Never loads libcudart (invariant 5). */
static void device_name(char *buf, size_t cap)
{
    /* Room for any release's struct cudaDeviceProp; the name is its first field in all. */
    union device_prop { struct cudaDeviceProp prop; char room[16384]; } *props = NULL;
    get_device_fn get_device = (get_device_fn)convbn_real_lookup("libcudart.so", "cudaGetDevice");
    get_props_fn get_props =
        (get_props_fn)convbn_real_lookup("libcudart.so", "cudaGetDeviceProperties_v2");
    if (!get_props)
        get_props = (get_props_fn)convbn_real_lookup("libcudart.so", "cudaGetDeviceProperties");
    int device = 0;
    buf[0] = '\0';
    if (get_device && get_props && get_device(&device) == cudaSuccess &&
        (props = calloc(1, sizeof *props)) && get_props(&props->prop, device) == cudaSuccess) {
        size_t n = strnlen(props->prop.name, sizeof props->prop.name);
        n = n < cap ? n : cap - 1;
        memcpy(buf, props->prop.name, n);
        buf[n] = '\0';
    }
    free(props);
}

static void describe_process(struct convbn_trace_header *h)
{
    h->cudnn_version = real_cudnnGetVersion ? (long)real_cudnnGetVersion() : 0;
    device_name(h->device, sizeof h->device);
    h->pid = (long)getpid();
    h->start = time(NULL);
}

static void before_fork(void)
{
    pthread_mutex_lock(&process_tracer.lock);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&process_tracer.lock);
}

/* A forked child records nothing: its copy of the buffer belongs to the parent's trace. */
static void after_fork_in_child(void)
{
    __atomic_store_n(&convbn_trace_enabled, 0, __ATOMIC_RELAXED);
    process_tracer.len = 0;
    release(&process_tracer);
    pthread_mutex_unlock(&process_tracer.lock);
}

void convbn_trace_start(const struct convbn_config *cfg)
{
    if (!cfg->trace_file[0] || cfg->mode == CONVBN_MODE_OFF)
        return;
    convbn_tracer_init(&process_tracer, cfg->trace_file, describe_process,
                       convbn_callsite_describe);
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    __atomic_store_n(&convbn_trace_enabled, 1, __ATOMIC_RELEASE);
}

void convbn_trace_record(const struct convbn_trace_op *op)
{
    if (convbn_tracer_record(&process_tracer, op) != 0)
        __atomic_store_n(&convbn_trace_enabled, 0, __ATOMIC_RELAXED);
}

void convbn_trace_stop(void)
{
    if (__atomic_exchange_n(&convbn_trace_enabled, 0, __ATOMIC_ACQ_REL))
        convbn_tracer_stop(&process_tracer);
}
