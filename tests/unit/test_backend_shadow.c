/* Unit tests for src/backend_shadow.c, driven through its API with fake descriptor
 * addresses (no cuDNN): a single convolution forward graph is recognised through the
 * heuristics and engine paths to a plan, with children destroyed right after they are set;
 * NCHW and NHWC filters; everything else (virtual or non-packed tensors, asymmetric
 * padding, two operations, an unfinalized graph, a variant pack without the uids) is
 * opaque; destroy and address reuse; a held plan's postponed destroy; the copy of a pack's
 * uids and pointers; the cap on entries; a batch-norm inference graph recognised (and the
 * training phase, non-FLOAT or non-per-channel parameters and a missing mode opaque);
 * single convolution backward data and backward filter graphs recognised in forward roles
 * (never offered as a forward conv), and a graph of an unshadowed operation or an
 * incomplete backward operation opaque. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/backend_shadow.h"
#include "support/run_suite.h"

enum { X, W, Y, CONV, OP, GRAPH, HEUR, ENGINE, CFG, PLAN, PACK, NB_DESCS };

static char slots[NB_DESCS + 2];
static char x_buf[4], w_buf[4], y_buf[4];

static cudnnBackendDescriptor_t desc(int i)
{
    return (cudnnBackendDescriptor_t)&slots[i];
}

static void set_int64s(int d, cudnnBackendAttributeName_t name, int64_t n, const int64_t *v)
{
    convbn_shadow_set(desc(d), name, CUDNN_TYPE_INT64, n, v);
}

static void set_desc(int d, cudnnBackendAttributeName_t name, int child)
{
    cudnnBackendDescriptor_t c = desc(child);
    convbn_shadow_set(desc(d), name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
}

/* A finalized 4-d tensor of FLOAT with the given dims, strides, uid and virtuality. */
static void tensor(int d, int64_t uid, const int64_t *dims, const int64_t *strides,
                   bool is_virtual)
{
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    convbn_shadow_create(desc(d), CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    convbn_shadow_set(desc(d), CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    set_int64s(d, CUDNN_ATTR_TENSOR_DIMENSIONS, 4, dims);
    set_int64s(d, CUDNN_ATTR_TENSOR_STRIDES, 4, strides);
    set_int64s(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, 1, &uid);
    convbn_shadow_set(desc(d), CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    convbn_shadow_finalize(desc(d));
}

/* A 3x3 convolution, padding 1 (post padding post), stride 2, dilation 1. */
static void convolution(int64_t post)
{
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t spatial = 2, pre[2] = {1, 1}, posts[2] = {1, post}, stride[2] = {2, 2},
                  dilation[2] = {1, 1};
    convbn_shadow_create(desc(CONV), CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    convbn_shadow_set(desc(CONV), CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                      &compute);
    convbn_shadow_set(desc(CONV), CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE,
                      1, &mode);
    set_int64s(CONV, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 1, &spatial);
    set_int64s(CONV, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, 2, pre);
    set_int64s(CONV, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, 2, posts);
    set_int64s(CONV, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, 2, stride);
    set_int64s(CONV, CUDNN_ATTR_CONVOLUTION_DILATIONS, 2, dilation);
    convbn_shadow_finalize(desc(CONV));
}

struct build {
    int nhwc_filter, strided_filter, virtual_y, post, two_ops, finalize_graph, via_engine;
    int direction;  /* enum convbn_backend_dir, or 3: a matmul operation (not shadowed) */
    int skip_y;     /* the operation's y (dy) attribute is never set */
};

/* Per direction: the operation's type and its x, w, y, conv, alpha and beta attributes (in
 * forward roles). */
static const int op_types[4] = {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                                CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR};
static const cudnnBackendAttributeName_t op_attrs[4][6] = {
    {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA},
    {CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_ATTR_MATMUL_COMP_TYPE,
     CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_ATTR_MATMUL_COMP_TYPE}};

/* x 2x4x8x8, w 6x2x3x3 (groups 2), y 2x6x4x4; the children of each descriptor are destroyed
 * right after they are set.  Ends with a plan (PLAN) and a variant pack (PACK). */
static void build(const struct build *b)
{
    const int64_t xd[4] = {2, 4, 8, 8}, xs[4] = {256, 64, 8, 1};
    const int64_t wd[4] = {6, 2, 3, 3}, kcrs[4] = {18, 9, 3, 1}, krsc[4] = {18, 1, 6, 2},
                  odd[4] = {36, 9, 3, 1};
    const int64_t yd[4] = {2, 6, 4, 4}, ys[4] = {96, 16, 4, 1};
    tensor(X, 'x', xd, xs, false);
    tensor(W, 'w', wd, b->strided_filter ? odd : b->nhwc_filter ? krsc : kcrs, false);
    tensor(Y, 'y', yd, ys, b->virtual_y);
    convolution(b->post);
    float alpha = 1.0f;
    double beta = 0.5;
    const cudnnBackendAttributeName_t *attr = op_attrs[b->direction];
    convbn_shadow_create(desc(OP), op_types[b->direction]);
    set_desc(OP, attr[0], X);
    set_desc(OP, attr[1], W);
    if (!b->skip_y)
        set_desc(OP, attr[2], Y);
    set_desc(OP, attr[3], CONV);
    convbn_shadow_set(desc(OP), attr[4], CUDNN_TYPE_FLOAT, 1, &alpha);
    convbn_shadow_set(desc(OP), attr[5], CUDNN_TYPE_DOUBLE, 1, &beta);
    convbn_shadow_finalize(desc(OP));
    for (int i = X; i <= CONV; i++)
        convbn_shadow_destroy(desc(i));
    convbn_shadow_create(desc(GRAPH), CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnBackendDescriptor_t ops[2] = {desc(OP), desc(OP)};
    convbn_shadow_set(desc(GRAPH), CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                      b->two_ops ? 2 : 1, ops);
    convbn_shadow_destroy(desc(OP));
    if (b->finalize_graph)
        convbn_shadow_finalize(desc(GRAPH));
    convbn_shadow_create(desc(CFG), CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (b->via_engine) {
        convbn_shadow_create(desc(ENGINE), CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        set_desc(ENGINE, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, GRAPH);
        set_desc(CFG, CUDNN_ATTR_ENGINECFG_ENGINE, ENGINE);
        convbn_shadow_destroy(desc(ENGINE));
    } else {
        cudnnBackendDescriptor_t results[1] = {desc(CFG)};
        convbn_shadow_create(desc(HEUR), CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
        set_desc(HEUR, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, GRAPH);
        convbn_shadow_got(desc(HEUR), CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, results);
        convbn_shadow_destroy(desc(HEUR));
    }
    convbn_shadow_destroy(desc(GRAPH));
    convbn_shadow_create(desc(PLAN), CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    set_desc(PLAN, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CFG);
    convbn_shadow_destroy(desc(CFG));
    convbn_shadow_finalize(desc(PLAN));
}

/* A variant pack of n of ('y', 'w', 'x', 'b') -> (y_buf, w_buf, x_buf, NULL). */
static void pack(int n)
{
    const int64_t uids[4] = {'y', 'w', 'x', 'b'};
    void *pointers[4] = {y_buf, w_buf, x_buf, NULL};
    convbn_shadow_create(desc(PACK), CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    set_int64s(PACK, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, n, uids);
    convbn_shadow_set(desc(PACK), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n,
                      pointers);
    convbn_shadow_finalize(desc(PACK));
}

static void teardown(void)
{
    for (int i = 0; i < NB_DESCS; i++)
        convbn_shadow_destroy(desc(i));
    ck_assert_int_eq(convbn_shadow_count(), 0);
}

/* Returns the result of convbn_shadow_conv_call for a build b and a pack of 3. */
static int recognised(const struct build *b, struct convbn_conv_call *c)
{
    build(b);
    pack(3);
    return convbn_shadow_conv_call(desc(PLAN), desc(PACK), c);
}

START_TEST(single_conv_recognised)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1, .via_engine = _i};
    ck_assert_int_eq(recognised(&b, &c), 0);
    ck_assert_int_eq(convbn_shadow_count(), 2); /* only the plan and the pack are left */
    ck_assert_int_eq(c.api, CONVBN_API_BACKEND);
    ck_assert_int_eq(c.kind, CONVBN_CONV_PLAIN);
    ck_assert_int_eq(c.algo, -1);
    ck_assert_ptr_eq(c.x_ptr, x_buf);
    ck_assert_ptr_eq(c.w_ptr, w_buf);
    ck_assert_ptr_eq(c.y_ptr, y_buf);
    ck_assert_int_eq(c.x.nb_dims, 4);
    ck_assert_int_eq(c.x.dims[1], 4);
    ck_assert_int_eq(c.x.strides[1], 64);
    ck_assert_int_eq(c.y.dims[1], 6);
    ck_assert_int_eq(c.w.format, CUDNN_TENSOR_NCHW);
    ck_assert_int_eq(c.w.dims[0], 6);
    ck_assert_int_eq(c.w.dims[1], 2);
    ck_assert_int_eq(c.w_bytes, 6 * 2 * 3 * 3 * 4);
    ck_assert_int_eq(c.conv.nb_spatial, 2);
    ck_assert_int_eq(c.conv.pad[1], 1);
    ck_assert_int_eq(c.conv.stride[0], 2);
    ck_assert_int_eq(c.conv.dilation[0], 1);
    ck_assert_int_eq(c.conv.groups, 2);
    ck_assert_int_eq(c.conv.mode, CUDNN_CROSS_CORRELATION);
    ck_assert_int_eq(c.conv.compute_type, CUDNN_DATA_FLOAT);
    ck_assert(c.alpha == 1.0 && c.beta == 0.5);
    struct convbn_backend_conv r;
    convbn_shadow_recognised(desc(PLAN), &r);
    ck_assert(r.valid && r.uid_x == 'x' && r.uid_w == 'w' && r.uid_y == 'y');
}
END_TEST

START_TEST(nhwc_filter)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1, .nhwc_filter = 1};
    ck_assert_int_eq(recognised(&b, &c), 0);
    ck_assert_int_eq(c.w.format, CUDNN_TENSOR_NHWC);
}
END_TEST

/* Case i: one reason for the graph to stay opaque. */
START_TEST(opaque_graphs)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1};
    switch (_i) {
    case 0: b.strided_filter = 1; break;
    case 1: b.virtual_y = 1; break;
    case 2: b.post = 2; break;
    case 3: b.two_ops = 1; break;
    default: b.finalize_graph = 0; break;
    }
    ck_assert_int_eq(recognised(&b, &c), -1);
    struct convbn_backend_conv r;
    convbn_shadow_recognised(desc(PLAN), &r);
    ck_assert_int_eq(r.valid, 0);
}
END_TEST

START_TEST(pack_must_give_pointers)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1};
    build(&b);
    pack(2); /* no 'x' */
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PACK), desc(PLAN), &c), -1);
    void *too_many[40] = {0};
    int64_t uids[40] = {0};
    set_int64s(PACK, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, 40, uids);
    convbn_shadow_set(desc(PACK), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 40,
                      too_many);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
    pack(3);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), 0);
    convbn_shadow_destroy(desc(PACK));
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
}
END_TEST

START_TEST(address_reuse_and_untracked_types)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1};
    ck_assert_int_eq(recognised(&b, &c), 0);
    convbn_shadow_create(desc(PLAN), CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR); /* a new plan */
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
    convbn_shadow_create(desc(PLAN), CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    ck_assert_int_eq(convbn_shadow_count(), 1); /* pointwise descriptors are not shadowed */
}
END_TEST

/* A plan held by deferred work outlives the program's destroy: destroy is postponed (and the
 * plan no longer recognised) until the last hold is released, which says to destroy it. */
START_TEST(held_plan_destroy_is_postponed)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1};
    ck_assert_int_eq(recognised(&b, &c), 0);
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PLAN)), CONVBN_PLAN_CONV_FWD);
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PACK)), CONVBN_PLAN_OPAQUE);
    ck_assert_int_eq(convbn_shadow_hold(desc(PACK)), -1); /* only plans are held */
    ck_assert_int_eq(convbn_shadow_hold(desc(NB_DESCS)), -1); /* not shadowed */
    ck_assert_int_eq(convbn_shadow_release(desc(PLAN)), 0);   /* not held: nothing to do */
    ck_assert_int_eq(convbn_shadow_hold(desc(PLAN)), 0);
    ck_assert_int_eq(convbn_shadow_hold(desc(PLAN)), 0);
    ck_assert_int_eq(convbn_shadow_release(desc(PLAN)), 0); /* still held, not destroyed */
    ck_assert_int_eq(convbn_shadow_destroy(desc(PLAN)), 1);  /* postponed */
    ck_assert_int_eq(convbn_shadow_count(), 2);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PLAN)), CONVBN_PLAN_OPAQUE);
    int64_t uids[3] = {0, 0, 0};
    ck_assert_int_eq(convbn_shadow_conv_uids(desc(PLAN), uids), 0); /* the deferred run's */
    ck_assert(uids[0] == 'x' && uids[1] == 'w' && uids[2] == 'y');
    ck_assert_int_eq(convbn_shadow_conv_uids(desc(PACK), uids), -1);
    ck_assert_int_eq(convbn_shadow_hold(desc(PLAN)), -1); /* destroyed: no new holds */
    ck_assert_int_eq(convbn_shadow_release(desc(PLAN)), 1); /* last hold: destroy it now */
    ck_assert_int_eq(convbn_shadow_count(), 1);
    ck_assert_int_eq(convbn_shadow_release(desc(PLAN)), 0);
    /* Held and released without a destroy: the plan stays usable. */
    build(&b);
    ck_assert_int_eq(convbn_shadow_hold(desc(PLAN)), 0);
    ck_assert_int_eq(convbn_shadow_release(desc(PLAN)), 0);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), 0);
    ck_assert_int_eq(convbn_shadow_destroy(desc(PLAN)), 0);
}
END_TEST

/* The uids and pointers of a pack are copied out whole, or not at all. */
START_TEST(pack_copied_out)
{
    int64_t uids[CONVBN_SHADOW_PACK_MAX];
    void *pointers[CONVBN_SHADOW_PACK_MAX];
    pack(4);
    ck_assert_int_eq(convbn_shadow_pack(desc(PACK), uids, pointers, CONVBN_SHADOW_PACK_MAX), 4);
    ck_assert_int_eq(uids[0], 'y');
    ck_assert_int_eq(uids[3], 'b');
    ck_assert_ptr_eq(pointers[2], x_buf);
    ck_assert_ptr_null(pointers[3]);
    ck_assert_int_eq(convbn_shadow_pack(desc(PACK), uids, pointers, 3), -1);
    ck_assert_int_eq(convbn_shadow_pack(desc(PLAN), uids, pointers, CONVBN_SHADOW_PACK_MAX), -1);
}
END_TEST

START_TEST(table_is_bounded)
{
    char *many = malloc(CONVBN_SHADOW_MAX + 8);
    ck_assert_ptr_nonnull(many);
    for (int i = 0; i < CONVBN_SHADOW_MAX + 8; i++)
        convbn_shadow_create((cudnnBackendDescriptor_t)&many[i], CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    ck_assert_int_eq(convbn_shadow_count(), CONVBN_SHADOW_MAX);
    for (int i = 0; i < CONVBN_SHADOW_MAX + 8; i++)
        convbn_shadow_destroy((cudnnBackendDescriptor_t)&many[i]);
    free(many);
}
END_TEST

/* A batch-norm inference graph as PyTorch's BatchNorm_v8 builds it: x and y 2x4x8x8, scale,
 * bias, mean and inverse variance 1x4x1x1 FLOAT (X, Y, W, CONV, ENGINE and slot NB_DESCS),
 * one NORM_FORWARD (OP) in a graph, heuristics, a plan (PLAN), and a pack of the six.
 * variant 1: training phase; 2: HALF inverse variance; 3: a 1x4x2x1 mean; 4: no mode. */
static int bn_recognised(int variant, struct convbn_bn_call *bn)
{
    enum { INV = NB_DESCS };
    const int64_t xd[4] = {2, 4, 8, 8}, xs[4] = {256, 64, 8, 1}, pd[4] = {1, 4, 1, 1},
                  ps[4] = {4, 1, 1, 1}, bad[4] = {1, 4, 2, 1}, bads[4] = {8, 2, 1, 1};
    cudnnBackendNormMode_t mode = CUDNN_BATCH_NORM;
    cudnnBackendNormFwdPhase_t phase =
        variant == 1 ? CUDNN_NORM_FWD_TRAINING : CUDNN_NORM_FWD_INFERENCE;
    cudnnDataType_t half = CUDNN_DATA_HALF;
    static char bufs[6][4];
    tensor(X, 'x', xd, xs, false);
    tensor(Y, 'y', xd, xs, false);
    tensor(W, 's', pd, ps, false);
    tensor(CONV, 'b', pd, ps, false);
    tensor(ENGINE, 'm', variant == 3 ? bad : pd, variant == 3 ? bads : ps, false);
    tensor(INV, 'v', pd, ps, false);
    if (variant == 2)
        convbn_shadow_set(desc(INV), CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &half);
    convbn_shadow_create(desc(OP), CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    if (variant != 4)
        convbn_shadow_set(desc(OP), CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1,
                          &mode);
    convbn_shadow_set(desc(OP), CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE,
                      1, &phase);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, X);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, Y);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, W);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, CONV);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, ENGINE);
    set_desc(OP, CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, INV);
    convbn_shadow_finalize(desc(OP));
    for (int i = X; i <= CONV; i++)
        convbn_shadow_destroy(desc(i));
    convbn_shadow_destroy(desc(ENGINE));
    convbn_shadow_destroy(desc(INV));
    convbn_shadow_create(desc(GRAPH), CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    set_desc(GRAPH, CUDNN_ATTR_OPERATIONGRAPH_OPS, OP);
    convbn_shadow_destroy(desc(OP));
    convbn_shadow_finalize(desc(GRAPH));
    cudnnBackendDescriptor_t results[1] = {desc(CFG)};
    convbn_shadow_create(desc(CFG), CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    convbn_shadow_create(desc(HEUR), CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    set_desc(HEUR, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, GRAPH);
    convbn_shadow_got(desc(HEUR), CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, results);
    convbn_shadow_destroy(desc(HEUR));
    convbn_shadow_destroy(desc(GRAPH));
    convbn_shadow_create(desc(PLAN), CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    set_desc(PLAN, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CFG);
    convbn_shadow_destroy(desc(CFG));
    convbn_shadow_finalize(desc(PLAN));
    const int64_t uids[6] = {'v', 'm', 'b', 's', 'y', 'x'};
    void *pointers[6] = {bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5]};
    convbn_shadow_create(desc(PACK), CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    set_int64s(PACK, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, 6, uids);
    convbn_shadow_set(desc(PACK), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 6,
                      pointers);
    int rc = convbn_shadow_bn_call(desc(PLAN), desc(PACK), bn);
    if (rc == 0) {
        ck_assert_ptr_eq(bn->var, bufs[0]);
        ck_assert_ptr_eq(bn->mean, bufs[1]);
        ck_assert_ptr_eq(bn->bias, bufs[2]);
        ck_assert_ptr_eq(bn->scale, bufs[3]);
        ck_assert_ptr_eq(bn->y_ptr, bufs[4]);
        ck_assert_ptr_eq(bn->x_ptr, bufs[5]);
    }
    return rc;
}

START_TEST(batch_norm_inference_recognised)
{
    struct convbn_bn_call bn;
    struct convbn_conv_call c;
    int rc = bn_recognised(_i, &bn);
    ck_assert_int_eq(rc, _i == 0 ? 0 : -1);
    ck_assert_int_eq(convbn_shadow_conv_call(desc(PLAN), desc(PACK), &c), -1);
    if (_i != 0)
        return;
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PLAN)), CONVBN_PLAN_BN);
    ck_assert_int_eq(bn.api, CONVBN_API_BACKEND);
    ck_assert_int_eq(bn.inv_std, 1);
    ck_assert_int_eq(bn.mode, CUDNN_BATCHNORM_SPATIAL);
    ck_assert(bn.alpha == 1.0 && bn.beta == 0.0);
    ck_assert_int_eq(bn.params.type, CUDNN_DATA_FLOAT);
    ck_assert_int_eq(bn.params.dims[1], 4);
    ck_assert_int_eq(bn.x.dims[3], 8);
    ck_assert_int_eq(bn.y.nb_dims, 4);
}
END_TEST

/* Case i: backward data (0) and backward filter (1), recognised in forward roles; the
 * planner's lookup (convbn_shadow_conv_call) never sees them. */
START_TEST(backward_recognised)
{
    struct convbn_conv_call c;
    struct build b = {.post = 1, .finalize_graph = 1, .via_engine = _i,
                      .direction = _i ? CONVBN_BACKEND_BWD_FILTER : CONVBN_BACKEND_BWD_DATA};
    ck_assert_int_eq(recognised(&b, &c), -1);
    ck_assert_int_eq(convbn_shadow_conv_any(desc(PLAN), desc(PACK), &c), b.direction);
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PLAN)), CONVBN_PLAN_CONV_BWD);
    int64_t uids[3];
    ck_assert_int_eq(convbn_shadow_conv_uids(desc(PLAN), uids), -1); /* never deferred */
    ck_assert_int_eq(c.api, CONVBN_API_BACKEND);
    ck_assert_int_eq(c.algo, -1);
    ck_assert_ptr_eq(c.x_ptr, x_buf); /* dx for backward data */
    ck_assert_ptr_eq(c.w_ptr, w_buf); /* dw for backward filter */
    ck_assert_ptr_eq(c.y_ptr, y_buf); /* dy */
    ck_assert_int_eq(c.x.dims[1], 4);
    ck_assert_int_eq(c.y.dims[1], 6);
    ck_assert_int_eq(c.w.dims[0], 6);
    ck_assert_int_eq(c.conv.groups, 2);
    ck_assert_int_eq(c.conv.stride[1], 2);
    ck_assert(c.alpha == 1.0 && c.beta == 0.5);
    struct convbn_backend_conv r;
    convbn_shadow_recognised(desc(PLAN), &r);
    ck_assert(r.valid && r.direction == b.direction);
    pack(2); /* no 'x' */
    ck_assert_int_eq(convbn_shadow_conv_any(desc(PLAN), desc(PACK), &c), -1);
}
END_TEST

/* Case i: a forward graph is found by conv_any too (0); a graph whose operation is not
 * shadowed (1) and a backward data (2) or filter (3) operation without dy stay opaque. */
START_TEST(other_graphs_opaque)
{
    struct convbn_conv_call c;
    struct convbn_bn_call bn;
    struct build b = {.post = 1, .finalize_graph = 1, .direction = _i == 1 ? 3 : _i ? _i - 1 : 0,
                      .skip_y = _i >= 2};
    build(&b);
    pack(3);
    ck_assert_int_eq(convbn_shadow_conv_any(desc(PLAN), desc(PACK), &c), _i == 0 ? 0 : -1);
    ck_assert_int_eq(convbn_shadow_plan_kind(desc(PLAN)),
                     _i == 0 ? CONVBN_PLAN_CONV_FWD : CONVBN_PLAN_OPAQUE);
    ck_assert_int_eq(convbn_shadow_bn_call(desc(PLAN), desc(PACK), &bn), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend_shadow");
    TCase *tc = tcase_create("shadow");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_loop_test(tc, single_conv_recognised, 0, 2);
    tcase_add_test(tc, nhwc_filter);
    tcase_add_loop_test(tc, opaque_graphs, 0, 5);
    tcase_add_test(tc, pack_must_give_pointers);
    tcase_add_test(tc, address_reuse_and_untracked_types);
    tcase_add_test(tc, held_plan_destroy_is_postponed);
    tcase_add_test(tc, pack_copied_out);
    tcase_add_test(tc, table_is_bounded);
    tcase_add_loop_test(tc, batch_norm_inference_recognised, 0, 5);
    tcase_add_loop_test(tc, backward_recognised, 0, 2);
    tcase_add_loop_test(tc, other_graphs_opaque, 0, 4);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
