/* Operation graphs, heuristics, engines, engine configurations and execution plans of the
 * cuDNN emulation's backend API: their finalize steps (called through the type table of
 * cudnn_backend_types.c).  A graph finalizes only if it is one of the patterns the
 * emulation computes; anything else is CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN (or another
 * NOT_SUPPORTED code) there, as cuDNN reports graphs it has no engine for:
 *   - one CONVOLUTION_FORWARD, BACKWARD_DATA or BACKWARD_FILTER on real tensors;
 *   - CONVOLUTION_FORWARD whose virtual output runs through a chain of POINTWISE ADD, MUL or
 *     IDENTITY operations, the other operand of ADD/MUL a real tensor of the output's shape
 *     or 1 x K x 1 x ..., the last output real (a bias or scale + bias epilogue);
 *   - one NORM_FORWARD in BATCH_NORM mode, INFERENCE phase.
 * Every graph has one engine (global index 0), which the heuristics always return; its
 * workspace is 0 bytes, or EMU_BK_EPILOGUE_WORKSPACE with epilogues.  The environment
 * variable EMU_CUDNN_NO_FUSION_ENGINE makes plans of graphs with epilogues fail to finalize
 * (CUDNN_STATUS_NOT_SUPPORTED).  Owns no state. */
#include <stdlib.h>
#include <string.h>

#include "emu_cudnn.h"

static int used(const struct emu_bk_tensor *t)
{
    return t->nb_dims > 0;
}

static int same_tensor(const struct emu_bk_tensor *a, const struct emu_bk_tensor *b)
{
    size_t dims = (size_t)a->nb_dims * sizeof(int64_t);
    return a->nb_dims == b->nb_dims && a->data_type == b->data_type &&
           a->is_virtual == b->is_virtual && a->is_by_value == b->is_by_value &&
           !memcmp(a->dims, b->dims, dims) && !memcmp(a->strides, b->strides, dims);
}

/* Tensors that share a unique id must describe the same tensor. */
static cudnnStatus_t check_uids(const struct emu_bk_graph *g)
{
    const struct emu_bk_tensor *seen[EMU_BK_MAX_OPS * EMU_BK_OP_TENSORS];
    int nb = 0;
    for (int o = 0; o < g->nb_ops; o++) {
        for (int s = 0; s < EMU_BK_OP_TENSORS; s++) {
            const struct emu_bk_tensor *t = &g->ops[o].tensor[s];
            for (int i = 0; used(t) && i < nb; i++)
                if (seen[i]->uid == t->uid && !same_tensor(seen[i], t))
                    return CUDNN_STATUS_BAD_PARAM;
            if (used(t))
                seen[nb++] = t;
        }
    }
    return CUDNN_STATUS_SUCCESS;
}

/* Slot of the tensor an operation writes. */
static int output_slot(int kind)
{
    switch (kind) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR: return EMU_BK_CONV_Y;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR: return EMU_BK_CONV_X;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR: return EMU_BK_CONV_W;
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR: return EMU_BK_NORM_Y;
    default: return EMU_BK_PW_Y;
    }
}

/* The one pointwise operation that reads uid through x or b, or -1 if there is not exactly
 * one; *via_b tells which port. */
static int sole_consumer(const struct emu_bk_graph *g, int64_t uid, bool *via_b)
{
    int found = -1, count = 0;
    for (int o = 0; o < g->nb_ops; o++) {
        const struct emu_bk_op *op = &g->ops[o];
        if (op->kind != CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
            continue;
        for (int s = EMU_BK_PW_X; s <= EMU_BK_PW_B; s++) {
            if (used(&op->tensor[s]) && op->tensor[s].uid == uid) {
                found = o;
                *via_b = s == EMU_BK_PW_B;
                count++;
            }
        }
    }
    return count == 1 ? found : -1;
}

/* ADD and MUL with a real other operand, or IDENTITY fed through x; FLOAT math. */
static int epilogue_supported(const struct emu_bk_op *op, bool via_b)
{
    const struct emu_bk_tensor *other = &op->tensor[via_b ? EMU_BK_PW_X : EMU_BK_PW_B];
    int mode = op->pointwise.mode;
    if (op->pointwise.math_prec != CUDNN_DATA_FLOAT || !used(&op->tensor[EMU_BK_PW_Y]) ||
        used(&op->tensor[EMU_BK_PW_DX]) || used(&op->tensor[EMU_BK_PW_DY]) ||
        used(&op->tensor[EMU_BK_PW_T]))
        return 0;
    if (mode == CUDNN_POINTWISE_IDENTITY)
        return !via_b && !used(other);
    return (mode == CUDNN_POINTWISE_ADD || mode == CUDNN_POINTWISE_MUL) && !other->is_virtual &&
           !other->is_by_value;
}

/* Follows the main operation's output through the pointwise operations; each must consume
 * the previous (virtual) result, and the chain must use every operation and end real. */
static cudnnStatus_t follow_chain(const struct emu_bk_graph *g, struct emu_bk_pattern *p)
{
    const struct emu_bk_op *main = &g->ops[p->main_op];
    const struct emu_bk_tensor *out = &main->tensor[output_slot(main->kind)];
    bool visited[EMU_BK_MAX_OPS] = {false};
    visited[p->main_op] = true;
    for (p->nb_epilogue = 0; p->nb_epilogue < g->nb_ops - 1; p->nb_epilogue++) {
        bool via_b = false;
        int next = out->is_virtual ? sole_consumer(g, out->uid, &via_b) : -1;
        if (next < 0 || visited[next] || !epilogue_supported(&g->ops[next], via_b))
            return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
        visited[next] = true;
        p->epilogue[p->nb_epilogue] = (int8_t)next;
        p->via_b[p->nb_epilogue] = via_b;
        out = &g->ops[next].tensor[EMU_BK_PW_Y];
    }
    return out->is_virtual ? CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN : CUDNN_STATUS_SUCCESS;
}

/* Finds the one non-pointwise operation and checks the graph's shape around it. */
static cudnnStatus_t find_pattern(const struct emu_bk_graph *g, struct emu_bk_pattern *p)
{
    p->main_op = -1;
    for (int o = 0; o < g->nb_ops; o++) {
        if (g->ops[o].kind == CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
            continue;
        if (p->main_op >= 0)
            return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
        p->main_op = o;
    }
    if (p->main_op < 0)
        return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
    const struct emu_bk_op *main = &g->ops[p->main_op];
    p->main_kind = main->kind;
    if (g->nb_ops > 1 && main->kind != CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR)
        return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
    if (main->kind == CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR &&
        (main->norm_mode != CUDNN_BATCH_NORM || main->norm_phase != CUDNN_NORM_FWD_INFERENCE))
        return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
    for (int s = 0; s < EMU_BK_OP_TENSORS; s++)
        if (s != output_slot(main->kind) && main->tensor[s].is_virtual)
            return CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN;
    return follow_chain(g, p);
}

/* A tensor the emulation reads or writes: a computed type and a legacy-compatible shape. */
static cudnnStatus_t check_data(const struct emu_bk_tensor *t)
{
    struct cudnnTensorStruct legacy;
    if (!emu_type_supported((cudnnDataType_t)t->data_type))
        return CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE;
    return emu_bk_legacy_tensor(t, &legacy);
}

/* Returns 1 if t has out's rank and either out's dims or 1 x K x 1 x ... */
static int full_or_per_channel(const struct emu_bk_tensor *t, const struct emu_bk_tensor *out)
{
    int full = t->nb_dims == out->nb_dims, channel = full;
    for (int i = 0; i < t->nb_dims && full + channel > 0; i++) {
        full &= t->dims[i] == out->dims[i];
        channel &= t->dims[i] == (i == 1 ? out->dims[1] : 1);
    }
    return full || channel;
}

/* The pointwise operation op of a chain on out: its result and other operand. */
static cudnnStatus_t check_epilogue(const struct emu_bk_op *op, bool via_b,
                                    const struct emu_bk_tensor *out)
{
    const struct emu_bk_tensor *y = &op->tensor[EMU_BK_PW_Y];
    const struct emu_bk_tensor *other = &op->tensor[via_b ? EMU_BK_PW_X : EMU_BK_PW_B];
    cudnnStatus_t status = check_data(y);
    if (status == CUDNN_STATUS_SUCCESS && used(other))
        status = check_data(other);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    size_t dims = (size_t)out->nb_dims * sizeof(int64_t);
    if (y->nb_dims != out->nb_dims || memcmp(y->dims, out->dims, dims) ||
        (used(other) && !full_or_per_channel(other, out)))
        return CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t check_convolution(const struct emu_bk_graph *g)
{
    const struct emu_bk_op *op = &g->ops[g->pattern.main_op];
    const struct emu_bk_tensor *out = &op->tensor[output_slot(op->kind)];
    struct emu_conv_geometry geometry;
    cudnnStatus_t status = emu_bk_conv_geometry(op, &geometry);
    if (status == CUDNN_STATUS_SUCCESS && out->is_virtual && op->beta != 0.0)
        status = CUDNN_STATUS_NOT_SUPPORTED; /* nothing to blend a virtual output with */
    for (int i = 0; status == CUDNN_STATUS_SUCCESS && i < g->pattern.nb_epilogue; i++)
        status = check_epilogue(&g->ops[g->pattern.epilogue[i]], g->pattern.via_b[i], out);
    return status;
}

static cudnnStatus_t check_norm(const struct emu_bk_op *op)
{
    static const int slots[5] = {EMU_BK_NORM_Y, EMU_BK_NORM_MEAN, EMU_BK_NORM_INV_VARIANCE,
                                 EMU_BK_NORM_SCALE, EMU_BK_NORM_BIAS};
    const struct emu_bk_tensor *x = &op->tensor[EMU_BK_NORM_X];
    cudnnStatus_t status = check_data(x);
    for (int i = 0; status == CUDNN_STATUS_SUCCESS && i < 5; i++)
        status = check_data(&op->tensor[slots[i]]);
    if (status == CUDNN_STATUS_SUCCESS && x->nb_dims != 4 && x->nb_dims != 5)
        status = CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
    return status;
}

cudnnStatus_t emu_bk_finalize_graph(void *payload)
{
    const struct emu_bk_type *info = emu_bk_type_info(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    struct emu_bk_graph *g = payload;
    g->nb_ops = emu_bk_count(info, g, CUDNN_ATTR_OPERATIONGRAPH_OPS);
    g->engine_count = 1;
    if (g->dynamic_shape)
        return CUDNN_STATUS_NOT_SUPPORTED;
    cudnnStatus_t status = check_uids(g);
    if (status == CUDNN_STATUS_SUCCESS)
        status = find_pattern(g, &g->pattern);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (g->pattern.main_kind == CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR)
        return check_norm(&g->ops[g->pattern.main_op]);
    return check_convolution(g);
}

static int64_t workspace_for(const struct emu_bk_graph *g)
{
    return g->pattern.nb_epilogue > 0 ? EMU_BK_EPILOGUE_WORKSPACE : 0;
}

/* The heuristics' one result: engine 0 of the graph, no knobs, finalized. */
cudnnStatus_t emu_bk_finalize_heur(void *payload)
{
    const struct emu_bk_type *engine = emu_bk_type_info(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    const struct emu_bk_type *cfg = emu_bk_type_info(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    struct emu_bk_heur *h = payload;
    struct emu_bk_engine_cfg *result = &h->results[0];
    memset(result, 0, sizeof *result);
    result->engine.graph = h->graph;
    emu_bk_mark_set(engine, &result->engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, 1);
    emu_bk_mark_set(engine, &result->engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 1);
    emu_bk_mark_set(cfg, result, CUDNN_ATTR_ENGINECFG_ENGINE, 1);
    result->workspace = workspace_for(&h->graph);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t emu_bk_finalize_engine(void *payload)
{
    const struct emu_bk_engine *e = payload;
    return e->global_index >= 0 && e->global_index < e->graph.engine_count
               ? CUDNN_STATUS_SUCCESS
               : CUDNN_STATUS_BAD_PARAM;
}

/* The emulated engines have no knobs, so no knob choice applies. */
cudnnStatus_t emu_bk_finalize_engine_cfg(void *payload)
{
    const struct emu_bk_type *info = emu_bk_type_info(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    struct emu_bk_engine_cfg *c = payload;
    if (emu_bk_count(info, c, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES) > 0)
        return CUDNN_STATUS_NOT_SUPPORTED;
    c->workspace = workspace_for(&c->engine.graph);
    return CUDNN_STATUS_SUCCESS;
}

/* EMU_CUDNN_NO_FUSION_ENGINE set: no engine runs a graph with epilogues, as on a cuDNN or
 * card without runtime fusion; their plans fail to finalize (tests the callers' fallback). */
cudnnStatus_t emu_bk_finalize_plan(void *payload)
{
    struct emu_bk_plan *p = payload;
    if (p->cfg.engine.graph.pattern.nb_epilogue > 0 && getenv("EMU_CUDNN_NO_FUSION_ENGINE"))
        return CUDNN_STATUS_NOT_SUPPORTED;
    p->workspace = p->cfg.workspace;
    return CUDNN_STATUS_SUCCESS;
}
