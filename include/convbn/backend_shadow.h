/* The shim's shadow of the program's cuDNN backend (graph API) descriptors: for each one,
 * its type and the attribute values the shim needs, copied when the program sets them, so
 * that an execution plan whose graph is a single convolution (forward, backward data or
 * backward filter) or a single batch-norm inference can be recognised at
 * cudnnBackendExecute without calling cuDNN.  Values of child descriptors are copied into
 * the parent when they are set, so destroying a child afterwards loses nothing.  The table
 * is bounded (CONVBN_SHADOW_MAX entries); a descriptor beyond the cap, of a type the shim
 * does not read, or with a value it does not understand is opaque. */
#ifndef CONVBN_BACKEND_SHADOW_H
#define CONVBN_BACKEND_SHADOW_H

#include <stdint.h>
#include <cudnn.h>

#include "convbn/records.h"

#define CONVBN_SHADOW_MAX 65536
#define CONVBN_SHADOW_PACK_MAX 32 /* tensors per variant pack the shim reads */

/* Which convolution a recognised graph runs. */
enum convbn_backend_dir { CONVBN_BACKEND_FWD, CONVBN_BACKEND_BWD_DATA, CONVBN_BACKEND_BWD_FILTER };

/* A graph recognised as one convolution on real tensors, in plain values, its operands in
 * forward roles: backward data keeps dx in x and dy in y, backward filter dw in w and dy
 * in y (the geometry of the forward convolution it differentiates). */
struct convbn_backend_conv {
    int valid;                      /* 0: the graph is opaque */
    int direction;                  /* enum convbn_backend_dir */
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
    int64_t uid_x, uid_w, uid_y;
    double alpha, beta;
};

/* A graph recognised as one batch-norm inference (NORM_FORWARD, mode BATCH_NORM, phase
 * INFERENCE) on real tensors with FLOAT parameters of one geometry, in plain values. */
struct convbn_backend_bn {
    int valid;                      /* 0: the graph is opaque */
    struct convbn_tensor_geom x, y, params;
    int64_t uid_x, uid_y, uid_scale, uid_bias, uid_mean, uid_inv_var;
};

/* The program created desc of the given type (cudnnBackendDescriptorType_t): starts its
 * shadow, replacing any stale one at that address.  Types the shim does not read get none. */
void convbn_shadow_create(cudnnBackendDescriptor_t desc, int type);

/* The program set an attribute of desc successfully (the arguments of
 * cudnnBackendSetAttribute): copies what the shim needs from values, including the shadows
 * of descriptor-valued attributes.  values is only read. */
void convbn_shadow_set(cudnnBackendDescriptor_t desc, int name, int type, int64_t count,
                       const void *values);

/* The program read an attribute of desc of the given type successfully, count elements
 * into values (cudnnBackendGetAttribute): descriptors read from a descriptor derived from a
 * graph (an engine heuristic's results, a plan's engine config) inherit its recognised
 * graph. */
void convbn_shadow_got(cudnnBackendDescriptor_t desc, int type, int64_t count,
                       const void *values);

/* The program finalized desc successfully: an operation graph of exactly one convolution
 * (forward, backward data or backward filter), or of exactly one batch-norm inference,
 * becomes recognised. */
void convbn_shadow_finalize(cudnnBackendDescriptor_t desc);

/* The program destroyed desc: forgets its shadow and returns 0 (destroy it now), or, for a
 * plan held by deferred work, marks it destroyed and returns 1: the caller must not destroy
 * it yet (the release of the last hold says when). */
int convbn_shadow_destroy(cudnnBackendDescriptor_t desc);

/* Takes one hold on a shadowed, not destroyed execution plan (deferred work will run it).
 * Returns 0, or -1 when plan has no shadow. */
int convbn_shadow_hold(cudnnBackendDescriptor_t plan);

/* Drops one hold on plan.  Returns 1 when it was the last one and the program already
 * destroyed the plan: the shadow is gone and the caller must now destroy the plan for real. */
int convbn_shadow_release(cudnnBackendDescriptor_t plan);

/* Copies the unique ids and data pointers of variant pack `pack` (at most cap of each).
 * Returns their number, or -1 when the pack is opaque or has more than cap. */
int convbn_shadow_pack(cudnnBackendDescriptor_t pack, int64_t *uids, void **pointers, int cap);

/* What an execution plan's graph was recognised as (convbn_shadow_plan_kind). */
enum convbn_plan_kind {
    CONVBN_PLAN_OPAQUE,   /* not a shadowed plan, destroyed, or a graph the shim does not read */
    CONVBN_PLAN_CONV_FWD, /* one convolution forward */
    CONVBN_PLAN_CONV_BWD, /* one convolution backward data or filter */
    CONVBN_PLAN_BN,       /* one batch-norm inference */
};

/* Returns what plan's graph is, from the plan's shadow alone: one locked lookup, so that an
 * execute of a plan the shim does not read costs no more (the variant pack is read by the
 * calls below, for the kinds that need it). */
enum convbn_plan_kind convbn_shadow_plan_kind(cudnnBackendDescriptor_t plan);

/* Fills *out (api BACKEND, kind PLAIN, algo -1, pointers from the variant pack; handle and
 * stream left for the caller) when plan's graph is a recognised convolution forward and
 * pack gives non-NULL pointers for its x, w and y.  Returns 0, or -1 when either is opaque
 * or the program destroyed the plan (held by deferred work). */
int convbn_shadow_conv_call(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                            struct convbn_conv_call *out);

/* Copies the unique ids of x, w and y (in that order) of plan's recognised convolution
 * forward, also for a plan the program destroyed while it was held.  Returns 0, or -1 when
 * plan has no such shadow. */
int convbn_shadow_conv_uids(cudnnBackendDescriptor_t plan, int64_t uids[3]);

/* convbn_shadow_conv_call for a recognised convolution of any direction, *out in forward
 * roles (struct convbn_backend_conv).  Returns its enum convbn_backend_dir, or -1. */
int convbn_shadow_conv_any(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                           struct convbn_conv_call *out);

/* Fills *out (api BACKEND, mode SPATIAL, inv_std 1, eps 0, alpha 1, beta 0, pointers from
 * the variant pack; handle and stream left for the caller) when plan's graph is a recognised
 * batch-norm inference and pack gives non-NULL pointers for all its tensors.  Returns 0, or
 * -1 when either is opaque or the program destroyed the plan. */
int convbn_shadow_bn_call(cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                          struct convbn_bn_call *out);

/* Copies into *out the recognised graph behind desc (valid 0 when opaque or unknown); for
 * tests. */
void convbn_shadow_recognised(cudnnBackendDescriptor_t desc, struct convbn_backend_conv *out);

/* Returns the number of shadowed descriptors (for tests). */
int convbn_shadow_count(void);

#endif
