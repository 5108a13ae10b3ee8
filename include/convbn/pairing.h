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
    CONVBN_REASON_COUNT
};

/* Returns the reason the pair cannot be folded, or CONVBN_FUSABLE. Pure. */
enum convbn_reason convbn_pair_reason(const struct convbn_conv_call *conv,
                                      const struct convbn_bn_call *bn);

/* Returns the short name of a reason ("fusable", "per-activation", "blend", ...). */
const char *convbn_reason_name(enum convbn_reason reason);

#endif
