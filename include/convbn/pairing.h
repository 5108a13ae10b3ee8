/* Whether a conv -> BN pair can be folded, and if not, why (one reason per pair). */
#ifndef CONVBN_PAIRING_H
#define CONVBN_PAIRING_H

#include "convbn/records.h"

enum convbn_reason {
    CONVBN_FUSABLE = 0,
    CONVBN_REASON_PER_ACTIVATION, /* per-activation BN: scale varies over space */
    CONVBN_REASON_BLEND,          /* conv or BN beta != 0: prior output is blended in */
    CONVBN_REASON_ACTIVATION,     /* bias-activation with a non-identity activation */
    CONVBN_REASON_RESIDUAL,       /* bias-activation with a z term (alpha2 != 0) */
    CONVBN_REASON_DTYPE,          /* data types other than float/half/bfloat16, or mixed */
    CONVBN_REASON_BN_PARAM_TYPE,  /* BN parameters not float */
    CONVBN_REASON_GRAD_MODE,      /* auto mode: the oracle says gradients are recorded */
    CONVBN_REASON_NO_ORACLE,      /* auto mode: no framework oracle to prove liveness */
    CONVBN_REASON_CAPTURE,        /* a CUDA graph capture is in progress */
    CONVBN_REASON_UNSUPPORTED,    /* cuDNN refused the shim's descriptors or workspace query */
    CONVBN_REASON_MEMORY_CAP,     /* shim device memory unavailable (CONVBN_MAX_DEVICE_MB) */
    CONVBN_REASON_ALIAS,          /* the BN output overlaps a pending input */
    CONVBN_REASON_FUSED_ERROR,    /* the fused path failed; the original calls ran instead */
    CONVBN_REASON_COUNT
};

/* Returns why no BN could be folded into this conv (its own blend, activation, z term or
 * types), or CONVBN_FUSABLE.  Pure. */
enum convbn_reason convbn_conv_reason(const struct convbn_conv_call *conv);

/* Returns the reason the pair cannot be folded (the conv's own reason first), or
 * CONVBN_FUSABLE.  Geometry and types only: liveness and resources are the planner's. */
enum convbn_reason convbn_pair_reason(const struct convbn_conv_call *conv,
                                      const struct convbn_bn_call *bn);

/* Returns the short name of a reason ("fusable", "per-activation", "blend", ...). */
const char *convbn_reason_name(enum convbn_reason reason);

#endif
