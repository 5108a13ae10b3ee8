/* Check suite for the backend (graph) API of the cuDNN emulation (tests/emu/cudnn_backend_*.c).
 * Descriptors: attribute set/get round trips with element counts, defaults, wrong attribute
 * and descriptor types, the finalized/unfinalized rules, copies of descriptor values.  Graphs:
 * finalize errors and the NOT_SUPPORTED codes of graphs the emulation has no engine for,
 * heuristics, engines, plans and their workspace, execute errors.  Results: every supported
 * pattern (convolution forward, backward data, backward filter, forward with per-channel
 * scale (MUL) + bias (ADD) epilogues, forward + full-tensor ADD, batch normalization
 * inference), FLOAT and HALF, NCHW and NHWC inputs with padded outputs, against naive loops
 * written here (accumulation in double over ref_tensor.h's stride arithmetic; inputs are
 * k/32 values so every fp32 sum is exact and ref_expect's tolerance covers the final
 * rounding).  The emulation's error codes are its reading of cuDNN 9's documentation; tests
 * that check a category use CUDNN_STATUS_CATEGORY. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "ref_tensor.h"
#include "support/run_suite.h"

#define ck_assert_status_ok(call) ck_assert_int_eq((call), CUDNN_STATUS_SUCCESS)
#define MAX_CREATED 256
#define CONV_CASES 8 /* FLOAT/HALF x NCHW/NHWC x two geometries */
#define EPILOGUE_WORKSPACE 1024

static cudnnHandle_t handle;
static cudnnBackendDescriptor_t created[MAX_CREATED];
static int nb_created;

static void setup(void)
{
    ck_assert_status_ok(cudnnCreate(&handle));
    nb_created = 0;
}

static void teardown(void)
{
    for (int i = 0; i < nb_created; i++)
        if (created[i])
            ck_assert_int_eq(cudnnBackendDestroyDescriptor(created[i]), CUDNN_STATUS_SUCCESS);
    cudnnDestroy(handle);
}

/* A new descriptor, destroyed by teardown. */
static cudnnBackendDescriptor_t create(cudnnBackendDescriptorType_t type)
{
    cudnnBackendDescriptor_t d = NULL;
    ck_assert_status_ok(cudnnBackendCreateDescriptor(type, &d));
    ck_assert_int_lt(nb_created, MAX_CREATED);
    created[nb_created++] = d;
    return d;
}

/* Destroys d now (teardown skips it). */
static void destroy_now(cudnnBackendDescriptor_t d)
{
    for (int i = 0; i < nb_created; i++)
        if (created[i] == d)
            created[i] = NULL;
    ck_assert_status_ok(cudnnBackendDestroyDescriptor(d));
}

static void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                cudnnBackendAttributeType_t type, int64_t n, const void *values)
{
    ck_assert_status_ok(cudnnBackendSetAttribute(d, name, type, n, values));
}

static void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                     cudnnBackendDescriptor_t value)
{
    set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

static void set_int64(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, int64_t v)
{
    set(d, name, CUDNN_TYPE_INT64, 1, &v);
}

static int64_t get_int64(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name)
{
    int64_t v = -1, n = -1;
    ck_assert_status_ok(cudnnBackendGetAttribute(d, name, CUDNN_TYPE_INT64, 1, &n, &v));
    ck_assert_int_eq(n, 1);
    return v;
}

/* ---- descriptor builders ---- */

static cudnnBackendDescriptor_t unfinalized_tensor(int64_t uid, cudnnDataType_t type, int nb,
                                                   const int64_t *dims, const int64_t *strides)
{
    cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, nb, dims);
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, nb, strides);
    set_int64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
    set_int64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
    return t;
}

static cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t type, const int64_t dims[4],
                                       const int64_t strides[4], bool is_virtual)
{
    cudnnBackendDescriptor_t t = unfinalized_tensor(uid, type, 4, dims, strides);
    set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    ck_assert_status_ok(cudnnBackendFinalize(t));
    return t;
}

/* A packed NCHW tensor. */
static cudnnBackendDescriptor_t packed(int64_t uid, cudnnDataType_t type, const int64_t dims[4],
                                       bool is_virtual)
{
    int64_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
    return tensor(uid, type, dims, strides, is_virtual);
}

/* The backend tensor of a 4-d ref_tensor. */
static cudnnBackendDescriptor_t tensor_of(const struct ref_tensor *r, int64_t uid)
{
    int64_t dims[4] = {r->dims[0], r->dims[1], r->dims[3], r->dims[4]};
    int64_t strides[4] = {r->strides[0], r->strides[1], r->strides[3], r->strides[4]};
    return tensor(uid, r->type, dims, strides, false);
}

/* One 2-d convolution: x is n x c x h x w, the filter k x c/groups x r x s. */
struct geometry {
    int n, c, h, w, k, r, s, groups, pad, stride, dilation;
    cudnnConvolutionMode_t mode;
};

static const struct geometry geometries[2] = {
    {2, 4, 5, 6, 6, 3, 3, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},
    {1, 4, 7, 6, 4, 2, 3, 2, 1, 2, 2, CUDNN_CONVOLUTION},
};

static int out_extent(const struct geometry *g, int in, int f)
{
    return (in + 2 * g->pad - ((f - 1) * g->dilation + 1)) / g->stride + 1;
}

static cudnnBackendDescriptor_t convolution(const struct geometry *g, cudnnDataType_t compute)
{
    cudnnBackendDescriptor_t c = create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    int64_t pad[2] = {g->pad, g->pad}, stride[2] = {g->stride, g->stride};
    int64_t dilation[2] = {g->dilation, g->dilation};
    set(c, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    set(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &g->mode);
    set_int64(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
    set(c, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    set(c, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    set(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
    set(c, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation);
    ck_assert_status_ok(cudnnBackendFinalize(c));
    return c;
}

enum direction { FORWARD, BACKWARD_DATA, BACKWARD_FILTER };

/* Attribute names of the three convolution operations. */
static const struct {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t alpha, beta, conv, x, w, y;
} conv_ops[3] = {
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y},
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY},
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY},
};

/* A finalized convolution operation of direction dir (x, w, y: x/dx, w/dw, y/dy). */
static cudnnBackendDescriptor_t conv_op(enum direction dir, cudnnBackendDescriptor_t conv,
                                        cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t w,
                                        cudnnBackendDescriptor_t y, float alpha, float beta)
{
    cudnnBackendDescriptor_t op = create(conv_ops[dir].type);
    set(op, conv_ops[dir].alpha, CUDNN_TYPE_FLOAT, 1, &alpha);
    set(op, conv_ops[dir].beta, CUDNN_TYPE_FLOAT, 1, &beta);
    set_desc(op, conv_ops[dir].conv, conv);
    set_desc(op, conv_ops[dir].x, x);
    set_desc(op, conv_ops[dir].w, w);
    set_desc(op, conv_ops[dir].y, y);
    ck_assert_status_ok(cudnnBackendFinalize(op));
    return op;
}

/* y = mode(alpha1 * x, alpha2 * b); b may be NULL. */
static cudnnBackendDescriptor_t pointwise_op(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                                             cudnnBackendDescriptor_t b,
                                             cudnnBackendDescriptor_t y, float alpha1,
                                             float alpha2)
{
    cudnnBackendDescriptor_t pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    ck_assert_status_ok(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b)
        set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &alpha1);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &alpha2);
    ck_assert_status_ok(cudnnBackendFinalize(op));
    return op;
}

/* Norm forward with x, y and params = {mean, inverse variance, scale, bias}; epsilon may be
 * NULL. */
static cudnnBackendDescriptor_t norm_op(cudnnBackendNormMode_t mode,
                                        cudnnBackendNormFwdPhase_t phase,
                                        cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y,
                                        const cudnnBackendDescriptor_t params[4],
                                        cudnnBackendDescriptor_t epsilon)
{
    static const cudnnBackendAttributeName_t names[4] = {
        CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC,
        CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC};
    cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    set(op, CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode);
    set(op, CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, x);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, y);
    for (int i = 0; i < 4; i++)
        set_desc(op, names[i], params[i]);
    if (epsilon)
        set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_EPSILON_DESC, epsilon);
    ck_assert_status_ok(cudnnBackendFinalize(op));
    return op;
}

/* Finalizes a graph of ops into *graph; returns the finalize status. */
static cudnnStatus_t graph_status(const cudnnBackendDescriptor_t *ops, int n,
                                  cudnnBackendDescriptor_t *graph)
{
    *graph = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    set(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    set(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, ops);
    return cudnnBackendFinalize(*graph);
}

static cudnnBackendDescriptor_t graph_of(const cudnnBackendDescriptor_t *ops, int n)
{
    cudnnBackendDescriptor_t g;
    ck_assert_status_ok(graph_status(ops, n, &g));
    return g;
}

/* Heuristics (mode INSTANT) for graph, finalized. */
static cudnnBackendDescriptor_t heuristics(cudnnBackendDescriptor_t graph)
{
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_INSTANT;
    cudnnBackendDescriptor_t h = create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    set_desc(h, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    set(h, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    ck_assert_status_ok(cudnnBackendFinalize(h));
    return h;
}

static cudnnBackendDescriptor_t plan_from_cfg(cudnnBackendDescriptor_t cfg)
{
    cudnnBackendDescriptor_t plan = create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
    ck_assert_status_ok(cudnnBackendFinalize(plan));
    return plan;
}

/* The plan of the heuristics' first engine configuration. */
static cudnnBackendDescriptor_t plan_for(cudnnBackendDescriptor_t graph)
{
    cudnnBackendDescriptor_t cfg = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t n = 0;
    ck_assert_status_ok(cudnnBackendGetAttribute(heuristics(graph), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &cfg));
    ck_assert_int_ge(n, 1);
    return plan_from_cfg(cfg);
}

/* A finalized variant pack of n tensors and workspace. */
static cudnnBackendDescriptor_t variant_pack(const int64_t *uids, void *const *pointers, int n,
                                             void *workspace)
{
    cudnnBackendDescriptor_t pack = create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, pointers);
    set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    ck_assert_status_ok(cudnnBackendFinalize(pack));
    return pack;
}

static cudnnStatus_t execute(cudnnBackendDescriptor_t plan, const int64_t *uids,
                             void *const *pointers, int n, void *workspace)
{
    return cudnnBackendExecute(handle, plan, variant_pack(uids, pointers, n, workspace));
}

/* ---- references ---- */

/* One convolution case: x, w and y (for backward: dx, dw, dy) with their data. */
struct conv_case {
    struct geometry g;
    struct ref_tensor x, w, y;
    uint64_t rng;
};

/* Case i: type FLOAT/HALF (bit 0), x and w NCHW/NHWC (bit 1), geometry (bit 2); y padded in
 * the other layout.  Every position NaN. */
static void conv_case_init(struct conv_case *cc, int i)
{
    cudnnDataType_t type = i & 1 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    enum ref_layout in = i & 2 ? REF_NHWC : REF_NCHW;
    enum ref_layout out = i & 2 ? REF_NCHW_PADDED : REF_NHWC_PADDED;
    const struct geometry *g = &geometries[i >> 2];
    int xd[5] = {g->n, g->c, 1, g->h, g->w}, wd[5] = {g->k, g->c / g->groups, 1, g->r, g->s};
    int yd[5] = {g->n, g->k, 1, out_extent(g, g->h, g->r), out_extent(g, g->w, g->s)};
    cc->g = *g;
    cc->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    ref_tensor_init(&cc->x, type, 4, xd, in, &cc->rng);
    ref_tensor_init(&cc->w, type, 4, wd, in, &cc->rng);
    ref_tensor_init(&cc->y, type, 4, yd, out, &cc->rng);
}

static void conv_case_free(struct conv_case *cc)
{
    ref_tensor_free(&cc->x);
    ref_tensor_free(&cc->w);
    ref_tensor_free(&cc->y);
}

static struct ref_tensor *written(struct conv_case *cc, enum direction dir)
{
    return dir == FORWARD ? &cc->y : dir == BACKWARD_DATA ? &cc->x : &cc->w;
}

/* Input coordinate output coordinate o reads through tap t, or -1 in the padding. */
static int input_coord(const struct geometry *g, int o, int t, int extent)
{
    int i = o * g->stride - g->pad + t * g->dilation;
    return i >= 0 && i < extent ? i : -1;
}

/* Stored filter index of tap t (true convolution mirrors the filter). */
static int stored(const struct geometry *g, int t, int extent)
{
    return g->mode == CUDNN_CONVOLUTION ? extent - 1 - t : t;
}

/* Adds to out[] (the logical order of dir's written tensor) every product that feeds output
 * point (n, k, oh, ow): y[n,k,oh,ow] gets x[n,ci,ih,iw] * w[k,c,r',s'] over all taps. */
static void accumulate_point(struct conv_case *cc, enum direction dir, int n, int k, int oh,
                             int ow, double *out)
{
    const struct geometry *g = &cc->g;
    int cpg = g->c / g->groups, kpg = g->k / g->groups;
    for (int c = 0; c < cpg; c++) {
        for (int r = 0; r < g->r; r++) {
            for (int s = 0; s < g->s; s++) {
                int ih = input_coord(g, oh, r, g->h), iw = input_coord(g, ow, s, g->w);
                int ci = (k / kpg) * cpg + c, rs = stored(g, r, g->r), ss = stored(g, s, g->s);
                if (ih < 0 || iw < 0)
                    continue;
                double xv = ref_get(&cc->x, n, ci, 0, ih, iw);
                double wv = ref_get(&cc->w, k, c, 0, rs, ss);
                double yv = ref_get(&cc->y, n, k, 0, oh, ow);
                if (dir == FORWARD)
                    out[ref_index(&cc->y, n, k, 0, oh, ow)] += xv * wv;
                else if (dir == BACKWARD_DATA)
                    out[ref_index(&cc->x, n, ci, 0, ih, iw)] += yv * wv;
                else
                    out[ref_index(&cc->w, k, c, 0, rs, ss)] += xv * yv;
            }
        }
    }
}

static void conv_reference(struct conv_case *cc, enum direction dir, double *out)
{
    REF_FOR_EACH(&cc->y, n, k, d, oh, ow)
        accumulate_point(cc, dir, n, k, oh, ow, out);
}

/* want = alpha * product sums + beta * t's current values (t not read when beta == 0). */
static double *blended(struct conv_case *cc, enum direction dir, double alpha, double beta)
{
    struct ref_tensor *t = written(cc, dir);
    double *want = calloc(ref_count(t), sizeof(double));
    ck_assert_ptr_nonnull(want);
    conv_reference(cc, dir, want);
    REF_FOR_EACH(t, n, c, d, h, w) {
        size_t e = ref_index(t, n, c, d, h, w);
        want[e] = alpha * want[e] + (beta != 0.0 ? beta * ref_get(t, n, c, d, h, w) : 0.0);
    }
    return want;
}

/* ---- descriptors ---- */

START_TEST(tensor_round_trip)
{
    const int64_t dims[4] = {2, 3, 5, 7}, strides[4] = {105, 1, 21, 3};
    cudnnBackendDescriptor_t t = unfinalized_tensor(42, CUDNN_DATA_HALF, 4, dims, strides);
    int64_t got[8] = {0}, n = 0;
    ck_assert_int_eq(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 8,
                                              &n, got),
                     CUDNN_STATUS_NOT_INITIALIZED);
    ck_assert_status_ok(cudnnBackendFinalize(t));
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 8, &n, got));
    ck_assert_int_eq(n, 4);
    ck_assert_mem_eq(got, dims, sizeof dims);
    got[2] = -7;
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 2, &n, got));
    ck_assert_int_eq(n, 4); /* the count held, though only 2 were written */
    ck_assert(got[0] == 105 && got[1] == 1 && got[2] == -7);
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 0, &n, NULL));
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(get_int64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID), 42);
    ck_assert_int_eq(get_int64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT), 16);
    ck_assert_int_eq(get_int64(t, CUDNN_ATTR_TENSOR_VECTOR_COUNT), 1); /* default */
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &n,
                                &type));
    ck_assert_int_eq(type, CUDNN_DATA_HALF);
    bool is_virtual = true;
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &n,
                                &is_virtual));
    ck_assert(n == 1 && !is_virtual);
    int32_t small[8];
    ck_assert_int_eq(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT32, 8,
                                              &n, small),
                     CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE);
    ck_assert_int_eq(cudnnBackendGetAttribute(t, CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
                                              CUDNN_TYPE_DATA_TYPE, 1, &n, &type),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, -1,
                                              &n, got),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4,
                                              &n, NULL),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    ck_assert_status_ok(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, NULL, got));
}
END_TEST

START_TEST(tensor_set_errors)
{
    const int64_t dims[9] = {2, 3, 5, 7, 1, 1, 1, 1, 1}, strides[4] = {105, 35, 7, 1};
    cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    int32_t dims32[4] = {2, 3, 5, 7};
    cudnnDataType_t bad_type = (cudnnDataType_t)999;
    unsigned char not_bool = 2;
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT32, 4,
                                              dims32),
                     CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 9,
                                              dims),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 0,
                                              dims),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1,
                                              NULL),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE,
                                              1, &bad_type),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN,
                                              1, &not_bool),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_POINTWISE_MODE,
                                              CUDNN_TYPE_POINTWISE_MODE, 1, dims32),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(NULL, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64,
                                              1, dims),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    /* Missing attributes, then mismatched counts, keep it settable. */
    ck_assert_int_eq(cudnnBackendFinalize(t), CUDNN_STATUS_BAD_PARAM);
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 3, strides);
    set_int64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, 1);
    set_int64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 4);
    ck_assert_int_eq(cudnnBackendFinalize(t), CUDNN_STATUS_BAD_PARAM);
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    bool yes = true;
    set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes);
    set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes);
    ck_assert_int_eq(cudnnBackendFinalize(t), CUDNN_STATUS_BAD_PARAM);
    bool no = false;
    set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &no);
    set_int64(t, CUDNN_ATTR_TENSOR_VECTOR_COUNT, 4);
    ck_assert_int_eq(CUDNN_STATUS_CATEGORY(cudnnBackendFinalize(t)), CUDNN_STATUS_NOT_SUPPORTED);
    set_int64(t, CUDNN_ATTR_TENSOR_VECTOR_COUNT, 1);
    ck_assert_status_ok(cudnnBackendFinalize(t));
    ck_assert_int_eq(cudnnBackendFinalize(t), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1,
                                              dims),
                     CUDNN_STATUS_NOT_INITIALIZED);
}
END_TEST

START_TEST(convolution_round_trip)
{
    cudnnBackendDescriptor_t c = convolution(&geometries[1], CUDNN_DATA_FLOAT);
    int64_t got[6] = {0}, n = 0;
    ck_assert_status_ok(cudnnBackendGetAttribute(c, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 6, &n, got));
    ck_assert(n == 2 && got[0] == 2 && got[1] == 2);
    ck_assert_status_ok(cudnnBackendGetAttribute(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 6, &n,
                                got));
    ck_assert(n == 2 && got[0] == 2 && got[1] == 2);
    ck_assert_int_eq(get_int64(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS), 2);
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    ck_assert_status_ok(cudnnBackendGetAttribute(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1,
                                &n, &mode));
    ck_assert_int_eq(mode, CUDNN_CONVOLUTION);

    cudnnBackendDescriptor_t bad = create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    int64_t one[2] = {1, 1}, negative[2] = {1, -1};
    set(bad, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    set(bad, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    set_int64(bad, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
    set(bad, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 1, one);
    set(bad, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, one);
    set(bad, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, one);
    set(bad, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, one);
    ck_assert_int_eq(cudnnBackendFinalize(bad), CUDNN_STATUS_BAD_PARAM); /* 1 pre padding */
    set(bad, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, negative);
    ck_assert_int_eq(cudnnBackendFinalize(bad), CUDNN_STATUS_BAD_PARAM);
    set(bad, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, one);
    ck_assert_status_ok(cudnnBackendFinalize(bad));
}
END_TEST

START_TEST(operation_attributes)
{
    struct conv_case cc;
    conv_case_init(&cc, 0);
    cudnnBackendDescriptor_t x = tensor_of(&cc.x, 1), w = tensor_of(&cc.w, 2);
    cudnnBackendDescriptor_t y = tensor_of(&cc.y, 3);
    cudnnBackendDescriptor_t conv = convolution(&cc.g, CUDNN_DATA_FLOAT);
    cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    const int64_t dims[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t loose = unfinalized_tensor(9, CUDNN_DATA_FLOAT, 4, dims, dims);
    cudnnBackendDescriptor_t none = NULL;
    ck_assert_int_eq(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &loose),
                     CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED);
    ck_assert_int_eq(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv),
                     CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE);
    ck_assert_int_eq(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &none),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    double alpha = 0.75;
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_DOUBLE, 1, &alpha);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, x); /* wrong dims */
    ck_assert_int_eq(cudnnBackendFinalize(op), CUDNN_STATUS_BAD_PARAM); /* beta missing */
    float beta = 0.0f;
    set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    ck_assert_int_eq(cudnnBackendFinalize(op), CUDNN_STATUS_BAD_PARAM);
    set_desc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y);
    ck_assert_status_ok(cudnnBackendFinalize(op));

    float alpha_f = 0.0f;
    int64_t n = 0;
    ck_assert_status_ok(cudnnBackendGetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                CUDNN_TYPE_FLOAT, 1, &n, &alpha_f));
    ck_assert(n == 1 && alpha_f == 0.75f);
    cudnnBackendDescriptor_t copy = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    ck_assert_status_ok(cudnnBackendGetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &copy));
    ck_assert_int_eq(get_int64(copy, CUDNN_ATTR_TENSOR_UNIQUE_ID), 3); /* finalized copy */
    ck_assert_int_eq(cudnnBackendGetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &conv),
                     CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE);

    cudnnBackendDescriptor_t pw = pointwise_op(CUDNN_POINTWISE_IDENTITY, y, NULL, x, 1.0f, 1.0f);
    double alpha2 = 0.0;
    ck_assert_status_ok(cudnnBackendGetAttribute(pw, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_DOUBLE, 1, &n,
                                &alpha2));
    ck_assert(n == 1 && alpha2 == 1.0);
    ck_assert_status_ok(cudnnBackendGetAttribute(pw, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &copy));
    ck_assert_int_eq(n, 0); /* never set */
    conv_case_free(&cc);
}
END_TEST

START_TEST(descriptor_lifetimes)
{
    ck_assert_int_eq(cudnnBackendCreateDescriptor(CUDNN_BACKEND_MATMUL_DESCRIPTOR,
                                                  &(cudnnBackendDescriptor_t){NULL}),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, NULL),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    ck_assert_status_ok(cudnnBackendDestroyDescriptor(NULL));
    cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    ck_assert_int_eq(cudnnBackendInitialize(t), CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnBackendFinalize(create(CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR)),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnBackendDescriptor_t knob = create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    cudnnBackendKnobType_t type = CUDNN_KNOB_TYPE_TILE_SIZE;
    set(knob, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    set_int64(knob, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, 3);
    ck_assert_status_ok(cudnnBackendFinalize(knob));
    ck_assert_int_eq(get_int64(knob, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE), 3);
}
END_TEST

/* Descriptor values are copies: the graph survives its parts, the plan its graph. */
START_TEST(descriptors_are_copied)
{
    struct conv_case cc;
    conv_case_init(&cc, 5);
    ref_fill(&cc.x, &cc.rng, -64, 64);
    ref_fill(&cc.w, &cc.rng, -64, 64);
    double *want = blended(&cc, FORWARD, 1.0, 0.0);
    cudnnBackendDescriptor_t parts[5] = {tensor_of(&cc.x, 'x'), tensor_of(&cc.w, 'w'),
                                         tensor_of(&cc.y, 'y'),
                                         convolution(&cc.g, CUDNN_DATA_FLOAT)};
    parts[4] = conv_op(FORWARD, parts[3], parts[0], parts[1], parts[2], 1.0f, 0.0f);
    cudnnBackendDescriptor_t graph = graph_of(&parts[4], 1);
    for (int i = 0; i < 5; i++)
        destroy_now(parts[i]);
    cudnnBackendDescriptor_t plan = plan_for(graph);
    destroy_now(graph);
    int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {cc.x.data, cc.w.data, cc.y.data};
    ck_assert_status_ok(execute(plan, uids, pointers, 3, NULL));
    ref_expect(&cc.y, want, "y");
    free(want);
    conv_case_free(&cc);
}
END_TEST

/* ---- graphs, heuristics, plans ---- */

/* A finalized forward convolution of case 0 with a virtual output 'c', for graph tests. */
struct conv_parts {
    struct conv_case cc;
    cudnnBackendDescriptor_t x, w, c, y, op;
};

static void conv_parts_init(struct conv_parts *p)
{
    conv_case_init(&p->cc, 0);
    int64_t dims[4] = {p->cc.y.dims[0], p->cc.y.dims[1], p->cc.y.dims[3], p->cc.y.dims[4]};
    p->x = tensor_of(&p->cc.x, 'x');
    p->w = tensor_of(&p->cc.w, 'w');
    p->y = tensor_of(&p->cc.y, 'y');
    p->c = packed('c', CUDNN_DATA_FLOAT, dims, true);
    p->op = conv_op(FORWARD, convolution(&p->cc.g, CUDNN_DATA_FLOAT), p->x, p->w, p->c, 1.0f,
                    0.0f);
}

static cudnnStatus_t two_op_status(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b)
{
    cudnnBackendDescriptor_t ops[2] = {a, b}, g;
    return graph_status(ops, 2, &g);
}

START_TEST(unsupported_graphs)
{
    struct conv_parts p;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t g;
    cudnnBackendDescriptor_t conv = convolution(&p.cc.g, CUDNN_DATA_FLOAT);
    cudnnBackendDescriptor_t real = conv_op(FORWARD, conv, p.x, p.w, p.y, 1.0f, 0.0f);
    /* Two convolutions; a lone convolution into a virtual tensor; a lone pointwise op. */
    ck_assert_int_eq(two_op_status(real, conv_op(FORWARD, conv, p.x, p.w, p.c, 1.0f, 0.0f)),
                     CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    ck_assert_int_eq(graph_status(&p.op, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    cudnnBackendDescriptor_t relu = pointwise_op(CUDNN_POINTWISE_RELU_FWD, p.c, NULL, p.y, 1, 1);
    ck_assert_int_eq(graph_status(&relu, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    ck_assert_int_eq(two_op_status(p.op, relu), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    /* An epilogue operand that is neither full nor per channel. */
    int64_t row[4] = {1, 1, p.cc.y.dims[3], p.cc.y.dims[4]};
    cudnnBackendDescriptor_t odd = packed('o', CUDNN_DATA_FLOAT, row, false);
    ck_assert_int_eq(two_op_status(p.op, pointwise_op(CUDNN_POINTWISE_ADD, p.c, odd, p.y, 1, 1)),
                     CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
    /* Beta with a virtual output; a convolution output read twice. */
    cudnnBackendDescriptor_t blended_op = conv_op(FORWARD, conv, p.x, p.w, p.c, 1.0f, 1.0f);
    cudnnBackendDescriptor_t add = pointwise_op(CUDNN_POINTWISE_ADD, p.c, p.y, p.y, 1, 1);
    ck_assert_int_eq(CUDNN_STATUS_CATEGORY(two_op_status(blended_op, add)),
                     CUDNN_STATUS_NOT_SUPPORTED);
    cudnnBackendDescriptor_t twice = pointwise_op(CUDNN_POINTWISE_MUL, p.c, p.c, p.y, 1, 1);
    ck_assert_int_eq(two_op_status(p.op, twice), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    /* Asymmetric padding; DOUBLE data. */
    cudnnBackendDescriptor_t asym = create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    int64_t ones[2] = {1, 1}, pre[2] = {0, 0}, post[2] = {2, 2};
    set(asym, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    set(asym, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    set_int64(asym, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
    set(asym, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pre);
    set(asym, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post);
    set(asym, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, ones);
    set(asym, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, ones);
    ck_assert_status_ok(cudnnBackendFinalize(asym));
    cudnnBackendDescriptor_t asym_op = conv_op(FORWARD, asym, p.x, p.w, p.y, 1.0f, 0.0f);
    ck_assert_int_eq(graph_status(&asym_op, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_PADDING);
    int64_t xd[4] = {2, 4, 5, 6}, wd[4] = {6, 4, 3, 3}, yd[4] = {2, 6, 5, 6};
    cudnnBackendDescriptor_t dx = packed(1, CUDNN_DATA_DOUBLE, xd, false);
    cudnnBackendDescriptor_t dw = packed(2, CUDNN_DATA_DOUBLE, wd, false);
    cudnnBackendDescriptor_t dy = packed(3, CUDNN_DATA_DOUBLE, yd, false);
    cudnnBackendDescriptor_t doubles = conv_op(FORWARD, conv, dx, dw, dy, 1.0f, 0.0f);
    ck_assert_int_eq(graph_status(&doubles, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE);
    conv_case_free(&p.cc);
}
END_TEST

START_TEST(bad_graphs)
{
    struct conv_parts p;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t g = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    ck_assert_int_eq(cudnnBackendFinalize(g), CUDNN_STATUS_BAD_PARAM); /* no ops */
    ck_assert_int_eq(cudnnBackendSetAttribute(g, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p.x),
                     CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE);
    cudnnBackendDescriptor_t many[9];
    for (int i = 0; i < 9; i++)
        many[i] = p.op;
    ck_assert_int_eq(CUDNN_STATUS_CATEGORY(cudnnBackendSetAttribute(
                         g, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 9, many)),
                     CUDNN_STATUS_NOT_SUPPORTED);
    cudnnHandle_t forged = (cudnnHandle_t)&many;
    ck_assert_int_eq(cudnnBackendSetAttribute(g, CUDNN_ATTR_OPERATIONGRAPH_HANDLE,
                                              CUDNN_TYPE_HANDLE, 1, &forged),
                     CUDNN_STATUS_BAD_PARAM);
    /* Two tensors with one unique id but different shapes. */
    int64_t dims[4] = {p.cc.y.dims[0], p.cc.y.dims[1], p.cc.y.dims[3], p.cc.y.dims[4]};
    int64_t other[4] = {dims[0], dims[1], dims[2], dims[3] + 1};
    cudnnBackendDescriptor_t clash = packed('y', CUDNN_DATA_FLOAT, other, false);
    cudnnBackendDescriptor_t add = pointwise_op(CUDNN_POINTWISE_ADD, p.c, clash, p.y, 1, 1);
    ck_assert_int_eq(two_op_status(p.op, add), CUDNN_STATUS_BAD_PARAM);
    /* Norm forward without its mean. */
    cudnnBackendDescriptor_t norm = create(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    cudnnBackendNormMode_t mode = CUDNN_BATCH_NORM;
    cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_INFERENCE;
    set(norm, CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode);
    set(norm, CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase);
    set_desc(norm, CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, p.y);
    set_desc(norm, CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, p.y);
    ck_assert_int_eq(cudnnBackendFinalize(norm), CUDNN_STATUS_BAD_PARAM);
    /* A pointwise ADD without b. */
    cudnnBackendDescriptor_t pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    cudnnPointwiseMode_t add_mode = CUDNN_POINTWISE_ADD;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &add_mode);
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    ck_assert_status_ok(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t lone = create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set_desc(lone, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
    set_desc(lone, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, p.c);
    set_desc(lone, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, p.y);
    ck_assert_int_eq(cudnnBackendFinalize(lone), CUDNN_STATUS_BAD_PARAM);
    conv_case_free(&p.cc);
}
END_TEST

START_TEST(unsupported_norms)
{
    const int64_t x_dims[4] = {2, 3, 4, 4}, p_dims[4] = {1, 3, 1, 1};
    cudnnBackendDescriptor_t x = packed(1, CUDNN_DATA_FLOAT, x_dims, false);
    cudnnBackendDescriptor_t y = packed(2, CUDNN_DATA_FLOAT, x_dims, false);
    cudnnBackendDescriptor_t params[4], g;
    for (int i = 0; i < 4; i++)
        params[i] = packed(10 + i, CUDNN_DATA_FLOAT, p_dims, false);
    cudnnBackendDescriptor_t training =
        norm_op(CUDNN_BATCH_NORM, CUDNN_NORM_FWD_TRAINING, x, y, params, NULL);
    ck_assert_int_eq(graph_status(&training, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    cudnnBackendDescriptor_t layer =
        norm_op(CUDNN_LAYER_NORM, CUDNN_NORM_FWD_INFERENCE, x, y, params, NULL);
    ck_assert_int_eq(graph_status(&layer, 1, &g), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
    cudnnBackendDescriptor_t wrong = packed(14, CUDNN_DATA_FLOAT, x_dims, false);
    cudnnBackendDescriptor_t bad_params[4] = {params[0], wrong, params[2], params[3]};
    cudnnBackendDescriptor_t op = create(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    cudnnBackendNormMode_t mode = CUDNN_BATCH_NORM;
    cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_INFERENCE;
    set(op, CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode);
    set(op, CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, x);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, y);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, bad_params[0]);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, bad_params[1]);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, bad_params[2]);
    set_desc(op, CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, bad_params[3]);
    ck_assert_int_eq(cudnnBackendFinalize(op), CUDNN_STATUS_BAD_PARAM); /* not 1 x C x 1 x 1 */
}
END_TEST

START_TEST(heuristics_and_engines)
{
    struct conv_parts p;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t graph = graph_of(&(cudnnBackendDescriptor_t){
        conv_op(FORWARD, convolution(&p.cc.g, CUDNN_DATA_FLOAT), p.x, p.w, p.y, 1.0f, 0.0f)}, 1);
    ck_assert_int_eq(get_int64(graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT), 1);
    cudnnBackendDescriptor_t h = heuristics(graph);
    int64_t n = -1;
    ck_assert_status_ok(cudnnBackendGetAttribute(h, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                &n, NULL));
    ck_assert_int_eq(n, 1);
    cudnnBackendDescriptor_t cfgs[2] = {create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR),
                                        create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)};
    ck_assert_status_ok(cudnnBackendGetAttribute(h, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 2,
                                &n, cfgs));
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(cudnnBackendGetAttribute(cfgs[1], CUDNN_ATTR_ENGINECFG_ENGINE,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL),
                     CUDNN_STATUS_NOT_INITIALIZED); /* the second was not filled */
    cudnnBackendDescriptor_t engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    ck_assert_status_ok(cudnnBackendGetAttribute(cfgs[0], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                1, &n, &engine));
    ck_assert_int_eq(get_int64(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX), 0);
    cudnnBackendDescriptor_t knobs[CUDNN_KNOB_TYPE_COUNTS];
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    ck_assert_status_ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_KNOB_INFO, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                CUDNN_KNOB_TYPE_COUNTS, &n, knobs));
    ck_assert_int_eq(n, 0);
    ck_assert_status_ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, notes));
    ck_assert_int_eq(n, 0);
    ck_assert_status_ok(cudnnBackendGetAttribute(cfgs[0], CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS, &n, knobs));
    ck_assert_int_eq(n, 0);
    cudnnBackendDescriptor_t copy = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    ck_assert_status_ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &copy));
    ck_assert_int_eq(get_int64(copy, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT), 1);

    /* An engine built by hand: index 0 works, index 1 does not exist. */
    cudnnBackendDescriptor_t manual = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    set_desc(manual, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, graph);
    set_int64(manual, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 1);
    ck_assert_int_eq(cudnnBackendFinalize(manual), CUDNN_STATUS_BAD_PARAM);
    set_int64(manual, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 0);
    ck_assert_status_ok(cudnnBackendFinalize(manual));
    cudnnBackendDescriptor_t cfg = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    set_desc(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, manual);
    set(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, knobs);
    ck_assert_status_ok(cudnnBackendFinalize(cfg));
    ck_assert_int_eq(get_int64(plan_from_cfg(cfg), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), 0);

    cudnnBackendHeurMode_t bad_mode = (cudnnBackendHeurMode_t)7;
    ck_assert_int_eq(cudnnBackendSetAttribute(create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR),
                                              CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1,
                                              &bad_mode),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendSetAttribute(h, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, cfgs),
                     CUDNN_STATUS_NOT_INITIALIZED);
    conv_case_free(&p.cc);
}
END_TEST

START_TEST(knob_choices_are_not_supported)
{
    struct conv_parts p;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t op =
        conv_op(FORWARD, convolution(&p.cc.g, CUDNN_DATA_FLOAT), p.x, p.w, p.y, 1.0f, 0.0f);
    cudnnBackendDescriptor_t engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    set_desc(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, graph_of(&op, 1));
    set_int64(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 0);
    ck_assert_status_ok(cudnnBackendFinalize(engine));
    cudnnBackendDescriptor_t knob = create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    cudnnBackendKnobType_t type = CUDNN_KNOB_TYPE_SPLIT_K_BUF;
    set(knob, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &type);
    set_int64(knob, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, 1);
    ck_assert_status_ok(cudnnBackendFinalize(knob));
    cudnnBackendDescriptor_t cfg = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    set_desc(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, engine);
    set_desc(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, knob);
    ck_assert_int_eq(cudnnBackendFinalize(cfg), CUDNN_STATUS_NOT_SUPPORTED);
    conv_case_free(&p.cc);
}
END_TEST

/* A conv + bias (ADD, per channel) graph of case 0 and its plan; returns the bias tensor. */
static cudnnBackendDescriptor_t bias_plan(struct conv_parts *p, struct ref_tensor *bias)
{
    int bd[5] = {1, p->cc.y.dims[1], 1, 1, 1};
    ref_tensor_init(bias, CUDNN_DATA_FLOAT, 4, bd, REF_NCHW, &p->cc.rng);
    cudnnBackendDescriptor_t ops[2] = {
        p->op, pointwise_op(CUDNN_POINTWISE_ADD, p->c, tensor_of(bias, 'b'), p->y, 1, 1)};
    return plan_for(graph_of(ops, 2));
}

START_TEST(plan_workspace)
{
    struct conv_parts p;
    struct ref_tensor bias;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t plain =
        conv_op(FORWARD, convolution(&p.cc.g, CUDNN_DATA_FLOAT), p.x, p.w, p.y, 1.0f, 0.0f);
    cudnnBackendDescriptor_t plan = plan_for(graph_of(&plain, 1));
    ck_assert_int_eq(get_int64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), 0);
    plan = bias_plan(&p, &bias);
    ck_assert_int_eq(get_int64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), EPILOGUE_WORKSPACE);
    cudnnBackendDescriptor_t cfg = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t n = 0;
    ck_assert_status_ok(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &cfg));
    ck_assert_int_eq(get_int64(cfg, CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE), EPILOGUE_WORKSPACE);
    ref_tensor_free(&bias);
    conv_case_free(&p.cc);
}
END_TEST

START_TEST(execute_errors)
{
    struct conv_parts p;
    struct ref_tensor bias;
    conv_parts_init(&p);
    cudnnBackendDescriptor_t plan = bias_plan(&p, &bias);
    ref_fill(&p.cc.x, &p.cc.rng, -64, 64);
    ref_fill(&p.cc.w, &p.cc.rng, -64, 64);
    ref_fill(&bias, &p.cc.rng, -64, 64);
    int64_t uids[4] = {'x', 'w', 'b', 'y'};
    void *pointers[4] = {p.cc.x.data, p.cc.w.data, bias.data, p.cc.y.data};
    unsigned char *workspace = malloc(EPILOGUE_WORKSPACE);
    ck_assert_ptr_nonnull(workspace);
    ck_assert_int_eq(execute(plan, uids, pointers, 4, NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(execute(plan, uids, pointers, 3, workspace), CUDNN_STATUS_BAD_PARAM);
    void *misaligned[4] = {p.cc.x.data, p.cc.w.data, (char *)bias.data + 4, p.cc.y.data};
    ck_assert_int_eq(execute(plan, uids, misaligned, 4, workspace),
                     CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER);
    void *null_data[4] = {p.cc.x.data, NULL, bias.data, p.cc.y.data};
    ck_assert_int_eq(execute(plan, uids, null_data, 4, workspace),
                     CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    cudnnBackendDescriptor_t pack = variant_pack(uids, pointers, 4, workspace);
    ck_assert_int_eq(cudnnBackendExecute((cudnnHandle_t)&uids, plan, pack), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnBackendExecute(handle, pack, pack),
                     CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE);
    ck_assert_int_eq(cudnnBackendExecute(handle, create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR),
                                         pack),
                     CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED);
    ck_assert_int_eq(cudnnBackendExecute(handle, plan, NULL), CUDNN_STATUS_BAD_PARAM_NULL_POINTER);
    ck_assert_status_ok(cudnnBackendExecute(handle, plan, pack));
    ck_assert_int_eq(workspace[EPILOGUE_WORKSPACE - 1], 0xa5); /* the workspace was used */
    /* Variant packs: counts must agree and ids be unique. */
    cudnnBackendDescriptor_t bad = create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    int64_t twice[2] = {'x', 'x'};
    set(bad, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 2, twice);
    set(bad, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 1, pointers);
    ck_assert_int_eq(cudnnBackendFinalize(bad), CUDNN_STATUS_BAD_PARAM);
    set(bad, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 2, pointers);
    ck_assert_int_eq(cudnnBackendFinalize(bad), CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES);
    free(workspace);
    ref_tensor_free(&bias);
    conv_case_free(&p.cc);
}
END_TEST

/* ---- results ---- */

/* One convolution of direction dir on case i, alpha/beta from the geometry (geometry 1
 * blends into a random prior output), against conv_reference. */
static void ck_assert_single_conv(enum direction dir, int i)
{
    struct conv_case cc;
    conv_case_init(&cc, i);
    float alpha = i >> 2 ? 0.5f : 1.0f, beta = i >> 2 ? -1.25f : 0.0f;
    struct ref_tensor *all[3] = {&cc.x, &cc.w, &cc.y}, *out = written(&cc, dir);
    for (int t = 0; t < 3; t++)
        if (all[t] != out || beta != 0.0f)
            ref_fill(all[t], &cc.rng, -64, 64);
    double *want = blended(&cc, dir, alpha, beta);
    cudnnBackendDescriptor_t op =
        conv_op(dir, convolution(&cc.g, CUDNN_DATA_FLOAT), tensor_of(&cc.x, 'x'),
                tensor_of(&cc.w, 'w'), tensor_of(&cc.y, 'y'), alpha, beta);
    cudnnBackendDescriptor_t plan = plan_for(graph_of(&op, 1));
    ck_assert_int_eq(get_int64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), 0);
    int64_t uids[3] = {'x', 'w', 'y'};
    void *pointers[3] = {cc.x.data, cc.w.data, cc.y.data};
    ck_assert_status_ok(execute(plan, uids, pointers, 3, NULL));
    ref_expect(out, want, dir == FORWARD ? "y" : dir == BACKWARD_DATA ? "dx" : "dw");
    free(want);
    conv_case_free(&cc);
}

START_TEST(conv_forward)
{
    ck_assert_single_conv(FORWARD, _i);
}
END_TEST

START_TEST(conv_backward_data)
{
    ck_assert_single_conv(BACKWARD_DATA, _i);
}
END_TEST

START_TEST(conv_backward_filter)
{
    ck_assert_single_conv(BACKWARD_FILTER, _i);
}
END_TEST

/* A FLOAT 1 x K x 1 x 1 tensor of values k/32, lo <= k <= hi. */
static void per_channel_init(struct ref_tensor *t, struct conv_case *cc, int lo, int hi)
{
    int dims[5] = {1, cc->y.dims[1], 1, 1, 1};
    ref_tensor_init(t, CUDNN_DATA_FLOAT, 4, dims, REF_NCHW, &cc->rng);
    ref_fill(t, &cc->rng, lo, hi);
}

/* y = (0.5 * conv(x, w)) * scale[k] + 0.5 * bias[k]: MUL then ADD on virtual FLOAT results.
 * Odd cases feed the convolution into MUL's b port; cases 2, 3, 6, 7 list the ops out of
 * order. */
START_TEST(conv_scale_bias_epilogue)
{
    struct conv_case cc;
    struct ref_tensor scale, bias;
    conv_case_init(&cc, _i);
    ref_fill(&cc.x, &cc.rng, -64, 64);
    ref_fill(&cc.w, &cc.rng, -64, 64);
    per_channel_init(&scale, &cc, -64, 64);
    per_channel_init(&bias, &cc, -64, 64);
    double *want = blended(&cc, FORWARD, 0.5, 0.0);
    REF_FOR_EACH(&cc.y, n, k, d, h, w) {
        size_t e = ref_index(&cc.y, n, k, d, h, w);
        want[e] = want[e] * ref_get(&scale, 0, k, 0, 0, 0) + 0.5 * ref_get(&bias, 0, k, 0, 0, 0);
    }
    int64_t dims[4] = {cc.y.dims[0], cc.y.dims[1], cc.y.dims[3], cc.y.dims[4]};
    cudnnBackendDescriptor_t conv_out = packed('c', CUDNN_DATA_FLOAT, dims, true);
    cudnnBackendDescriptor_t scaled = packed('s', CUDNN_DATA_FLOAT, dims, true);
    cudnnBackendDescriptor_t s = tensor_of(&scale, 'm');
    cudnnBackendDescriptor_t conv = conv_op(FORWARD, convolution(&cc.g, CUDNN_DATA_FLOAT),
                                            tensor_of(&cc.x, 'x'), tensor_of(&cc.w, 'w'),
                                            conv_out, 0.5f, 0.0f);
    cudnnBackendDescriptor_t mul =
        _i & 1 ? pointwise_op(CUDNN_POINTWISE_MUL, s, conv_out, scaled, 1, 1)
               : pointwise_op(CUDNN_POINTWISE_MUL, conv_out, s, scaled, 1, 1);
    cudnnBackendDescriptor_t add = pointwise_op(CUDNN_POINTWISE_ADD, scaled, tensor_of(&bias, 'b'),
                                                tensor_of(&cc.y, 'y'), 1.0f, 0.5f);
    cudnnBackendDescriptor_t in_order[3] = {conv, mul, add}, shuffled[3] = {add, conv, mul};
    cudnnBackendDescriptor_t plan = plan_for(graph_of(_i & 2 ? shuffled : in_order, 3));
    ck_assert_int_eq(get_int64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), EPILOGUE_WORKSPACE);
    int64_t uids[5] = {'y', 'b', 'm', 'w', 'x'};
    void *pointers[5] = {cc.y.data, bias.data, scale.data, cc.w.data, cc.x.data};
    void *workspace = malloc(EPILOGUE_WORKSPACE);
    ck_assert_ptr_nonnull(workspace);
    ck_assert_status_ok(execute(plan, uids, pointers, 5, workspace));
    ref_expect(&cc.y, want, "y");
    free(workspace);
    free(want);
    ref_tensor_free(&scale);
    ref_tensor_free(&bias);
    conv_case_free(&cc);
}
END_TEST

/* y = conv(x, w) - z with z a full tensor of y's type in a padded NCHW layout; odd cases
 * feed the convolution into ADD's b port (y = -1 * z + 1 * conv). */
START_TEST(conv_full_tensor_add)
{
    struct conv_case cc;
    struct ref_tensor z;
    conv_case_init(&cc, _i);
    ref_fill(&cc.x, &cc.rng, -64, 64);
    ref_fill(&cc.w, &cc.rng, -64, 64);
    ref_tensor_init(&z, cc.y.type, 4, cc.y.dims, REF_NCHW_PADDED, &cc.rng);
    ref_fill(&z, &cc.rng, -64, 64);
    double *want = blended(&cc, FORWARD, 1.0, 0.0);
    REF_FOR_EACH(&cc.y, n, k, d, h, w)
        want[ref_index(&cc.y, n, k, d, h, w)] -= ref_get(&z, n, k, d, h, w);
    int64_t dims[4] = {cc.y.dims[0], cc.y.dims[1], cc.y.dims[3], cc.y.dims[4]};
    cudnnBackendDescriptor_t conv_out = packed('c', CUDNN_DATA_FLOAT, dims, true);
    cudnnBackendDescriptor_t tz = tensor_of(&z, 'z'), ty = tensor_of(&cc.y, 'y');
    cudnnBackendDescriptor_t ops[2] = {
        conv_op(FORWARD, convolution(&cc.g, CUDNN_DATA_FLOAT), tensor_of(&cc.x, 'x'),
                tensor_of(&cc.w, 'w'), conv_out, 1.0f, 0.0f),
        _i & 1 ? pointwise_op(CUDNN_POINTWISE_ADD, tz, conv_out, ty, -1.0f, 1.0f)
               : pointwise_op(CUDNN_POINTWISE_ADD, conv_out, tz, ty, 1.0f, -1.0f)};
    cudnnBackendDescriptor_t plan = plan_for(graph_of(ops, 2));
    int64_t uids[4] = {'x', 'w', 'z', 'y'};
    void *pointers[4] = {cc.x.data, cc.w.data, z.data, cc.y.data};
    void *workspace = malloc(EPILOGUE_WORKSPACE);
    ck_assert_ptr_nonnull(workspace);
    ck_assert_status_ok(execute(plan, uids, pointers, 4, workspace));
    ref_expect(&cc.y, want, "y");
    free(workspace);
    free(want);
    ref_tensor_free(&z);
    conv_case_free(&cc);
}
END_TEST

/* y = scale * (x - mean) * inv_variance + bias; case i: FLOAT/HALF (bit 0), NCHW/NHWC x with
 * y padded in the other layout (bit 1); FLOAT cases also pass epsilon by value. */
START_TEST(bn_inference)
{
    uint64_t rng = 0x51ed270b27e3c0a9ull * (uint64_t)(_i + 1);
    cudnnDataType_t type = _i & 1 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    int xd[5] = {2, 5, 1, 3, 4}, pd[5] = {1, 5, 1, 1, 1};
    struct ref_tensor x, y, p[4]; /* mean, inverse variance, scale, bias */
    ref_tensor_init(&x, type, 4, xd, _i & 2 ? REF_NHWC : REF_NCHW, &rng);
    ref_tensor_init(&y, type, 4, xd, _i & 2 ? REF_NCHW_PADDED : REF_NHWC_PADDED, &rng);
    ref_fill(&x, &rng, -64, 64);
    for (int i = 0; i < 4; i++) {
        ref_tensor_init(&p[i], CUDNN_DATA_FLOAT, 4, pd, REF_NCHW, &rng);
        ref_fill(&p[i], &rng, i == 1 ? 8 : -64, 64); /* inverse variances 0.25 .. 2 */
    }
    double *want = calloc(ref_count(&y), sizeof(double));
    ck_assert_ptr_nonnull(want);
    REF_FOR_EACH(&x, n, c, d, h, w) {
        double mean = ref_get(&p[0], 0, c, 0, 0, 0), inv = ref_get(&p[1], 0, c, 0, 0, 0);
        want[ref_index(&y, n, c, d, h, w)] = ref_get(&p[2], 0, c, 0, 0, 0) *
                                                 (ref_get(&x, n, c, d, h, w) - mean) * inv +
                                             ref_get(&p[3], 0, c, 0, 0, 0);
    }
    float epsilon = 1e-5f;
    const int64_t one[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t eps = NULL;
    if (type == CUDNN_DATA_FLOAT) {
        bool by_value = true;
        eps = unfinalized_tensor('e', CUDNN_DATA_FLOAT, 4, one, one);
        set(eps, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
        ck_assert_status_ok(cudnnBackendFinalize(eps));
    }
    cudnnBackendDescriptor_t params[4];
    for (int i = 0; i < 4; i++)
        params[i] = tensor_of(&p[i], 'm' + i);
    cudnnBackendDescriptor_t op = norm_op(CUDNN_BATCH_NORM, CUDNN_NORM_FWD_INFERENCE,
                                          tensor_of(&x, 'x'), tensor_of(&y, 'y'), params, eps);
    cudnnBackendDescriptor_t plan = plan_for(graph_of(&op, 1));
    ck_assert_int_eq(get_int64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE), 0);
    int64_t uids[7] = {'x', 'y', 'm', 'n', 'o', 'p', 'e'};
    void *pointers[7] = {x.data, y.data, p[0].data, p[1].data, p[2].data, p[3].data, &epsilon};
    ck_assert_status_ok(execute(plan, uids, pointers, eps ? 7 : 6, NULL));
    ref_expect(&y, want, "y");
    free(want);
    ref_tensor_free(&x);
    ref_tensor_free(&y);
    for (int i = 0; i < 4; i++)
        ref_tensor_free(&p[i]);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("backend");
    TCase *descriptors = tcase_create("descriptors");
    TCase *graphs = tcase_create("graphs");
    TCase *results = tcase_create("results");
    TCase *all[3] = {descriptors, graphs, results};
    for (int i = 0; i < 3; i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(suite, all[i]);
    }
    tcase_add_test(descriptors, tensor_round_trip);
    tcase_add_test(descriptors, tensor_set_errors);
    tcase_add_test(descriptors, convolution_round_trip);
    tcase_add_test(descriptors, operation_attributes);
    tcase_add_test(descriptors, descriptor_lifetimes);
    tcase_add_test(descriptors, descriptors_are_copied);
    tcase_add_test(graphs, unsupported_graphs);
    tcase_add_test(graphs, bad_graphs);
    tcase_add_test(graphs, unsupported_norms);
    tcase_add_test(graphs, heuristics_and_engines);
    tcase_add_test(graphs, knob_choices_are_not_supported);
    tcase_add_test(graphs, plan_workspace);
    tcase_add_test(graphs, execute_errors);
    tcase_add_loop_test(results, conv_forward, 0, CONV_CASES);
    tcase_add_loop_test(results, conv_backward_data, 0, CONV_CASES);
    tcase_add_loop_test(results, conv_backward_filter, 0, CONV_CASES);
    tcase_add_loop_test(results, conv_scale_bias_epilogue, 0, CONV_CASES);
    tcase_add_loop_test(results, conv_full_tensor_add, 0, CONV_CASES);
    tcase_add_loop_test(results, bn_inference, 0, 4);
    return run_suite(suite);
}
