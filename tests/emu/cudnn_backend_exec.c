/* cudnnBackendExecute of the cuDNN emulation, and the conversions of backend tensors and
 * convolutions to the legacy structs whose reference loops it reuses: a convolution
 * direction is computed by emu_conv_values (cudnn_conv.c), batch normalization inference by
 * emu_bn_normalize_spatial (cudnn_batchnorm.c), strided reads and writes by emu_gather and
 * emu_scatter_blend (cudnn_tensor_ops.c).  Values are FLOAT, HALF or BFLOAT16 computed in
 * fp32; results between operations (virtual tensors) stay in fp32.  Data pointers come from
 * the variant pack by unique id.  Writes only the output tensor's elements and the
 * workspace the plan asked for (filled with a pattern first); owns no state. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "emu_cudnn.h"

#define WORKSPACE_FILL_BYTE 0xa5

static int fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

cudnnStatus_t emu_bk_legacy_tensor(const struct emu_bk_tensor *t, struct cudnnTensorStruct *out)
{
    if (t->nb_dims < 3)
        return CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
    for (int i = 0; i < t->nb_dims; i++) {
        if (!fits_int(t->dims[i]) || !fits_int(t->strides[i]))
            return CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
        out->dims[i] = (int)t->dims[i];
        out->strides[i] = (int)t->strides[i];
    }
    out->is_set = 1;
    out->type = (cudnnDataType_t)t->data_type;
    out->nb_dims = t->nb_dims;
    return CUDNN_STATUS_SUCCESS;
}

/* The legacy convolution of c with groups groups; pre and post paddings must agree. */
static cudnnStatus_t legacy_convolution(const struct emu_bk_convolution *c, int groups,
                                        struct cudnnConvolutionStruct *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < c->spatial_dims; i++) {
        if (c->pre_paddings[i] != c->post_paddings[i])
            return CUDNN_STATUS_NOT_SUPPORTED_PADDING;
        if (!fits_int(c->pre_paddings[i]) || !fits_int(c->filter_strides[i]) ||
            !fits_int(c->dilations[i]))
            return CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
        out->pad[i] = (int)c->pre_paddings[i];
        out->stride[i] = (int)c->filter_strides[i];
        out->dilation[i] = (int)c->dilations[i];
    }
    out->is_set = 1;
    out->nb_spatial = (int)c->spatial_dims;
    out->mode = (cudnnConvolutionMode_t)c->mode;
    out->compute_type = (cudnnDataType_t)c->compute_type;
    out->group_count = groups;
    return CUDNN_STATUS_SUCCESS;
}

/* Slot of the tensor a convolution operation writes. */
static int written_slot(int kind)
{
    switch (kind) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR: return EMU_BK_CONV_X;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR: return EMU_BK_CONV_W;
    default: return EMU_BK_CONV_Y;
    }
}

/* The two tensors a convolution reads must share a computed type; the one it writes needs
 * a computed type of its own. */
static cudnnStatus_t check_conv_types(const struct emu_bk_op *op, int written)
{
    int a = written == EMU_BK_CONV_X ? EMU_BK_CONV_W : EMU_BK_CONV_X;
    int b = written == EMU_BK_CONV_Y ? EMU_BK_CONV_W : EMU_BK_CONV_Y;
    int32_t type = op->tensor[a].data_type;
    return type == op->tensor[b].data_type && emu_type_supported((cudnnDataType_t)type) &&
                   emu_type_supported((cudnnDataType_t)op->tensor[written].data_type)
               ? CUDNN_STATUS_SUCCESS
               : CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE;
}

cudnnStatus_t emu_bk_conv_geometry(const struct emu_bk_op *op, struct emu_conv_geometry *g)
{
    struct cudnnTensorStruct t[3];
    struct cudnnFilterStruct w = {0};
    struct cudnnConvolutionStruct conv;
    int written = written_slot(op->kind);
    cudnnStatus_t status = check_conv_types(op, written);
    for (int s = 0; s < 3 && status == CUDNN_STATUS_SUCCESS; s++)
        status = emu_bk_legacy_tensor(&op->tensor[s], &t[s]);
    if (status == CUDNN_STATUS_SUCCESS)
        status = legacy_convolution(&op->conv, t[EMU_BK_CONV_X].dims[1] / t[EMU_BK_CONV_W].dims[1],
                                    &conv);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    /* The geometry carries the type of the inputs; the written tensor keeps its own. */
    cudnnDataType_t type = t[written == EMU_BK_CONV_X ? EMU_BK_CONV_W : EMU_BK_CONV_X].type;
    for (int s = 0; s < 3; s++)
        t[s].type = type;
    w.is_set = 1;
    w.type = type;
    w.format = CUDNN_TENSOR_NCHW;
    w.nb_dims = t[EMU_BK_CONV_W].nb_dims;
    memcpy(w.dims, t[EMU_BK_CONV_W].dims, sizeof w.dims);
    status = emu_conv_geometry(&conv, &t[EMU_BK_CONV_X], &w, &t[EMU_BK_CONV_Y], g);
    if (status == CUDNN_STATUS_SUCCESS)
        emu_conv_tensor_strides(&t[EMU_BK_CONV_W], &g->w); /* w's own layout, any strides */
    return status;
}

/* Index of uid in the variant pack, or -1. */
static int find_uid(const struct emu_bk_variant_pack *pack, int64_t uid)
{
    for (int i = 0; i < pack->nb; i++)
        if (pack->uids[i] == uid)
            return i;
    return -1;
}

static void *data_of(const struct emu_bk_variant_pack *pack, const struct emu_bk_tensor *t)
{
    return pack->pointers[find_uid(pack, t->uid)];
}

/* Every real tensor of the graph needs a non-NULL pointer with its byte alignment. */
static cudnnStatus_t check_pointers(const struct emu_bk_graph *g,
                                    const struct emu_bk_variant_pack *pack)
{
    for (int o = 0; o < g->nb_ops; o++) {
        for (int s = 0; s < EMU_BK_OP_TENSORS; s++) {
            const struct emu_bk_tensor *t = &g->ops[o].tensor[s];
            if (t->nb_dims == 0 || t->is_virtual)
                continue;
            int i = find_uid(pack, t->uid);
            if (i < 0)
                return CUDNN_STATUS_BAD_PARAM;
            if (!pack->pointers[i])
                return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
            if (!t->is_by_value && (uintptr_t)pack->pointers[i] % (uint64_t)t->alignment != 0)
                return CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER;
        }
    }
    return CUDNN_STATUS_SUCCESS;
}

/* values = op(alpha1 * x, alpha2 * b) for one pointwise operation of a chain: the running
 * result is x (b when via_b), other[] holds the operand read from the other tensor. */
static void pointwise(const struct emu_bk_op *op, bool via_b, float *values, const float *other,
                      size_t count)
{
    float a1 = (float)op->alpha, a2 = (float)op->beta;
    int mode = op->pointwise.mode;
    for (size_t e = 0; e < count; e++) {
        float operand = mode == CUDNN_POINTWISE_IDENTITY ? 0.0f : other[e];
        float x = via_b ? operand : values[e], b = via_b ? values[e] : operand;
        values[e] = mode == CUDNN_POINTWISE_ADD   ? a1 * x + a2 * b
                    : mode == CUDNN_POINTWISE_MUL ? (a1 * x) * (a2 * b)
                                                  : a1 * x;
    }
}

/* Runs the chain of pointwise epilogues over values (shape: the convolution's output). */
static cudnnStatus_t run_epilogue(const struct emu_bk_graph *g,
                                  const struct emu_bk_variant_pack *pack,
                                  const struct cudnnTensorStruct *shape, float *values)
{
    size_t count = emu_element_count(shape);
    float *other = malloc(count * sizeof(float));
    if (!other)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    for (int i = 0; i < g->pattern.nb_epilogue; i++) {
        const struct emu_bk_op *op = &g->ops[g->pattern.epilogue[i]];
        bool via_b = g->pattern.via_b[i];
        const struct emu_bk_tensor *operand = &op->tensor[via_b ? EMU_BK_PW_X : EMU_BK_PW_B];
        struct cudnnTensorStruct t;
        if (operand->nb_dims > 0 && emu_bk_legacy_tensor(operand, &t) == CUDNN_STATUS_SUCCESS)
            emu_gather(&t, data_of(pack, operand), shape, other); /* broadcasts 1 x K x 1 x 1 */
        pointwise(op, via_b, values, other, count);
    }
    free(other);
    return CUDNN_STATUS_SUCCESS;
}

/* The tensor the graph's result goes to: the main operation's output or the last epilogue's. */
static const struct emu_bk_tensor *result_tensor(const struct emu_bk_graph *g)
{
    const struct emu_bk_pattern *p = &g->pattern;
    if (p->nb_epilogue > 0)
        return &g->ops[p->epilogue[p->nb_epilogue - 1]].tensor[EMU_BK_PW_Y];
    return &g->ops[p->main_op].tensor[written_slot(p->main_kind)];
}

static enum emu_conv_direction direction_of(int kind)
{
    switch (kind) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
        return EMU_CONV_BACKWARD_DATA;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
        return EMU_CONV_BACKWARD_FILTER;
    default: return EMU_CONV_FORWARD;
    }
}

/* Pointer of an input slot of a convolution; NULL for the slot it writes. */
static const void *input_of(const struct emu_bk_op *op, int slot,
                            const struct emu_bk_variant_pack *pack)
{
    return slot == written_slot(op->kind) ? NULL : data_of(pack, &op->tensor[slot]);
}

/* dst = alpha * conv + beta * dst, or the epilogue chain of alpha * conv into its result. */
static cudnnStatus_t run_convolution(const struct emu_bk_graph *g,
                                     const struct emu_bk_variant_pack *pack)
{
    const struct emu_bk_op *op = &g->ops[g->pattern.main_op];
    const struct emu_bk_tensor *result = result_tensor(g);
    struct emu_conv_geometry geometry;
    struct cudnnTensorStruct out, dst;
    cudnnStatus_t status = emu_bk_conv_geometry(op, &geometry);
    if (status == CUDNN_STATUS_SUCCESS)
        status = emu_bk_legacy_tensor(&op->tensor[written_slot(op->kind)], &out);
    if (status == CUDNN_STATUS_SUCCESS)
        status = emu_bk_legacy_tensor(result, &dst);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float *values = malloc(emu_element_count(&out) * sizeof(float));
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    emu_conv_values(direction_of(op->kind), &geometry, input_of(op, EMU_BK_CONV_X, pack),
                    input_of(op, EMU_BK_CONV_W, pack), input_of(op, EMU_BK_CONV_Y, pack), values);
    float alpha = (float)op->alpha, beta = (float)op->beta;
    if (g->pattern.nb_epilogue > 0) {
        size_t count = emu_element_count(&out);
        for (size_t e = 0; e < count; e++)
            values[e] *= alpha;
        status = run_epilogue(g, pack, &out, values);
        alpha = 1.0f;
        beta = 0.0f;
    }
    if (status == CUDNN_STATUS_SUCCESS)
        emu_scatter_blend(&dst, data_of(pack, result), values, alpha, beta);
    free(values);
    return status;
}

/* y = scale * (x - mean) * inv_variance + bias, one parameter per channel. */
static cudnnStatus_t run_norm(const struct emu_bk_graph *g, const struct emu_bk_variant_pack *pack)
{
    static const int slots[4] = {EMU_BK_NORM_SCALE, EMU_BK_NORM_BIAS, EMU_BK_NORM_MEAN,
                                 EMU_BK_NORM_INV_VARIANCE};
    const struct emu_bk_op *op = &g->ops[g->pattern.main_op];
    struct cudnnTensorStruct x, y, p; /* shapes were checked when the graph was finalized */
    emu_bk_legacy_tensor(&op->tensor[EMU_BK_NORM_X], &x);
    emu_bk_legacy_tensor(&op->tensor[EMU_BK_NORM_Y], &y);
    size_t count = emu_element_count(&x), channels = (size_t)x.dims[1];
    float *values = malloc((count + 4 * channels) * sizeof(float));
    double *stats = malloc(2 * channels * sizeof(double));
    if (!values || !stats) {
        free(values);
        free(stats);
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    }
    float *params = values + count; /* scale, bias, mean, inverse variance */
    for (int i = 0; i < 4; i++) {
        emu_bk_legacy_tensor(&op->tensor[slots[i]], &p);
        emu_gather(&p, data_of(pack, &op->tensor[slots[i]]), &p, params + i * channels);
    }
    for (size_t c = 0; c < 2 * channels; c++)
        stats[c] = params[2 * channels + c];
    emu_gather(&x, data_of(pack, &op->tensor[EMU_BK_NORM_X]), &x, values);
    emu_bn_normalize_spatial(&x, values, params, params + channels, stats, stats + channels);
    emu_scatter_blend(&y, data_of(pack, &op->tensor[EMU_BK_NORM_Y]), values, 1.0f, 0.0f);
    free(values);
    free(stats);
    return CUDNN_STATUS_SUCCESS;
}

/* A plan whose workspace is not empty needs a workspace pointer; it gets overwritten. */
static cudnnStatus_t claim_workspace(const struct emu_bk_plan *plan,
                                     const struct emu_bk_variant_pack *pack)
{
    if (plan->workspace == 0)
        return CUDNN_STATUS_SUCCESS;
    if (!pack->workspace)
        return CUDNN_STATUS_BAD_PARAM;
    memset(pack->workspace, WORKSPACE_FILL_BYTE, (size_t)plan->workspace);
    return CUDNN_STATUS_SUCCESS;
}

/* Runs executionPlan (finalized) on the tensors and workspace of variantPack (finalized).
 * Returns BAD_PARAM for an invalid handle, a missing unique id or workspace, the codes of
 * emu_bk_finalized for the descriptors, BAD_PARAM_NULL_POINTER / MISALIGNED_POINTER for bad
 * data pointers.  The caller owns every buffer. */
cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t executionPlan,
                                  cudnnBackendDescriptor_t variantPack)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    if (!emu_handle_valid(handle))
        return CUDNN_STATUS_BAD_PARAM;
    const struct emu_bk_plan *plan =
        emu_bk_finalized(executionPlan, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &status);
    const struct emu_bk_variant_pack *pack =
        plan ? emu_bk_finalized(variantPack, CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &status)
             : NULL;
    if (!pack)
        return status;
    const struct emu_bk_graph *g = &plan->cfg.engine.graph;
    status = check_pointers(g, pack);
    if (status == CUDNN_STATUS_SUCCESS)
        status = claim_workspace(plan, pack);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (g->pattern.main_kind == CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR)
        return run_norm(g, pack);
    return run_convolution(g, pack);
}
