/* The decision at the BN (DESIGN.md section 3): given the pending conv the BN consumes,
 * fuse only when the geometry folds, the conv output is provably dead (mode fuse, or the
 * liveness oracle in mode auto, asked on the BN's thread) and the BN output does not
 * overlap anything the fused convolution reads (invariants 1-4).  Every outcome is recorded
 * in the statistics.  Owns no state. */
#include <stdint.h>

#include "convbn/executor.h"
#include "convbn/fusion.h"
#include "convbn/liveness.h"
#include "convbn/planner.h"
#include "convbn/shim.h"
#include "convbn/stats.h"
#include "convbn/verify.h"

static int overlaps(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a && b && a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

/* Returns 1 if the BN output overlaps an input of the pending conv.  A BN writing in place
 * over the conv output cannot: cuDNN's convolution forbids y overlapping its inputs. */
static int output_aliases_input(const struct convbn_pending *p, const struct convbn_bn_call *bn)
{
    const struct convbn_conv_call *c = &p->conv;
    if (bn->y_ptr == c->y_ptr && convbn_tensor_same(&bn->y, &c->y))
        return 0;
    size_t out = convbn_tensor_span_bytes(&bn->y);
    return overlaps(bn->y_ptr, out, c->x_ptr, convbn_tensor_span_bytes(&c->x)) ||
           overlaps(bn->y_ptr, out, c->w_ptr, c->w_bytes) ||
           (c->bias_ptr && overlaps(bn->y_ptr, out, c->bias_ptr, convbn_tensor_span_bytes(&c->bias)));
}

enum convbn_reason convbn_fusing_allowed(void)
{
    if (convbn_cfg.mode == CONVBN_MODE_FUSE)
        return CONVBN_FUSABLE;
    switch (convbn_liveness_query()) {
    case CONVBN_LIVENESS_DEAD: return CONVBN_FUSABLE;
    case CONVBN_LIVENESS_GRAD_MODE: return CONVBN_REASON_GRAD_MODE;
    default: return CONVBN_REASON_NO_ORACLE;
    }
}

/* Returns why the matched pair must not be fused now, or CONVBN_FUSABLE. */
static enum convbn_reason decline_reason(const struct convbn_pending *p,
                                         const struct convbn_bn_call *bn)
{
    enum convbn_reason reason = p->deferred ? CONVBN_FUSABLE : p->reason;
    if (reason == CONVBN_FUSABLE)
        reason = convbn_pair_reason(&p->conv, bn);
    if (reason == CONVBN_FUSABLE && p->deferred)
        reason = convbn_fusing_allowed();
    if (reason == CONVBN_FUSABLE && p->deferred && output_aliases_input(p, bn))
        reason = CONVBN_REASON_ALIAS;
    return reason;
}

int convbn_fuse_bn(const struct convbn_bn_call *bn)
{
    struct convbn_pending p;
    if (!convbn_planner_take_match(bn, &p))
        return 0;
    enum convbn_reason reason = decline_reason(&p, bn);
    int fused = 0;
    if (reason == CONVBN_FUSABLE && p.deferred) {
        reason = convbn_exec_fused(&p, bn);
        fused = reason == CONVBN_FUSABLE;
        p.deferred = !fused;
    }
    if (!fused)
        convbn_planner_finish(&p, "unfused pair");
    convbn_stats_pair(&p.conv, bn, reason, fused);
    if (fused && convbn_cfg.verify)
        convbn_verify_pair(&p, bn);
    if (fused)
        convbn_planner_finish(&p, "unfused pair");
    return fused;
}
