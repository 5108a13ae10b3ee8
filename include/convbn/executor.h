/* The executor: runs what the planner decided, through the real cuDNN and the fold kernel. */
#ifndef CONVBN_EXECUTOR_H
#define CONVBN_EXECUTOR_H

#include "convbn/pairing.h"
#include "convbn/planner.h"

/* Runs a deferred conv exactly as the program asked (its algorithm, alpha/beta, bias) on its
 * stream, with the shim's descriptors and workspace, then the absorbed bias add if any; a
 * backend conv runs its held plan with its shim variant pack instead.
 * Returns the cuDNN status (the program already got success; a failure is logged). */
cudnnStatus_t convbn_exec_deferred(const struct convbn_pending *p);

/* Runs the pair as one convolution with the BN folded into it, writing bn->y_ptr: the fold
 * kernel computes W' and b' into shim scratch, then one bias-activation forward with an
 * identity activation.  Returns CONVBN_FUSABLE on success; otherwise the reason
 * (CONVBN_REASON_MEMORY_CAP, CONVBN_REASON_FUSED_ERROR) and the caller runs the original
 * calls, which overwrite anything a failed attempt may have written. */
enum convbn_reason convbn_exec_fused(const struct convbn_pending *p,
                                     const struct convbn_bn_call *bn);

#endif
