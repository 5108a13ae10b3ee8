/* The shadow table of the program's cuDNN backend descriptors (include/convbn/backend_shadow.h):
 * one entry per descriptor of a type the shim reads (tensor, convolution, convolution
 * forward, backward data and backward filter operations, norm forward operation, operation
 * graph, engine heuristic, engine, engine config, execution plan, variant pack), keyed by the
 * descriptor pointer in a uthash table under one lock, at most CONVBN_SHADOW_MAX entries.
 * The three convolution operations share one shadow (struct bk_op): their operands are kept
 * in forward roles (x: x or dx, w: w or dw, y: y or dy), so one recogniser reads them all.
 * Values are copied when set: a parent holds copies of its children's values, and everything
 * derived from a graph (heuristic, engine, config, plan) holds a copy of the graph's
 * recognised convolution or batch-norm inference.  Owns the table only; never
 * calls cuDNN.  A plan held by deferred work (convbn_shadow_hold) outlives the program's
 * destroy in the table until its last hold is released; the caller then destroys it. */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/backend_shadow.h"
#include "convbn/geometry.h"

/* Descriptor pointers are hashed with one multiply (uthash's default costs ~100 instructions
 * per lookup, and every backend host call looks one up). */
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = pointer_hash(keyptr))
#define uthash_nonfatal_oom(elt) ((void)(elt))
#include <uthash.h>

#define MAX_PACK CONVBN_SHADOW_PACK_MAX /* more tensors make the pack opaque */
#define MAX_SPARE 64 /* destroyed entries kept for reuse (packs are made and destroyed per call) */

enum { HAVE_TYPE = 1, HAVE_DIMS = 2, HAVE_STRIDES = 4, HAVE_UID = 8 };
enum { HAVE_X = 1, HAVE_W = 2, HAVE_Y = 4, HAVE_CONV = 8, HAVE_ALPHA = 16, HAVE_BETA = 32 };
#define HAVE_TENSOR (HAVE_TYPE | HAVE_DIMS | HAVE_STRIDES | HAVE_UID)
#define HAVE_OP (HAVE_X | HAVE_W | HAVE_Y | HAVE_CONV | HAVE_ALPHA | HAVE_BETA)
/* A batch-norm operation's tensors, in the order of bk_norm.t[], then mode and phase. */
enum { NORM_X, NORM_Y, NORM_SCALE, NORM_BIAS, NORM_MEAN, NORM_INV_VAR, NORM_TENSORS };
enum { HAVE_NORM_MODE = 1 << NORM_TENSORS, HAVE_NORM_PHASE = 2 << NORM_TENSORS };
#define HAVE_NORM (HAVE_NORM_MODE | HAVE_NORM_PHASE | ((1u << NORM_TENSORS) - 1))

struct bk_tensor {
    unsigned have;
    int type, nb_dims, nb_strides, is_virtual; /* nb_*: -1 when over CONVBN_MAX_DIMS */
    int64_t dims[CONVBN_MAX_DIMS], strides[CONVBN_MAX_DIMS], uid;
};

struct bk_conv {
    int have_mode, have_compute, mode, compute;
    int64_t nb_spatial; /* -1 until set */
    int nb_pre, nb_post, nb_stride, nb_dilation; /* -1 until set or when too many */
    int64_t pre[CONVBN_MAX_SPATIAL], post[CONVBN_MAX_SPATIAL];
    int64_t stride[CONVBN_MAX_SPATIAL], dilation[CONVBN_MAX_SPATIAL];
};

struct bk_op {
    unsigned have;
    struct bk_tensor x, w, y;
    struct bk_conv conv;
    double alpha, beta;
};

struct bk_norm {
    unsigned have; /* bit i: t[i] set; HAVE_NORM_MODE, HAVE_NORM_PHASE */
    int mode, phase; /* cudnnBackendNormMode_t, cudnnBackendNormFwdPhase_t */
    struct bk_tensor t[NORM_TENSORS];
};

struct bk_pack {
    int nb_uids, nb_pointers; /* -1 until set or when over MAX_PACK */
    int64_t uids[MAX_PACK];
    void *pointers[MAX_PACK];
};

struct shadow {
    cudnnBackendDescriptor_t key;
    int type;
    union {
        struct bk_tensor tensor;
        struct bk_conv conv;
        struct bk_op op; /* a convolution operation; a graph's single operation */
        struct bk_norm norm; /* a norm forward; a graph's single operation */
        struct bk_pack pack;
    } u;
    int single_conv;                /* graph: OPS is one convolution operation (in u.op) */
    int conv_dir;                   /* graph: its direction (enum convbn_backend_dir) */
    int single_norm;                /* graph: OPS is one norm forward (in u.norm) */
    int holds;                      /* plan: deferred runs that still need it */
    int doomed;                     /* plan: the program destroyed it while held */
    struct convbn_backend_conv rec; /* graphs and what derives from them */
    struct convbn_backend_bn bn_rec; /* the same, for a batch-norm graph */
    UT_hash_handle hh;
};

static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shadow *table;
static struct shadow *spare[MAX_SPARE];
static int nb_spare;

static unsigned pointer_hash(const void *keyptr)
{
    uint64_t p;
    memcpy(&p, keyptr, sizeof p);
    return (unsigned)((p * 0x9e3779b97f4a7c15ull) >> 32);
}

static int shadowed_type(int type)
{
    switch (type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
    case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR: return 1;
    default: return 0;
    }
}

/* Returns the direction of a convolution operation type, or -1 for any other type. */
static int conv_direction(int type)
{
    switch (type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR: return CONVBN_BACKEND_FWD;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
        return CONVBN_BACKEND_BWD_DATA;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
        return CONVBN_BACKEND_BWD_FILTER;
    default: return -1;
    }
}

/* Returns 1 for the types that carry a graph's recognised convolution. */
static int carries_graph(int type)
{
    return type == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR ||
           type == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR || type == CUDNN_BACKEND_ENGINE_DESCRIPTOR ||
           type == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR ||
           type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR;
}

static struct shadow *find(cudnnBackendDescriptor_t desc)
{
    struct shadow *s = NULL;
    HASH_FIND_PTR(table, &desc, s);
    return s;
}

static void reset(struct shadow *s, int type)
{
    cudnnBackendDescriptor_t key = s->key;
    UT_hash_handle hh = s->hh;
    memset(s, 0, sizeof *s);
    s->key = key;
    s->hh = hh;
    s->type = type;
    s->u.conv.nb_spatial = -1;
    s->u.conv.nb_pre = s->u.conv.nb_post = s->u.conv.nb_stride = s->u.conv.nb_dilation = -1;
    s->u.pack.nb_uids = s->u.pack.nb_pointers = -1;
    if (type == CUDNN_BACKEND_TENSOR_DESCRIPTOR)
        s->u.tensor.nb_dims = s->u.tensor.nb_strides = -1;
}

/* Removes s from the table, keeping its memory for reuse while there is room. */
static void drop(struct shadow *s)
{
    HASH_DEL(table, s);
    if (nb_spare < MAX_SPARE)
        spare[nb_spare++] = s;
    else
        free(s);
}

void convbn_shadow_create(cudnnBackendDescriptor_t desc, int type)
{
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(desc);
    if (s && !shadowed_type(type)) {
        drop(s);
    } else if (s) {
        reset(s, type);
    } else if (shadowed_type(type) && HASH_COUNT(table) < CONVBN_SHADOW_MAX &&
               (s = nb_spare ? spare[--nb_spare] : malloc(sizeof *s))) {
        s->key = desc;
        HASH_ADD_PTR(table, key, s);
        if (find(desc) == s)
            reset(s, type);
        else /* uthash could not allocate its buckets: stay opaque */
            free(s);
    }
    pthread_mutex_unlock(&shadow_lock);
}

int convbn_shadow_destroy(cudnnBackendDescriptor_t desc)
{
    int postponed = 0;
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(desc);
    if (s && s->holds > 0)
        postponed = s->doomed = 1;
    else if (s)
        drop(s);
    pthread_mutex_unlock(&shadow_lock);
    return postponed;
}

int convbn_shadow_hold(cudnnBackendDescriptor_t plan)
{
    int rc = -1;
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(plan);
    if (s && s->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && !s->doomed &&
        s->holds < INT_MAX) {
        s->holds++;
        rc = 0;
    }
    pthread_mutex_unlock(&shadow_lock);
    return rc;
}

int convbn_shadow_release(cudnnBackendDescriptor_t plan)
{
    int destroy = 0;
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(plan);
    if (s && s->holds > 0 && --s->holds == 0 && s->doomed) {
        drop(s);
        destroy = 1;
    }
    pthread_mutex_unlock(&shadow_lock);
    return destroy;
}

int convbn_shadow_pack(cudnnBackendDescriptor_t pack, int64_t *uids, void **pointers, int cap)
{
    int n = -1;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *s = find(pack);
    if (s && s->type == CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR &&
        s->u.pack.nb_uids == s->u.pack.nb_pointers && s->u.pack.nb_uids >= 0 &&
        s->u.pack.nb_uids <= cap) {
        n = s->u.pack.nb_uids;
        memcpy(uids, s->u.pack.uids, (size_t)n * sizeof *uids);
        memcpy(pointers, s->u.pack.pointers, (size_t)n * sizeof *pointers);
    }
    pthread_mutex_unlock(&shadow_lock);
    return n;
}

/* Copies count int64 values into dst (capacity cap); returns count, or -1 when it does not fit. */
static int copy_int64s(int64_t *dst, int cap, int64_t count, const void *values)
{
    if (count < 0 || count > cap || (count > 0 && !values))
        return -1;
    memcpy(dst, values, (size_t)count * sizeof *dst);
    return (int)count;
}

static int64_t first_int64(const void *values)
{
    int64_t v;
    memcpy(&v, values, sizeof v);
    return v;
}

static void set_tensor(struct bk_tensor *t, int name, int type, int64_t count, const void *v)
{
    if (name == CUDNN_ATTR_TENSOR_DATA_TYPE && type == CUDNN_TYPE_DATA_TYPE && count == 1) {
        t->type = *(const cudnnDataType_t *)v;
        t->have |= HAVE_TYPE;
    } else if (name == CUDNN_ATTR_TENSOR_DIMENSIONS && type == CUDNN_TYPE_INT64) {
        t->nb_dims = copy_int64s(t->dims, CONVBN_MAX_DIMS, count, v);
        t->have |= HAVE_DIMS;
    } else if (name == CUDNN_ATTR_TENSOR_STRIDES && type == CUDNN_TYPE_INT64) {
        t->nb_strides = copy_int64s(t->strides, CONVBN_MAX_DIMS, count, v);
        t->have |= HAVE_STRIDES;
    } else if (name == CUDNN_ATTR_TENSOR_UNIQUE_ID && type == CUDNN_TYPE_INT64 && count == 1) {
        t->uid = first_int64(v);
        t->have |= HAVE_UID;
    } else if (name == CUDNN_ATTR_TENSOR_IS_VIRTUAL && type == CUDNN_TYPE_BOOLEAN && count == 1) {
        t->is_virtual = *(const bool *)v;
    }
}

static void set_conv(struct bk_conv *c, int name, int type, int64_t count, const void *v)
{
    if (name == CUDNN_ATTR_CONVOLUTION_COMP_TYPE && type == CUDNN_TYPE_DATA_TYPE && count == 1) {
        c->compute = *(const cudnnDataType_t *)v;
        c->have_compute = 1;
    } else if (name == CUDNN_ATTR_CONVOLUTION_CONV_MODE &&
               type == CUDNN_TYPE_CONVOLUTION_MODE && count == 1) {
        c->mode = *(const cudnnConvolutionMode_t *)v;
        c->have_mode = 1;
    } else if (type != CUDNN_TYPE_INT64) {
        return;
    } else if (name == CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS && count == 1) {
        c->nb_spatial = first_int64(v);
    } else if (name == CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS) {
        c->nb_pre = copy_int64s(c->pre, CONVBN_MAX_SPATIAL, count, v);
    } else if (name == CUDNN_ATTR_CONVOLUTION_POST_PADDINGS) {
        c->nb_post = copy_int64s(c->post, CONVBN_MAX_SPATIAL, count, v);
    } else if (name == CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES) {
        c->nb_stride = copy_int64s(c->stride, CONVBN_MAX_SPATIAL, count, v);
    } else if (name == CUDNN_ATTR_CONVOLUTION_DILATIONS) {
        c->nb_dilation = copy_int64s(c->dilation, CONVBN_MAX_SPATIAL, count, v);
    }
}

/* Reads a FLOAT or DOUBLE scaling factor; returns 0, or -1 for any other type. */
static int read_scale(int type, int64_t count, const void *v, double *out)
{
    if (count != 1 || !v)
        return -1;
    if (type == CUDNN_TYPE_FLOAT)
        *out = *(const float *)v;
    else if (type == CUDNN_TYPE_DOUBLE)
        *out = *(const double *)v;
    else
        return -1;
    return 0;
}

/* The shadow of the single descriptor value of an attribute, or NULL. */
static const struct shadow *child_of(int type, int64_t count, const void *v)
{
    if (type != CUDNN_TYPE_BACKEND_DESCRIPTOR || count != 1 || !v)
        return NULL;
    return find(*(const cudnnBackendDescriptor_t *)v);
}

/* Copies the tensor value of an operation attribute into *t; sets or clears bit. */
static void set_op_tensor(struct bk_op *op, struct bk_tensor *t, unsigned bit,
                          const struct shadow *child)
{
    op->have &= ~bit;
    if (child && child->type == CUDNN_BACKEND_TENSOR_DESCRIPTOR) {
        *t = child->u.tensor;
        op->have |= bit;
    }
}

/* Returns the HAVE_* role of a convolution operation's attribute, in forward roles, or 0. */
static unsigned op_role(int name)
{
    switch (name) {
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X: return HAVE_X;
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW: return HAVE_W;
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY: return HAVE_Y;
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC: return HAVE_CONV;
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA: return HAVE_ALPHA;
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA: return HAVE_BETA;
    default: return 0;
    }
}

static void set_op(struct bk_op *op, int name, int type, int64_t count, const void *v)
{
    const struct shadow *child = child_of(type, count, v);
    unsigned role = op_role(name);
    if (role == HAVE_X) {
        set_op_tensor(op, &op->x, HAVE_X, child);
    } else if (role == HAVE_W) {
        set_op_tensor(op, &op->w, HAVE_W, child);
    } else if (role == HAVE_Y) {
        set_op_tensor(op, &op->y, HAVE_Y, child);
    } else if (role == HAVE_CONV) {
        op->have &= ~HAVE_CONV;
        if (child && child->type == CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR) {
            op->conv = child->u.conv;
            op->have |= HAVE_CONV;
        }
    } else if (role == HAVE_ALPHA) {
        op->have = read_scale(type, count, v, &op->alpha) ? op->have & ~HAVE_ALPHA
                                                          : op->have | HAVE_ALPHA;
    } else if (role == HAVE_BETA) {
        op->have = read_scale(type, count, v, &op->beta) ? op->have & ~HAVE_BETA
                                                         : op->have | HAVE_BETA;
    }
}

/* Returns the index in bk_norm.t[] of a norm forward tensor attribute, or -1. */
static int norm_slot(int name)
{
    switch (name) {
    case CUDNN_ATTR_OPERATION_NORM_FWD_XDESC: return NORM_X;
    case CUDNN_ATTR_OPERATION_NORM_FWD_YDESC: return NORM_Y;
    case CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC: return NORM_SCALE;
    case CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC: return NORM_BIAS;
    case CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC: return NORM_MEAN;
    case CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC: return NORM_INV_VAR;
    default: return -1;
    }
}

static void set_norm(struct bk_norm *n, int name, int type, int64_t count, const void *v)
{
    int slot = norm_slot(name);
    if (slot >= 0) {
        const struct shadow *child = child_of(type, count, v);
        n->have &= ~(1u << slot);
        if (child && child->type == CUDNN_BACKEND_TENSOR_DESCRIPTOR) {
            n->t[slot] = child->u.tensor;
            n->have |= 1u << slot;
        }
    } else if (name == CUDNN_ATTR_OPERATION_NORM_FWD_MODE && type == CUDNN_TYPE_NORM_MODE &&
               count == 1 && v) {
        n->mode = *(const cudnnBackendNormMode_t *)v;
        n->have |= HAVE_NORM_MODE;
    } else if (name == CUDNN_ATTR_OPERATION_NORM_FWD_PHASE &&
               type == CUDNN_TYPE_NORM_FWD_PHASE && count == 1 && v) {
        n->phase = *(const cudnnBackendNormFwdPhase_t *)v;
        n->have |= HAVE_NORM_PHASE;
    }
}

static void set_graph_ops(struct shadow *g, int type, int64_t count, const void *v)
{
    const struct shadow *child = child_of(type, count, v);
    g->conv_dir = child ? conv_direction(child->type) : -1;
    g->single_conv = g->conv_dir >= 0;
    g->single_norm = child && child->type == CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR;
    if (g->single_conv)
        g->u.op = child->u.op;
    else if (g->single_norm)
        g->u.norm = child->u.norm;
}

/* Returns 1 for the attributes that link a descriptor to the graph it derives from. */
static int graph_link(int name)
{
    return name == CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH ||
           name == CUDNN_ATTR_ENGINE_OPERATION_GRAPH || name == CUDNN_ATTR_ENGINECFG_ENGINE ||
           name == CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG;
}

static void set_pack(struct bk_pack *p, int name, int type, int64_t count, const void *v)
{
    if (name == CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS && type == CUDNN_TYPE_INT64) {
        p->nb_uids = copy_int64s(p->uids, MAX_PACK, count, v);
    } else if (name == CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS && type == CUDNN_TYPE_VOID_PTR) {
        p->nb_pointers = -1;
        if (count >= 0 && count <= MAX_PACK && (count == 0 || v)) {
            memcpy(p->pointers, v, (size_t)count * sizeof(void *));
            p->nb_pointers = (int)count;
        }
    }
}

/* Returns 1 for the attributes the shadow reads (the others skip the lock). */
static int read_attribute(int name)
{
    switch (name) {
    case CUDNN_ATTR_TENSOR_DATA_TYPE:
    case CUDNN_ATTR_TENSOR_DIMENSIONS:
    case CUDNN_ATTR_TENSOR_STRIDES:
    case CUDNN_ATTR_TENSOR_UNIQUE_ID:
    case CUDNN_ATTR_TENSOR_IS_VIRTUAL:
    case CUDNN_ATTR_CONVOLUTION_COMP_TYPE:
    case CUDNN_ATTR_CONVOLUTION_CONV_MODE:
    case CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS:
    case CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS:
    case CUDNN_ATTR_CONVOLUTION_POST_PADDINGS:
    case CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES:
    case CUDNN_ATTR_CONVOLUTION_DILATIONS:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X:
    case CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY:
    case CUDNN_ATTR_OPERATION_NORM_FWD_MODE:
    case CUDNN_ATTR_OPERATION_NORM_FWD_PHASE:
    case CUDNN_ATTR_OPERATION_NORM_FWD_XDESC:
    case CUDNN_ATTR_OPERATION_NORM_FWD_YDESC:
    case CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC:
    case CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC:
    case CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC:
    case CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC:
    case CUDNN_ATTR_OPERATIONGRAPH_OPS:
    case CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH:
    case CUDNN_ATTR_ENGINE_OPERATION_GRAPH:
    case CUDNN_ATTR_ENGINECFG_ENGINE:
    case CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG:
    case CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS:
    case CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS: return 1;
    default: return 0;
    }
}

void convbn_shadow_set(cudnnBackendDescriptor_t desc, int name, int type, int64_t count,
                       const void *values)
{
    if (!read_attribute(name))
        return;
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(desc);
    const struct shadow *child;
    if (!s) {
        /* opaque */
    } else if (s->type == CUDNN_BACKEND_TENSOR_DESCRIPTOR) {
        set_tensor(&s->u.tensor, name, type, count, values);
    } else if (s->type == CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR) {
        set_conv(&s->u.conv, name, type, count, values);
    } else if (conv_direction(s->type) >= 0) {
        set_op(&s->u.op, name, type, count, values);
    } else if (s->type == CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR) {
        set_norm(&s->u.norm, name, type, count, values);
    } else if (s->type == CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR) {
        set_pack(&s->u.pack, name, type, count, values);
    } else if (name == CUDNN_ATTR_OPERATIONGRAPH_OPS) {
        set_graph_ops(s, type, count, values);
    } else if (graph_link(name)) {
        child = child_of(type, count, values);
        s->rec = child && carries_graph(child->type) ? child->rec
                                                     : (struct convbn_backend_conv){0};
        s->bn_rec = child && carries_graph(child->type) ? child->bn_rec
                                                        : (struct convbn_backend_bn){0};
    }
    pthread_mutex_unlock(&shadow_lock);
}

void convbn_shadow_got(cudnnBackendDescriptor_t desc, int type, int64_t count,
                       const void *values)
{
    if (type != CUDNN_TYPE_BACKEND_DESCRIPTOR || count <= 0 || !values)
        return;
    const cudnnBackendDescriptor_t *got = values;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *s = find(desc);
    for (int64_t i = 0; s && carries_graph(s->type) && i < count; i++) {
        struct shadow *t = find(got[i]);
        if (t && carries_graph(t->type) && t->type != CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR) {
            t->rec = s->rec;
            t->bn_rec = s->bn_rec;
        }
    }
    pthread_mutex_unlock(&shadow_lock);
}

/* Returns 1 when v fits a positive int (a dim, stride, conv stride or dilation). */
static int positive_int(int64_t v)
{
    return v >= 1 && v <= INT_MAX;
}

/* Converts a complete, real tensor of 3 to CONVBN_MAX_DIMS dims; returns 0 or -1. */
static int tensor_geom(const struct bk_tensor *t, struct convbn_tensor_geom *g)
{
    memset(g, 0, sizeof *g);
    if ((t->have & HAVE_TENSOR) != HAVE_TENSOR || t->is_virtual || t->nb_dims < 3 ||
        t->nb_strides != t->nb_dims)
        return -1;
    for (int i = 0; i < t->nb_dims; i++) {
        if (!positive_int(t->dims[i]) || !positive_int(t->strides[i]))
            return -1;
        g->dims[i] = (int)t->dims[i];
        g->strides[i] = (int)t->strides[i];
    }
    g->type = t->type;
    g->nb_dims = t->nb_dims;
    return 0;
}

/* Returns 1 when g's strides are packed with dims taken innermost first in order[]. */
static int packed_in(const struct convbn_tensor_geom *g, const int *order)
{
    int64_t expect = 1;
    for (int i = 0; i < g->nb_dims; i++) {
        if (g->strides[order[i]] != expect)
            return 0;
        expect *= g->dims[order[i]];
    }
    return 1;
}

/* The filter of tensor t: NCHW when packed K,C,spatial, NHWC when packed K,spatial,C. */
static int filter_geom(const struct bk_tensor *t, struct convbn_filter_geom *f)
{
    struct convbn_tensor_geom g;
    int nchw[CONVBN_MAX_DIMS], nhwc[CONVBN_MAX_DIMS];
    memset(f, 0, sizeof *f);
    if (tensor_geom(t, &g))
        return -1;
    nhwc[0] = 1;
    for (int i = 0; i < g.nb_dims; i++) {
        nchw[i] = g.nb_dims - 1 - i;
        if (i > 0)
            nhwc[i] = i == g.nb_dims - 1 ? 0 : g.nb_dims - i;
    }
    if (packed_in(&g, nchw))
        f->format = CUDNN_TENSOR_NCHW;
    else if (packed_in(&g, nhwc))
        f->format = CUDNN_TENSOR_NHWC;
    else
        return -1;
    f->type = g.type;
    f->nb_dims = g.nb_dims;
    memcpy(f->dims, g.dims, sizeof f->dims);
    return 0;
}

static int conv_geom(const struct bk_conv *c, int nb_spatial, struct convbn_conv_geom *g)
{
    memset(g, 0, sizeof *g);
    if (!c->have_mode || !c->have_compute || c->nb_spatial != nb_spatial ||
        c->nb_pre != nb_spatial || c->nb_post != nb_spatial || c->nb_stride != nb_spatial ||
        c->nb_dilation != nb_spatial)
        return -1;
    for (int i = 0; i < nb_spatial; i++) {
        if (c->pre[i] != c->post[i] || c->pre[i] < 0 || c->pre[i] > INT_MAX ||
            !positive_int(c->stride[i]) || !positive_int(c->dilation[i]))
            return -1;
        g->pad[i] = (int)c->pre[i];
        g->stride[i] = (int)c->stride[i];
        g->dilation[i] = (int)c->dilation[i];
    }
    g->nb_spatial = nb_spatial;
    g->mode = c->mode;
    g->compute_type = c->compute;
    g->math_type = CUDNN_DEFAULT_MATH;
    return 0;
}

/* Recognises a complete convolution operation of direction dir (its operands in forward
 * roles); returns 0 or -1. */
static int recognise(const struct bk_op *op, int dir, struct convbn_backend_conv *r)
{
    memset(r, 0, sizeof *r);
    if ((op->have & HAVE_OP) != HAVE_OP || tensor_geom(&op->x, &r->x) ||
        tensor_geom(&op->y, &r->y) || filter_geom(&op->w, &r->w) ||
        r->w.nb_dims != r->x.nb_dims || r->y.nb_dims != r->x.nb_dims ||
        conv_geom(&op->conv, r->x.nb_dims - 2, &r->conv) || r->x.dims[1] % r->w.dims[1] ||
        r->w.dims[0] % (r->x.dims[1] / r->w.dims[1]))
        return -1;
    r->conv.groups = r->x.dims[1] / r->w.dims[1];
    r->uid_x = op->x.uid;
    r->uid_w = op->w.uid;
    r->uid_y = op->y.uid;
    r->alpha = op->alpha;
    r->beta = op->beta;
    r->direction = dir;
    r->valid = 1;
    return 0;
}

/* Recognises a complete batch-norm inference with FLOAT parameters 1 x C x 1 ... of one
 * geometry; returns 0 or -1. */
static int recognise_bn(const struct bk_norm *n, struct convbn_backend_bn *r)
{
    struct convbn_tensor_geom p;
    memset(r, 0, sizeof *r);
    if ((n->have & HAVE_NORM) != HAVE_NORM || n->mode != CUDNN_BATCH_NORM ||
        n->phase != CUDNN_NORM_FWD_INFERENCE || tensor_geom(&n->t[NORM_X], &r->x) ||
        tensor_geom(&n->t[NORM_Y], &r->y) || tensor_geom(&n->t[NORM_SCALE], &r->params) ||
        r->y.nb_dims != r->x.nb_dims || r->params.nb_dims != r->x.nb_dims ||
        r->params.type != CUDNN_DATA_FLOAT)
        return -1;
    for (int i = 0; i < r->x.nb_dims; i++)
        if (r->y.dims[i] != r->x.dims[i] || r->params.dims[i] != (i == 1 ? r->x.dims[1] : 1))
            return -1;
    for (int i = NORM_BIAS; i < NORM_TENSORS; i++)
        if (tensor_geom(&n->t[i], &p) || !convbn_tensor_same(&p, &r->params))
            return -1;
    r->uid_x = n->t[NORM_X].uid;
    r->uid_y = n->t[NORM_Y].uid;
    r->uid_scale = n->t[NORM_SCALE].uid;
    r->uid_bias = n->t[NORM_BIAS].uid;
    r->uid_mean = n->t[NORM_MEAN].uid;
    r->uid_inv_var = n->t[NORM_INV_VAR].uid;
    r->valid = 1;
    return 0;
}

void convbn_shadow_finalize(cudnnBackendDescriptor_t desc)
{
    pthread_mutex_lock(&shadow_lock);
    struct shadow *s = find(desc);
    if (s && s->type == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR) {
        if (!s->single_conv || recognise(&s->u.op, s->conv_dir, &s->rec))
            memset(&s->rec, 0, sizeof s->rec);
        if (!s->single_norm || recognise_bn(&s->u.norm, &s->bn_rec))
            memset(&s->bn_rec, 0, sizeof s->bn_rec);
    }
    pthread_mutex_unlock(&shadow_lock);
}

/* Returns the pointer of uid in pack, or NULL. */
static void *pointer_of(const struct bk_pack *p, int64_t uid)
{
    if (p->nb_uids != p->nb_pointers)
        return NULL;
    for (int i = 0; i < p->nb_uids; i++)
        if (p->uids[i] == uid)
            return p->pointers[i];
    return NULL;
}

void convbn_shadow_recognised(cudnnBackendDescriptor_t desc, struct convbn_backend_conv *out)
{
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *s = find(desc);
    if (s && carries_graph(s->type))
        *out = s->rec;
    else
        memset(out, 0, sizeof *out);
    pthread_mutex_unlock(&shadow_lock);
}

/* Fills the call from a recognised graph and the pack's pointers; returns 0 or -1. */
static inline int fill_call(const struct convbn_backend_conv *r, const struct bk_pack *p,
                            struct convbn_conv_call *c)
{
    memset(c, 0, sizeof *c);
    c->x_ptr = pointer_of(p, r->uid_x);
    c->w_ptr = pointer_of(p, r->uid_w);
    c->y_ptr = pointer_of(p, r->uid_y);
    if (!c->x_ptr || !c->w_ptr || !c->y_ptr)
        return -1;
    c->api = CONVBN_API_BACKEND;
    c->kind = CONVBN_CONV_PLAIN;
    c->algo = -1;
    c->x = r->x;
    c->y = r->y;
    c->w = r->w;
    c->conv = r->conv;
    c->alpha = r->alpha;
    c->beta = r->beta;
    c->w_bytes = convbn_filter_bytes(&c->w);
    return 0;
}

/* Returns the shadow of plan when it is a live execution plan and pack a variant pack, storing
 * the pack's shadow in *v; NULL otherwise.  Called with the lock held. */
static const struct shadow *executable(cudnnBackendDescriptor_t plan,
                                       cudnnBackendDescriptor_t pack, const struct bk_pack **v)
{
    const struct shadow *p = find(plan), *k = find(pack);
    if (!p || p->type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR || p->doomed || !k ||
        k->type != CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)
        return NULL;
    *v = &k->u.pack;
    return p;
}

/* Fills *out from plan's recognised convolution when its direction is one of the bits of
 * `directions` (1 << enum convbn_backend_dir); returns the direction, or -1. */
static inline int conv_call(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                            unsigned directions, struct convbn_conv_call *out)
{
    const struct bk_pack *v;
    int rc = -1;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *p = executable(plan, pack, &v);
    if (p && p->rec.valid && (directions >> p->rec.direction & 1u) &&
        fill_call(&p->rec, v, out) == 0)
        rc = p->rec.direction;
    pthread_mutex_unlock(&shadow_lock);
    return rc;
}

int convbn_shadow_conv_uids(cudnnBackendDescriptor_t plan, int64_t uids[3])
{
    int rc = -1;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *p = find(plan);
    if (p && p->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && p->rec.valid &&
        p->rec.direction == CONVBN_BACKEND_FWD) {
        uids[0] = p->rec.uid_x;
        uids[1] = p->rec.uid_w;
        uids[2] = p->rec.uid_y;
        rc = 0;
    }
    pthread_mutex_unlock(&shadow_lock);
    return rc;
}

enum convbn_plan_kind convbn_shadow_plan_kind(cudnnBackendDescriptor_t plan)
{
    enum convbn_plan_kind kind = CONVBN_PLAN_OPAQUE;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *p = find(plan);
    if (p && p->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && !p->doomed) {
        if (p->bn_rec.valid)
            kind = CONVBN_PLAN_BN;
        else if (p->rec.valid)
            kind = p->rec.direction == CONVBN_BACKEND_FWD ? CONVBN_PLAN_CONV_FWD
                                                          : CONVBN_PLAN_CONV_BWD;
    }
    pthread_mutex_unlock(&shadow_lock);
    return kind;
}

int convbn_shadow_conv_call(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                            struct convbn_conv_call *out)
{
    return conv_call(plan, pack, 1u << CONVBN_BACKEND_FWD, out) < 0 ? -1 : 0;
}

int convbn_shadow_conv_any(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                           struct convbn_conv_call *out)
{
    return conv_call(plan, pack, ~0u, out);
}

/* Fills the BN call from a recognised graph and the pack's pointers; returns 0 or -1. */
static int fill_bn_call(const struct convbn_backend_bn *r, const struct bk_pack *p,
                        struct convbn_bn_call *b)
{
    memset(b, 0, sizeof *b);
    b->x_ptr = pointer_of(p, r->uid_x);
    b->y_ptr = pointer_of(p, r->uid_y);
    b->scale = pointer_of(p, r->uid_scale);
    b->bias = pointer_of(p, r->uid_bias);
    b->mean = pointer_of(p, r->uid_mean);
    b->var = pointer_of(p, r->uid_inv_var);
    if (!b->x_ptr || !b->y_ptr || !b->scale || !b->bias || !b->mean || !b->var)
        return -1;
    b->api = CONVBN_API_BACKEND;
    b->inv_std = 1;
    b->mode = CUDNN_BATCHNORM_SPATIAL;
    b->x = r->x;
    b->y = r->y;
    b->params = r->params;
    b->alpha = 1.0;
    return 0;
}

int convbn_shadow_bn_call(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                          struct convbn_bn_call *out)
{
    const struct bk_pack *v;
    int rc = -1;
    pthread_mutex_lock(&shadow_lock);
    const struct shadow *p = executable(plan, pack, &v);
    if (p && p->bn_rec.valid)
        rc = fill_bn_call(&p->bn_rec, v, out);
    pthread_mutex_unlock(&shadow_lock);
    return rc;
}

int convbn_shadow_count(void)
{
    pthread_mutex_lock(&shadow_lock);
    int n = (int)HASH_COUNT(table);
    pthread_mutex_unlock(&shadow_lock);
    return n;
}
