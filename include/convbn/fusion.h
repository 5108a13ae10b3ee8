/* The decision at the BN: fuse the matched pair, or run what the program asked for. */
#ifndef CONVBN_FUSION_H
#define CONVBN_FUSION_H

#include "convbn/pairing.h"
#include "convbn/records.h"

/* Returns CONVBN_FUSABLE when the mode and, in auto mode, the liveness oracle (asked about
 * the calling thread) allow fusing; otherwise CONVBN_REASON_GRAD_MODE or _NO_ORACLE. */
enum convbn_reason convbn_fusing_allowed(void);

/* An inference BN (any API) is about to run.  If it consumes its stream's pending conv and
 * the pair can and may be fused (geometry, liveness, aliasing), runs the pair as one
 * convolution writing bn->y and returns 1: the caller returns success without running the
 * BN.  Otherwise runs the matched conv if it is still deferred, records the pair and its
 * reason, and returns 0: the caller runs the BN itself. */
int convbn_fuse_bn(const struct convbn_bn_call *bn);

#endif
