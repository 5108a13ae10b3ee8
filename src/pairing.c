/* Decides whether a matched conv -> BN pair can be folded into one convolution
 * (DESIGN.md section 1) and names the reason when it cannot.  Pure function of the two
 * records; knows nothing of streams, modes or liveness (the planner owns those). */
#include "convbn/pairing.h"

static const char *const reason_names[CONVBN_REASON_COUNT] = {
    [CONVBN_FUSABLE] = "fusable",
    [CONVBN_REASON_PER_ACTIVATION] = "per-activation",
    [CONVBN_REASON_BLEND] = "blend",
    [CONVBN_REASON_ACTIVATION] = "activation",
    [CONVBN_REASON_RESIDUAL] = "residual-input",
    [CONVBN_REASON_DTYPE] = "dtype",
    [CONVBN_REASON_BN_PARAM_TYPE] = "bn-param-type",
    [CONVBN_REASON_GRAD_MODE] = "grad-mode",
    [CONVBN_REASON_NO_ORACLE] = "no-oracle",
    [CONVBN_REASON_CAPTURE] = "graph-capture",
    [CONVBN_REASON_UNSUPPORTED] = "unsupported",
    [CONVBN_REASON_MEMORY_CAP] = "memory-cap",
    [CONVBN_REASON_ALIAS] = "alias",
    [CONVBN_REASON_FUSED_ERROR] = "fused-error",
};

const char *convbn_reason_name(enum convbn_reason reason)
{
    return reason < CONVBN_REASON_COUNT ? reason_names[reason] : "unknown";
}

static int foldable_type(int type)
{
    return type == CUDNN_DATA_FLOAT || type == CUDNN_DATA_HALF || type == CUDNN_DATA_BFLOAT16;
}

enum convbn_reason convbn_conv_reason(const struct convbn_conv_call *conv)
{
    if (conv->kind == CONVBN_CONV_BIAS_ACT && conv->activation != CUDNN_ACTIVATION_IDENTITY)
        return CONVBN_REASON_ACTIVATION;
    if (conv->kind == CONVBN_CONV_BIAS_ACT && conv->alpha2 != 0.0)
        return CONVBN_REASON_RESIDUAL;
    if (conv->beta != 0.0)
        return CONVBN_REASON_BLEND;
    if (!foldable_type(conv->y.type) || conv->w.type != conv->y.type ||
        conv->x.type != conv->y.type)
        return CONVBN_REASON_DTYPE;
    return CONVBN_FUSABLE;
}

enum convbn_reason convbn_pair_reason(const struct convbn_conv_call *conv,
                                      const struct convbn_bn_call *bn)
{
    enum convbn_reason reason = convbn_conv_reason(conv);
    if (reason != CONVBN_FUSABLE)
        return reason;
    if (bn->mode == CUDNN_BATCHNORM_PER_ACTIVATION)
        return CONVBN_REASON_PER_ACTIVATION;
    if (bn->beta != 0.0)
        return CONVBN_REASON_BLEND;
    if (bn->y.type != conv->y.type)
        return CONVBN_REASON_DTYPE;
    if (bn->params.type != CUDNN_DATA_FLOAT)
        return CONVBN_REASON_BN_PARAM_TYPE;
    return CONVBN_FUSABLE;
}
