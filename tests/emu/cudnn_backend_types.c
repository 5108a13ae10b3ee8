/* The backend descriptor types the cuDNN emulation knows, as data: for each type its payload
 * (emu_cudnn.h), its attribute table (name, cuDNN attribute type, element counts, whether it
 * is settable, required or defaulted) and its initial values, plus the finalize checks of
 * the descriptors that describe one object: tensor, convolution, pointwise, the five
 * operations, knob choice and variant pack.  Attribute types and counts follow cuDNN's
 * backend descriptor reference; shape errors are BAD_PARAM here, what the emulation cannot
 * compute is left to the operation graph (cudnn_backend_graph.c).  Owns no state. */
#include <stddef.h>

#include "emu_cudnn.h"

#define ATTR(st, field, name, type, kind, flags, lo, hi) \
    {name, type, EMU_BK_##kind, flags, lo, hi, offsetof(st, field), 0}
#define DESC(st, offset, name, flags, lo, hi, target) \
    {name, CUDNN_TYPE_BACKEND_DESCRIPTOR, EMU_BK_DESC, flags, lo, hi, offset, target}
#define SLOT(i) (offsetof(struct emu_bk_op, tensor) + (i) * sizeof(struct emu_bk_tensor))
#define OP_TENSOR(name, slot, flags) \
    DESC(struct emu_bk_op, SLOT(slot), name, flags, 1, 1, CUDNN_BACKEND_TENSOR_DESCRIPTOR)
#define SET EMU_BK_SET
#define REQ (EMU_BK_SET | EMU_BK_REQUIRED)
#define DEF (EMU_BK_SET | EMU_BK_DEFAULT)
#define COUNT(table) ((int)(sizeof table / sizeof table[0]))

static const struct emu_bk_attr tensor_attrs[] = {
#define T(field, name, type, kind, flags, hi) \
    ATTR(struct emu_bk_tensor, field, name, type, kind, flags, 1, hi)
    T(alignment, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, INT64, REQ, 1),
    T(data_type, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, WORD, REQ, 1),
    T(dims, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, INT64, REQ, CUDNN_DIM_MAX),
    T(strides, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, INT64, REQ, CUDNN_DIM_MAX),
    T(vector_count, CUDNN_ATTR_TENSOR_VECTOR_COUNT, CUDNN_TYPE_INT64, INT64, DEF, 1),
    T(vectorized_dim, CUDNN_ATTR_TENSOR_VECTORIZED_DIMENSION, CUDNN_TYPE_INT64, INT64, DEF, 1),
    T(uid, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, INT64, REQ, 1),
    T(is_virtual, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, BOOL, DEF, 1),
    T(is_by_value, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, BOOL, DEF, 1),
    T(reordering, CUDNN_ATTR_TENSOR_REORDERING_MODE, CUDNN_TYPE_TENSOR_REORDERING_MODE, WORD,
      DEF, 1),
#undef T
};

static const struct emu_bk_attr convolution_attrs[] = {
#define C(field, name, type, kind, hi) \
    ATTR(struct emu_bk_convolution, field, name, type, kind, REQ, 1, hi)
    C(compute_type, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, WORD, 1),
    C(mode, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, WORD, 1),
    C(dilations, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, INT64, CUDNN_DIM_MAX - 2),
    C(filter_strides, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, INT64,
      CUDNN_DIM_MAX - 2),
    C(post_paddings, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, INT64,
      CUDNN_DIM_MAX - 2),
    C(pre_paddings, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, INT64,
      CUDNN_DIM_MAX - 2),
    C(spatial_dims, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, INT64, 1),
#undef C
};

static const struct emu_bk_attr pointwise_attrs[] = {
#define P(field, name, type, kind, flags) \
    ATTR(struct emu_bk_pointwise, field, name, type, kind, flags, 1, 1)
    P(mode, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, WORD, REQ),
    P(math_prec, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, WORD, REQ),
    P(nan_propagation, CUDNN_ATTR_POINTWISE_NAN_PROPAGATION, CUDNN_TYPE_NAN_PROPOGATION, WORD,
      DEF),
    P(relu_lower_clip, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, REAL, SET),
    P(relu_upper_clip, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, REAL, SET),
    P(relu_lower_clip_slope, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, REAL,
      SET),
    P(elu_alpha, CUDNN_ATTR_POINTWISE_ELU_ALPHA, CUDNN_TYPE_DOUBLE, REAL, SET),
    P(softplus_beta, CUDNN_ATTR_POINTWISE_SOFTPLUS_BETA, CUDNN_TYPE_DOUBLE, REAL, SET),
    P(swish_beta, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, REAL, SET),
    P(axis, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, INT64, SET),
#undef P
};

#define OP_REAL(field, name, flags) \
    ATTR(struct emu_bk_op, field, name, CUDNN_TYPE_FLOAT, REAL, flags, 1, 1)
#define OP_CONV(name) \
    DESC(struct emu_bk_op, offsetof(struct emu_bk_op, conv), name, REQ, 1, 1, \
         CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR)

static const struct emu_bk_attr conv_forward_attrs[] = {
    OP_REAL(alpha, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, REQ),
    OP_REAL(beta, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, REQ),
    OP_CONV(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, EMU_BK_CONV_W, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, EMU_BK_CONV_X, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, EMU_BK_CONV_Y, REQ),
};

static const struct emu_bk_attr conv_backward_data_attrs[] = {
    OP_REAL(alpha, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, REQ),
    OP_REAL(beta, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, REQ),
    OP_CONV(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, EMU_BK_CONV_W, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, EMU_BK_CONV_X, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, EMU_BK_CONV_Y, REQ),
};

static const struct emu_bk_attr conv_backward_filter_attrs[] = {
    OP_REAL(alpha, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, REQ),
    OP_REAL(beta, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, REQ),
    OP_CONV(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, EMU_BK_CONV_W, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, EMU_BK_CONV_X, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, EMU_BK_CONV_Y, REQ),
};

static const struct emu_bk_attr pointwise_op_attrs[] = {
    DESC(struct emu_bk_op, offsetof(struct emu_bk_op, pointwise),
         CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, REQ, 1, 1,
         CUDNN_BACKEND_POINTWISE_DESCRIPTOR),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, EMU_BK_PW_X, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, EMU_BK_PW_B, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, EMU_BK_PW_Y, SET),
    OP_REAL(alpha, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, DEF),
    OP_REAL(beta, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, DEF),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_DXDESC, EMU_BK_PW_DX, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_DYDESC, EMU_BK_PW_DY, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, EMU_BK_PW_T, SET),
};

static const struct emu_bk_attr norm_forward_attrs[] = {
    ATTR(struct emu_bk_op, norm_mode, CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE,
         WORD, REQ, 1, 1),
    ATTR(struct emu_bk_op, norm_phase, CUDNN_ATTR_OPERATION_NORM_FWD_PHASE,
         CUDNN_TYPE_NORM_FWD_PHASE, WORD, REQ, 1, 1),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, EMU_BK_NORM_X, REQ),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, EMU_BK_NORM_MEAN, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, EMU_BK_NORM_INV_VARIANCE, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, EMU_BK_NORM_SCALE, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, EMU_BK_NORM_BIAS, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_EPSILON_DESC, EMU_BK_NORM_EPSILON, SET),
    OP_TENSOR(CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, EMU_BK_NORM_Y, REQ),
};

static const struct emu_bk_attr graph_attrs[] = {
    ATTR(struct emu_bk_graph, handle, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, HANDLE,
         SET, 1, 1),
    DESC(struct emu_bk_graph, offsetof(struct emu_bk_graph, ops), CUDNN_ATTR_OPERATIONGRAPH_OPS,
         REQ | EMU_BK_CAPPED, 1, EMU_BK_MAX_OPS, EMU_BK_ANY_OPERATION),
    ATTR(struct emu_bk_graph, engine_count, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT,
         CUDNN_TYPE_INT64, INT64, 0, 1, 1),
    ATTR(struct emu_bk_graph, dynamic_shape, CUDNN_ATTR_OPERATIONGRAPH_IS_DYNAMIC_SHAPE_ENABLED,
         CUDNN_TYPE_BOOLEAN, BOOL, DEF, 1, 1),
};

static const struct emu_bk_attr heur_attrs[] = {
    ATTR(struct emu_bk_heur, mode, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, WORD, REQ, 1,
         1),
    DESC(struct emu_bk_heur, offsetof(struct emu_bk_heur, graph),
         CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, REQ, 1, 1, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR),
    DESC(struct emu_bk_heur, offsetof(struct emu_bk_heur, results), CUDNN_ATTR_ENGINEHEUR_RESULTS,
         0, 1, 1, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR),
    ATTR(struct emu_bk_heur, sm_count, CUDNN_ATTR_ENGINEHEUR_SM_COUNT_TARGET, CUDNN_TYPE_INT32,
         WORD, SET, 1, 1),
};

/* Engines expose no knobs, notes or layouts: those attributes read as zero elements. */
static const struct emu_bk_attr engine_attrs[] = {
    DESC(struct emu_bk_engine, offsetof(struct emu_bk_engine, graph),
         CUDNN_ATTR_ENGINE_OPERATION_GRAPH, REQ, 1, 1, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR),
    ATTR(struct emu_bk_engine, global_index, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64,
         INT64, REQ, 1, 1),
    DESC(struct emu_bk_engine, 0, CUDNN_ATTR_ENGINE_KNOB_INFO, 0, 0, 0,
         CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR),
    ATTR(struct emu_bk_engine, set, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
         WORD, 0, 0, 0),
    ATTR(struct emu_bk_engine, set, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
         WORD, 0, 0, 0),
    ATTR(struct emu_bk_engine, sm_count, CUDNN_ATTR_ENGINE_SM_COUNT_TARGET, CUDNN_TYPE_INT32,
         WORD, SET, 1, 1),
};

static const struct emu_bk_attr engine_cfg_attrs[] = {
    DESC(struct emu_bk_engine_cfg, offsetof(struct emu_bk_engine_cfg, engine),
         CUDNN_ATTR_ENGINECFG_ENGINE, REQ, 1, 1, CUDNN_BACKEND_ENGINE_DESCRIPTOR),
    DESC(struct emu_bk_engine_cfg, offsetof(struct emu_bk_engine_cfg, knobs),
         CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, SET, 0, CUDNN_KNOB_TYPE_COUNTS,
         CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR),
    ATTR(struct emu_bk_engine_cfg, workspace, CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE,
         CUDNN_TYPE_INT64, INT64, 0, 1, 1),
};

static const struct emu_bk_attr plan_attrs[] = {
    ATTR(struct emu_bk_plan, handle, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, HANDLE,
         REQ, 1, 1),
    DESC(struct emu_bk_plan, offsetof(struct emu_bk_plan, cfg),
         CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, REQ, 1, 1, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR),
    ATTR(struct emu_bk_plan, workspace, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
         CUDNN_TYPE_INT64, INT64, 0, 1, 1),
};

static const struct emu_bk_attr variant_pack_attrs[] = {
    ATTR(struct emu_bk_variant_pack, uids, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
         INT64, REQ | EMU_BK_CAPPED, 0, EMU_BK_MAX_VARIANTS),
    ATTR(struct emu_bk_variant_pack, pointers, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
         CUDNN_TYPE_VOID_PTR, POINTER, REQ | EMU_BK_CAPPED, 0, EMU_BK_MAX_VARIANTS),
    ATTR(struct emu_bk_variant_pack, workspace, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
         CUDNN_TYPE_VOID_PTR, POINTER, DEF, 1, 1),
};

static const struct emu_bk_attr knob_choice_attrs[] = {
    ATTR(struct emu_bk_knob_choice, type, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE,
         WORD, REQ, 1, 1),
    ATTR(struct emu_bk_knob_choice, value, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64,
         INT64, REQ, 1, 1),
};

static void init_tensor(void *payload, cudnnBackendDescriptorType_t type)
{
    struct emu_bk_tensor *t = payload;
    (void)type;
    t->vector_count = 1;
    t->vectorized_dim = -1;
    t->reordering = CUDNN_TENSOR_REORDERING_NONE;
}

/* Operations know their kind; pointwise alpha1 and alpha2 default to 1. */
static void init_op(void *payload, cudnnBackendDescriptorType_t type)
{
    struct emu_bk_op *op = payload;
    op->kind = type;
    if (type == CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
        op->alpha = op->beta = 1.0;
}

static int all_at_least(const int64_t *v, int n, int64_t lo)
{
    for (int i = 0; i < n; i++)
        if (v[i] < lo)
            return 0;
    return 1;
}

/* Dims and strides of equal counts, all positive; virtual and by-value exclude each other;
 * vectorized and reordered layouts are not emulated. */
static cudnnStatus_t finalize_tensor(void *payload)
{
    const struct emu_bk_type *info = emu_bk_type_info(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    struct emu_bk_tensor *t = payload;
    t->nb_dims = emu_bk_count(info, t, CUDNN_ATTR_TENSOR_DIMENSIONS);
    if (t->nb_dims != emu_bk_count(info, t, CUDNN_ATTR_TENSOR_STRIDES) ||
        !all_at_least(t->dims, t->nb_dims, 1) || !all_at_least(t->strides, t->nb_dims, 1) ||
        t->alignment <= 0 || (t->is_virtual && t->is_by_value))
        return CUDNN_STATUS_BAD_PARAM;
    if (t->vector_count != 1 || t->reordering != CUDNN_TENSOR_REORDERING_NONE)
        return CUDNN_STATUS_NOT_SUPPORTED_LAYOUT;
    return CUDNN_STATUS_SUCCESS;
}

/* Every per-axis array holds spatial_dims values: dilations and strides >= 1, paddings >= 0. */
static cudnnStatus_t finalize_convolution(void *payload)
{
    static const cudnnBackendAttributeName_t arrays[4] = {
        CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
        CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS};
    const struct emu_bk_type *info = emu_bk_type_info(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    struct emu_bk_convolution *c = payload;
    int n = (int)c->spatial_dims;
    if (c->spatial_dims < 1 || c->spatial_dims > CUDNN_DIM_MAX - 2)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < 4; i++)
        if (emu_bk_count(info, c, arrays[i]) != n)
            return CUDNN_STATUS_BAD_PARAM;
    return all_at_least(c->dilations, n, 1) && all_at_least(c->filter_strides, n, 1) &&
                   all_at_least(c->pre_paddings, n, 0) && all_at_least(c->post_paddings, n, 0)
               ? CUDNN_STATUS_SUCCESS
               : CUDNN_STATUS_BAD_PARAM;
}

/* Output extent of one spatial axis, or 0 when the dilated filter exceeds the padded input. */
static int64_t output_extent(const struct emu_bk_convolution *c, int i, int64_t in, int64_t f)
{
    int64_t padded = in + c->pre_paddings[i] + c->post_paddings[i];
    int64_t extent = (f - 1) * c->dilations[i] + 1;
    return extent > padded ? 0 : 1 + (padded - extent) / c->filter_strides[i];
}

/* x (or dx), w (or dw) and y (or dy) must agree as a convolution: same rank (spatial dims
 * + 2), x's channels a multiple of w's, w's K divisible by the group count, y's N, K and
 * spatial extents those of the convolution. */
static cudnnStatus_t finalize_convolution_op(void *payload)
{
    const struct emu_bk_op *op = payload;
    const struct emu_bk_convolution *c = &op->conv;
    const struct emu_bk_tensor *x = &op->tensor[EMU_BK_CONV_X], *w = &op->tensor[EMU_BK_CONV_W];
    const struct emu_bk_tensor *y = &op->tensor[EMU_BK_CONV_Y];
    int nb = x->nb_dims;
    if (w->nb_dims != nb || y->nb_dims != nb || c->spatial_dims + 2 != nb ||
        x->dims[1] % w->dims[1] != 0)
        return CUDNN_STATUS_BAD_PARAM;
    int64_t groups = x->dims[1] / w->dims[1];
    if (w->dims[0] % groups != 0 || y->dims[0] != x->dims[0] || y->dims[1] != w->dims[0])
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nb - 2; i++) {
        int64_t out = output_extent(c, i, x->dims[i + 2], w->dims[i + 2]);
        if (out == 0 || y->dims[i + 2] != out)
            return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

static int slot_set(const struct emu_bk_op *op, cudnnBackendAttributeName_t name)
{
    return emu_bk_count(emu_bk_type_info(op->kind), op, name) > 0;
}

/* A pointwise operation writes y (or dx from dy); ADD and MUL also need b. */
static cudnnStatus_t finalize_pointwise_op(void *payload)
{
    const struct emu_bk_op *op = payload;
    int binary = op->pointwise.mode == CUDNN_POINTWISE_ADD ||
                 op->pointwise.mode == CUDNN_POINTWISE_MUL;
    int writes = slot_set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC) ||
                 (slot_set(op, CUDNN_ATTR_OPERATION_POINTWISE_DXDESC) &&
                  slot_set(op, CUDNN_ATTR_OPERATION_POINTWISE_DYDESC));
    return writes && (!binary || slot_set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC))
               ? CUDNN_STATUS_SUCCESS
               : CUDNN_STATUS_BAD_PARAM;
}

/* Returns 1 if p has x's rank and is 1 x C x 1 x ... */
static int per_channel(const struct emu_bk_tensor *x, const struct emu_bk_tensor *p)
{
    if (p->nb_dims != x->nb_dims)
        return 0;
    for (int i = 0; i < x->nb_dims; i++)
        if (p->dims[i] != (i == 1 ? x->dims[1] : 1))
            return 0;
    return 1;
}

/* y has x's dims; inference batch normalization also needs mean, inverse variance, scale
 * and bias, each 1 x C x 1 x ... */
static cudnnStatus_t finalize_norm_op(void *payload)
{
    static const cudnnBackendAttributeName_t params[4] = {
        CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC,
        CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC};
    static const int slots[4] = {EMU_BK_NORM_MEAN, EMU_BK_NORM_INV_VARIANCE, EMU_BK_NORM_SCALE,
                                 EMU_BK_NORM_BIAS};
    const struct emu_bk_op *op = payload;
    const struct emu_bk_tensor *x = &op->tensor[EMU_BK_NORM_X], *y = &op->tensor[EMU_BK_NORM_Y];
    if (y->nb_dims != x->nb_dims || x->nb_dims < 2)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < x->nb_dims; i++)
        if (y->dims[i] != x->dims[i])
            return CUDNN_STATUS_BAD_PARAM;
    if (op->norm_mode != CUDNN_BATCH_NORM || op->norm_phase != CUDNN_NORM_FWD_INFERENCE)
        return CUDNN_STATUS_SUCCESS;
    for (int i = 0; i < 4; i++)
        if (!slot_set(op, params[i]) || !per_channel(x, &op->tensor[slots[i]]))
            return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

/* As many unique ids as data pointers, no id twice. */
static cudnnStatus_t finalize_variant_pack(void *payload)
{
    const struct emu_bk_type *info = emu_bk_type_info(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    struct emu_bk_variant_pack *p = payload;
    p->nb = emu_bk_count(info, p, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    if (p->nb != emu_bk_count(info, p, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS))
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < p->nb; i++)
        for (int j = 0; j < i; j++)
            if (p->uids[i] == p->uids[j])
                return CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES;
    return CUDNN_STATUS_SUCCESS;
}

/* Knob information is only ever filled by an engine (and the emulated engines have none). */
static cudnnStatus_t finalize_knob_info(void *payload)
{
    (void)payload;
    return CUDNN_STATUS_BAD_PARAM;
}

#define TYPE(t, payload, attrs, init, fin) {t, sizeof(payload), attrs, COUNT(attrs), init, fin}
#define OP_TYPE(t, attrs, fin) TYPE(t, struct emu_bk_op, attrs, init_op, fin)

static const struct emu_bk_type types[] = {
    TYPE(CUDNN_BACKEND_TENSOR_DESCRIPTOR, struct emu_bk_tensor, tensor_attrs, init_tensor,
         finalize_tensor),
    TYPE(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, struct emu_bk_convolution, convolution_attrs, NULL,
         finalize_convolution),
    TYPE(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, struct emu_bk_pointwise, pointwise_attrs, NULL,
         NULL),
    OP_TYPE(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, conv_forward_attrs,
            finalize_convolution_op),
    OP_TYPE(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
            conv_backward_data_attrs, finalize_convolution_op),
    OP_TYPE(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
            conv_backward_filter_attrs, finalize_convolution_op),
    OP_TYPE(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, pointwise_op_attrs,
            finalize_pointwise_op),
    OP_TYPE(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR, norm_forward_attrs,
            finalize_norm_op),
    TYPE(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, struct emu_bk_graph, graph_attrs, NULL,
         emu_bk_finalize_graph),
    TYPE(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, struct emu_bk_heur, heur_attrs, NULL,
         emu_bk_finalize_heur),
    TYPE(CUDNN_BACKEND_ENGINE_DESCRIPTOR, struct emu_bk_engine, engine_attrs, NULL,
         emu_bk_finalize_engine),
    TYPE(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, struct emu_bk_engine_cfg, engine_cfg_attrs, NULL,
         emu_bk_finalize_engine_cfg),
    TYPE(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, struct emu_bk_plan, plan_attrs, NULL,
         emu_bk_finalize_plan),
    TYPE(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, struct emu_bk_variant_pack, variant_pack_attrs,
         NULL, finalize_variant_pack),
    TYPE(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, struct emu_bk_knob_choice, knob_choice_attrs, NULL,
         NULL),
    {CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR, sizeof(struct emu_bk_counts), NULL, 0, NULL,
     finalize_knob_info},
};

const struct emu_bk_type *emu_bk_type_info(int type)
{
    for (int i = 0; i < COUNT(types); i++)
        if ((int)types[i].type == type)
            return &types[i];
    return NULL;
}

int emu_bk_is_operation(int type)
{
    const struct emu_bk_type *info = emu_bk_type_info(type);
    return info && info->init == init_op;
}
