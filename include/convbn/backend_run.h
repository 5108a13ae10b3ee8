/* The resources of a deferred backend (graph API) convolution (invariant 2): a hold on the
 * program's execution plan, so that the program's destroy of it is postponed until the
 * deferred run, and a shim-owned variant pack with the program's unique ids and data
 * pointers and the shim's own workspace. */
#ifndef CONVBN_BACKEND_RUN_H
#define CONVBN_BACKEND_RUN_H

#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/records.h"

/* Secures what deferring backend conv `conv` (on conv->stream), executed as the program's
 * program->plan with program->pack, needs into *out.  Returns CONVBN_FUSABLE, or the reason it cannot be deferred
 * (CONVBN_REASON_UNSUPPORTED: cuDNN refused the queries or the shim pack, or the program's
 * pack lacks a workspace the plan needs; CONVBN_REASON_MEMORY_CAP: no shim workspace); on
 * failure *out holds nothing. */
enum convbn_reason convbn_backend_secure(const struct convbn_conv_call *conv,
                                         const struct convbn_backend_run *program,
                                         struct convbn_backend_run *out);

/* Returns 1 when the program's pack gives plan the workspace it needs (none needed, or a
 * non-NULL workspace pointer), read with the real cudnnBackendGetAttribute; 0 otherwise or
 * when the queries fail (the real execute then decides, with its own status). */
int convbn_backend_workspace_ok(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack);

/* Runs the deferred backend conv exactly as the program asked: the real cudnnBackendExecute
 * of its plan with the shim pack on conv->handle (already bound to conv->stream). */
cudnnStatus_t convbn_backend_execute(const struct convbn_conv_call *conv,
                                     const struct convbn_backend_run *run);

/* For CONVBN_VERIFY: returns a new shim variant pack like run->pack (the deferred conv's:
 * same unique ids, pointers and workspace) but with every data pointer equal to y (the conv
 * output) replaced by `to`, or NULL when cuDNN refuses a query or the pack.  The caller
 * owns it and destroys it with convbn_backend_pack_destroy. */
cudnnBackendDescriptor_t convbn_backend_pack_into(const struct convbn_backend_run *run,
                                                  const void *y, void *to);

/* Destroys a pack returned by convbn_backend_pack_into. */
void convbn_backend_pack_destroy(cudnnBackendDescriptor_t pack);

/* For CONVBN_VERIFY: runs the program's backend BN (bn->plan, still alive: called within its
 * cudnnBackendExecute) on bn->handle with a shim pack that is the program's (bn->pack) with
 * the BN's input read from x and its output written to y (for a BN in place, x == y), and
 * the plan's workspace, if any, from the stream's CONVBN_SCRATCH_WORKSPACE.  Returns the
 * real execute's status, or CUDNN_STATUS_INTERNAL_ERROR when a query, the scratch or the
 * pack fails. */
cudnnStatus_t convbn_backend_bn_into(const struct convbn_bn_call *bn, const void *x, void *y);

/* Destroys the shim pack and drops the plan hold, destroying the plan for real when the
 * program already destroyed it; clears *run.  Nothing to do for a legacy conv. */
void convbn_backend_release(struct convbn_backend_run *run);

#endif
