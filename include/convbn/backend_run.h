/* The resources of a deferred backend (graph API) convolution (invariant 2): a hold on the
 * program's execution plan, so that the program's destroy of it is postponed until the
 * deferred run, the shim's own workspace and a shim variant pack. */
#ifndef CONVBN_BACKEND_RUN_H
#define CONVBN_BACKEND_RUN_H

#include "convbn/pairing.h"
#include "convbn/planner.h"
#include "convbn/records.h"

/* Builds a finalized shim variant pack with the real cuDNN calls: n unique ids and data
 * pointers, and `workspace` (NULL when none is needed).  Returns it (the caller destroys it
 * with the real cudnnBackendDestroyDescriptor), or NULL when cuDNN refuses it. */
cudnnBackendDescriptor_t convbn_backend_pack(const int64_t *uids, void *const *pointers, int n,
                                             void *workspace);

/* Secures what deferring backend conv `conv` (on conv->stream), executed as the program's
 * plan with the program's variant pack, needs: a hold on plan, the stream's
 * CONVBN_SCRATCH_PLAN workspace of the plan's size and a shim variant pack (*shim_pack: the
 * plan's x, w and y unique ids, conv's pointers, that workspace).  Returns CONVBN_FUSABLE,
 * or the reason it cannot be deferred (CONVBN_REASON_UNSUPPORTED: cuDNN refused a query or
 * the shim pack, the program's pack lacks a workspace the plan needs, or plan has no shadow;
 * CONVBN_REASON_MEMORY_CAP: no shim workspace); on failure nothing is held. */
enum convbn_reason convbn_backend_secure(const struct convbn_conv_call *conv,
                                         cudnnBackendDescriptor_t plan,
                                         cudnnBackendDescriptor_t pack,
                                         cudnnBackendDescriptor_t *shim_pack);

/* Returns 1 when the program's pack gives plan the workspace it needs (none needed, or a
 * non-NULL workspace pointer), read with the real cudnnBackendGetAttribute; 0 otherwise or
 * when the queries fail (the real execute then decides, with its own status). */
int convbn_backend_workspace_ok(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack);

/* Runs the deferred backend conv exactly as the program asked: the real cudnnBackendExecute
 * of its held plan on conv->handle (already bound to conv->stream) with the shim pack from
 * convbn_backend_secure; with pack NULL (CONVBN_VERIFY, whose conv record points y at
 * scratch) with a pack built now from conv and destroyed after the call.  Returns the real
 * status, or an internal error when that pack cannot be made. */
cudnnStatus_t convbn_backend_execute(const struct convbn_conv_call *conv,
                                     cudnnBackendDescriptor_t plan,
                                     cudnnBackendDescriptor_t pack);

/* For CONVBN_VERIFY: runs the program's backend BN (bn->plan, still alive: called within its
 * cudnnBackendExecute) on bn->handle with a shim pack that is the program's (bn->pack) with
 * the BN's input read from x and its output written to y (for a BN in place, x == y), and
 * the plan's workspace, if any, from the stream's CONVBN_SCRATCH_WORKSPACE.  Returns the
 * real execute's status, or CUDNN_STATUS_INTERNAL_ERROR when a query, the scratch or the
 * pack fails. */
cudnnStatus_t convbn_backend_bn_into(const struct convbn_bn_call *bn, const void *x, void *y);

/* Destroys the shim pack (if any) and drops the hold convbn_backend_secure took on plan,
 * destroying the plan for real when the program already destroyed it.  Nothing to do for
 * NULLs (a legacy conv). */
void convbn_backend_release(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack);

#endif
