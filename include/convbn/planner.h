/* The planner: at most one candidate conv per stream, matched against the BN that follows.
 * In observe mode a candidate has already run; "flushing" it only forgets it, so observe
 * mode reports exactly the pairs that fusion would see. */
#ifndef CONVBN_PLANNER_H
#define CONVBN_PLANNER_H

#include "convbn/records.h"

/* A conv forward on conv->stream returned success: it becomes that stream's candidate,
 * replacing (flushing) any earlier one. */
void convbn_planner_conv(const struct convbn_conv_call *conv);

/* A BN inference on bn->stream is about to run.  If it consumes that stream's candidate
 * (same buffer, dims, strides and type), removes the candidate, copies it to *conv and
 * returns 1.  Otherwise flushes what the BN could observe and returns 0. */
int convbn_planner_take_match(const struct convbn_bn_call *bn, struct convbn_conv_call *conv);

/* Another call that enqueues GPU work on `stream` is about to run: flushes the candidates it
 * could observe (its stream's, the legacy default stream's, and all of them if `stream` is
 * the legacy default stream). */
void convbn_planner_flush(cudaStream_t stream);

/* The handle is being destroyed: flushes every candidate issued through it. */
void convbn_planner_forget_handle(cudnnHandle_t handle);

/* Returns the number of candidates currently held (for tests). */
int convbn_planner_pending(void);

#endif
