/* Builds and runs the shim's own backend graph for a fused pair (include/convbn/backend_graph.h):
 * X (real), W' (real, the program's filter layout), a virtual float conv output, b'
 * (1 x K x 1 ..., y's type) and Y (real, the BN output's geometry), a convolution forward
 * and a pointwise add, an operation graph, and the first engine configuration whose
 * execution plan finalizes, from cuDNN's instant heuristics, then from its fallback list.
 * Every call goes to the real cuDNN, never through the shim's hooks, so none of these
 * descriptors is shadowed.  Owns the descriptors of the graphs it builds, until
 * convbn_fused_graph_destroy. */
#include <stdbool.h>
#include <string.h>

#include "convbn/backend_graph.h"
#include "convbn/backend_run.h"
#include "convbn/real.h"

#define MAX_ENGINE_CONFIGS 8 /* heuristic results tried, best first */

/* The unique ids of the graph's tensors (the virtual one is never in a variant pack). */
enum { UID_X = 1, UID_W, UID_B, UID_Y, UID_CONV_OUT };

/* A graph under construction: the first failing status stops every later step. */
struct builder {
    struct convbn_fused_graph *g;
    cudnnStatus_t st;
};

static cudnnBackendDescriptor_t create(struct builder *b, cudnnBackendDescriptorType_t type)
{
    cudnnBackendDescriptor_t d = NULL;
    if (b->st != CUDNN_STATUS_SUCCESS)
        return NULL;
    if (b->g->nb_descs == CONVBN_FUSED_GRAPH_DESCS) {
        b->st = CUDNN_STATUS_INTERNAL_ERROR;
        return NULL;
    }
    b->st = real_cudnnBackendCreateDescriptor(type, &d);
    if (b->st == CUDNN_STATUS_SUCCESS)
        b->g->descs[b->g->nb_descs++] = d;
    return d;
}

static void set(struct builder *b, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                cudnnBackendAttributeType_t type, int64_t count, const void *values)
{
    if (b->st == CUDNN_STATUS_SUCCESS)
        b->st = real_cudnnBackendSetAttribute(d, name, type, count, values);
}

static void set_desc(struct builder *b, cudnnBackendDescriptor_t d,
                     cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value)
{
    set(b, d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

static void finalize(struct builder *b, cudnnBackendDescriptor_t d)
{
    if (b->st == CUDNN_STATUS_SUCCESS)
        b->st = real_cudnnBackendFinalize(d);
}

/* A tensor descriptor with n dims and strides (int64 copies of the geometry's ints). */
static cudnnBackendDescriptor_t tensor(struct builder *b, int type, int n, const int *dims,
                                       const int64_t *strides, int64_t uid, int64_t alignment,
                                       int is_virtual)
{
    int64_t dims64[CONVBN_MAX_DIMS];
    cudnnDataType_t data_type = (cudnnDataType_t)type;
    bool virtual_flag = is_virtual != 0;
    for (int i = 0; i < n; i++)
        dims64[i] = dims[i];
    cudnnBackendDescriptor_t t = create(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    set(b, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &data_type);
    set(b, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, n, dims64);
    set(b, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, n, strides);
    set(b, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    set(b, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    set(b, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virtual_flag);
    finalize(b, t);
    return t;
}

static cudnnBackendDescriptor_t tensor_of(struct builder *b, const struct convbn_tensor_geom *t,
                                          int type, int64_t uid, int64_t alignment,
                                          int is_virtual)
{
    int64_t strides[CONVBN_MAX_DIMS];
    for (int i = 0; i < t->nb_dims; i++)
        strides[i] = t->strides[i];
    return tensor(b, type, t->nb_dims, t->dims, strides, uid, alignment, is_virtual);
}

/* The packed strides of filter w: K, C, spatial (NCHW) or K, spatial, C (NHWC). */
static void filter_strides(const struct convbn_filter_geom *w, int64_t *strides)
{
    int n = w->nb_dims;
    int64_t next = 1;
    if (w->format == CUDNN_TENSOR_NHWC) {
        strides[1] = 1;
        next = w->dims[1];
        for (int i = n - 1; i >= 2; i--) {
            strides[i] = next;
            next *= w->dims[i];
        }
        strides[0] = next;
        return;
    }
    for (int i = n - 1; i >= 0; i--) {
        strides[i] = next;
        next *= w->dims[i];
    }
}

/* The 1 x K x 1 ... bias of y's rank and type. */
static cudnnBackendDescriptor_t bias_tensor(struct builder *b, const struct convbn_tensor_geom *y,
                                            int64_t alignment)
{
    int dims[CONVBN_MAX_DIMS];
    int64_t strides[CONVBN_MAX_DIMS];
    for (int i = 0; i < y->nb_dims; i++) {
        dims[i] = i == 1 ? y->dims[1] : 1;
        strides[i] = i == 0 ? y->dims[1] : 1;
    }
    return tensor(b, y->type, y->nb_dims, dims, strides, UID_B, alignment, 0);
}

static cudnnBackendDescriptor_t convolution(struct builder *b, const struct convbn_conv_geom *c)
{
    int64_t n = c->nb_spatial, pad[CONVBN_MAX_SPATIAL], stride[CONVBN_MAX_SPATIAL],
            dilation[CONVBN_MAX_SPATIAL];
    cudnnDataType_t compute = (cudnnDataType_t)c->compute_type;
    cudnnConvolutionMode_t mode = (cudnnConvolutionMode_t)c->mode;
    for (int i = 0; i < c->nb_spatial; i++) {
        pad[i] = c->pad[i];
        stride[i] = c->stride[i];
        dilation[i] = c->dilation[i];
    }
    cudnnBackendDescriptor_t d = create(b, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    set(b, d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    set(b, d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    set(b, d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &n);
    set(b, d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, n, pad);
    set(b, d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, n, pad);
    set(b, d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, n, stride);
    set(b, d, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, n, dilation);
    finalize(b, d);
    return d;
}

/* The two operations: conv_out = conv(x, w), y = conv_out + bias. */
static void operations(struct builder *b, const struct convbn_conv_call *conv, int64_t alignment,
                       cudnnBackendDescriptor_t ops[2])
{
    const float alpha = 1.0f, beta = 0.0f;
    int64_t w_strides[CONVBN_MAX_DIMS];
    cudnnPointwiseMode_t add = CUDNN_POINTWISE_ADD;
    cudnnDataType_t precision = CUDNN_DATA_FLOAT;
    filter_strides(&conv->w, w_strides);
    cudnnBackendDescriptor_t x = tensor_of(b, &conv->x, conv->x.type, UID_X, alignment, 0);
    cudnnBackendDescriptor_t w = tensor(b, conv->w.type, conv->w.nb_dims, conv->w.dims, w_strides,
                                        UID_W, alignment, 0);
    cudnnBackendDescriptor_t out =
        tensor_of(b, &conv->y, CUDNN_DATA_FLOAT, UID_CONV_OUT, alignment, 1);
    cudnnBackendDescriptor_t bias = bias_tensor(b, &conv->y, alignment);
    cudnnBackendDescriptor_t y = tensor_of(b, &conv->y, conv->y.type, UID_Y, alignment, 0);
    cudnnBackendDescriptor_t c = convolution(b, &conv->conv);
    ops[0] = create(b, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    set_desc(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
    set_desc(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
    set_desc(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, out);
    set_desc(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, c);
    set(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    set(b, ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    finalize(b, ops[0]);
    cudnnBackendDescriptor_t pw = create(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    set(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &add);
    set(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
    finalize(b, pw);
    ops[1] = create(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set_desc(b, ops[1], CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
    set_desc(b, ops[1], CUDNN_ATTR_OPERATION_POINTWISE_XDESC, out);
    set_desc(b, ops[1], CUDNN_ATTR_OPERATION_POINTWISE_BDESC, bias);
    set_desc(b, ops[1], CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    finalize(b, ops[1]);
}

/* Tries the engine configurations of heuristics `heur` in order; keeps the first whose
 * plan finalizes (and that configuration), destroying the others. */
static void choose_plan(struct builder *b, cudnnHandle_t handle, cudnnBackendDescriptor_t heur)
{
    cudnnBackendDescriptor_t cfgs[MAX_ENGINE_CONFIGS] = {NULL};
    int64_t count = 0;
    int made = 0;
    while (b->st == CUDNN_STATUS_SUCCESS && made < MAX_ENGINE_CONFIGS &&
           (b->st = real_cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
                                                      &cfgs[made])) == CUDNN_STATUS_SUCCESS)
        made++;
    if (b->st == CUDNN_STATUS_SUCCESS)
        b->st = real_cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, made, &count, cfgs);
    int chosen = -1;
    for (int i = 0; b->st == CUDNN_STATUS_SUCCESS && chosen < 0 && i < count && i < made; i++) {
        cudnnBackendDescriptor_t plan = NULL;
        if (real_cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
            CUDNN_STATUS_SUCCESS)
            break;
        if (real_cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                          CUDNN_TYPE_HANDLE, 1, &handle) == CUDNN_STATUS_SUCCESS &&
            real_cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                          &cfgs[i]) == CUDNN_STATUS_SUCCESS &&
            real_cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS) {
            b->g->plan = plan;
            chosen = i;
        } else {
            real_cudnnBackendDestroyDescriptor(plan);
        }
    }
    for (int i = 0; i < made; i++)
        if (i != chosen)
            real_cudnnBackendDestroyDescriptor(cfgs[i]);
    if (chosen >= 0) {
        b->g->descs[b->g->nb_descs++] = cfgs[chosen];
        b->g->descs[b->g->nb_descs++] = b->g->plan;
    } else if (b->st == CUDNN_STATUS_SUCCESS) {
        b->st = CUDNN_STATUS_NOT_SUPPORTED;
    }
}

/* Asks the heuristics of `mode` for graph's engine configurations and keeps the first
 * whose plan finalizes. */
static void plan_with(struct builder *b, cudnnHandle_t handle, cudnnBackendDescriptor_t graph,
                      cudnnBackendHeurMode_t mode)
{
    cudnnBackendDescriptor_t heur = create(b, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    set_desc(b, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    set(b, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    finalize(b, heur);
    if (b->st == CUDNN_STATUS_SUCCESS && b->g->nb_descs + 2 > CONVBN_FUSED_GRAPH_DESCS)
        b->st = CUDNN_STATUS_INTERNAL_ERROR;
    choose_plan(b, handle, heur);
}

cudnnStatus_t convbn_fused_graph_build(struct convbn_fused_graph *g, cudnnHandle_t handle,
                                       const struct convbn_conv_call *conv, int64_t alignment)
{
    struct builder b = {g, CUDNN_STATUS_SUCCESS};
    cudnnBackendDescriptor_t ops[2] = {NULL, NULL};
    int64_t size = 0, n = 0;
    memset(g, 0, sizeof *g);
    operations(&b, conv, alignment, ops);
    cudnnBackendDescriptor_t graph = create(&b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    set(&b, graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    set(&b, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 2, ops);
    finalize(&b, graph);
    plan_with(&b, handle, graph, CUDNN_HEUR_MODE_INSTANT);
    if (CUDNN_STATUS_CATEGORY(b.st) == CUDNN_STATUS_NOT_SUPPORTED) {
        b.st = CUDNN_STATUS_SUCCESS; /* no instant engine: try the fallback list */
        plan_with(&b, handle, graph, CUDNN_HEUR_MODE_FALLBACK);
    }
    if (b.st == CUDNN_STATUS_SUCCESS)
        b.st = real_cudnnBackendGetAttribute(g->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, &n, &size);
    if (b.st == CUDNN_STATUS_SUCCESS && (n != 1 || size < 0))
        b.st = CUDNN_STATUS_BAD_PARAM;
    g->workspace = size;
    if (b.st != CUDNN_STATUS_SUCCESS)
        convbn_fused_graph_destroy(g);
    return b.st;
}

cudnnBackendDescriptor_t convbn_fused_graph_pack(void *const pointers[CONVBN_FUSED_GRAPH_DATA],
                                                 void *workspace)
{
    static const int64_t uids[CONVBN_FUSED_GRAPH_DATA] = {UID_X, UID_W, UID_B, UID_Y};
    return convbn_backend_pack(uids, pointers, CONVBN_FUSED_GRAPH_DATA, workspace);
}

void convbn_fused_graph_destroy(struct convbn_fused_graph *g)
{
    for (int i = g->nb_descs - 1; i >= 0; i--) /* the plan first, the tensors last */
        real_cudnnBackendDestroyDescriptor(g->descs[i]);
    memset(g, 0, sizeof *g);
}
