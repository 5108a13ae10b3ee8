/* The planner (DESIGN.md section 3): at most one pending conv per stream.  A conv that
 * could pair is deferred (it has not run; the call returned success); in observe mode, or
 * when deferral is not possible, the conv runs and is remembered as a candidate so the
 * pair is still reported.  Anything that could observe a pending conv flushes it first. */
#ifndef CONVBN_PLANNER_H
#define CONVBN_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "convbn/desc_cache.h"
#include "convbn/pairing.h"
#include "convbn/records.h"

/* What a deferred backend conv holds: the program's plan (a hold in the shadow table, so the
 * program's destroy is postponed) and a shim-owned variant pack (the program's uids and
 * pointers, the shim's workspace).  Both NULL for a legacy conv. */
struct convbn_pending {
    struct convbn_conv_call conv;
    int deferred;                    /* 1: the conv has not run yet */
    enum convbn_reason reason;       /* why it was not deferred; CONVBN_FUSABLE otherwise */
    struct convbn_conv_descs *descs; /* shim-owned descriptors, held while deferred */
    size_t workspace_size;           /* shim workspace the deferred conv needs */
    struct convbn_fused_choice fused; /* the geometry's fused-path choice when deferred */
    cudnnBackendDescriptor_t backend_plan; /* backend conv: its held plan; NULL for legacy */
    cudnnBackendDescriptor_t backend_pack; /* backend conv: its shim variant pack */
};

/* A conv forward is about to run on conv->stream (whose pending work was flushed).  Defers
 * it when it could pair and everything it needs is secured (mode, liveness, geometry,
 * descriptors, workspace): returns 1 and the caller returns success without running it.
 * Otherwise returns 0 and stores in *why_not the reason a pair with it cannot fuse
 * (CONVBN_FUSABLE in observe mode); the caller runs it and calls convbn_planner_ran. */
int convbn_planner_offer(const struct convbn_conv_call *conv, size_t program_workspace,
                         enum convbn_reason *why_not);

/* convbn_planner_offer for a backend conv (api BACKEND) executed as plan with variant pack
 * `pack` (the program's, valid during the call only): instead of the workspace query, a
 * hold on plan and a shim variant pack with the shim's workspace (src/backend_run.c). */
int convbn_planner_offer_backend(const struct convbn_conv_call *conv,
                                 cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack,
                                 enum convbn_reason *why_not);

/* A conv forward ran and succeeded: it becomes its stream's candidate (not deferred). */
void convbn_planner_ran(const struct convbn_conv_call *conv, enum convbn_reason why_not);

enum convbn_absorb { CONVBN_ABSORB_NONE, CONVBN_ABSORB_DEFERRED, CONVBN_ABSORB_RECORDED };

/* A cudnnAddTensor adds the per-channel bias `bias` (geometry bias_geom, alpha 1, beta 1)
 * onto c_ptr/c_geom on stream.  If that is the output of the stream's pending conv (plain
 * forward, no bias yet), records the bias in it and returns CONVBN_ABSORB_DEFERRED (the
 * conv is deferred: do not run the add) or CONVBN_ABSORB_RECORDED (the conv already ran:
 * run the add, the candidate stays).  Otherwise returns CONVBN_ABSORB_NONE and flushes. */
enum convbn_absorb convbn_planner_absorb_bias(cudaStream_t stream, const void *c_ptr,
                                              const struct convbn_tensor_geom *c_geom,
                                              const void *bias,
                                              const struct convbn_tensor_geom *bias_geom,
                                              const char *trigger);

/* A BN inference on bn->stream is about to run.  If it consumes that stream's pending conv
 * (same buffer, dims, strides and type), removes it into *out (the caller now owns it and
 * must finish it with convbn_planner_finish) and returns 1.  Otherwise flushes what the BN
 * could observe and returns 0. */
int convbn_planner_take_match(const struct convbn_bn_call *bn, struct convbn_pending *out);

/* Runs a taken pending conv if it is still deferred and releases what it holds; trigger
 * names why (counted in the summary). */
void convbn_planner_finish(struct convbn_pending *p, const char *trigger);

/* Work on `stream` is about to be issued by `trigger`: flushes the pending convs it could
 * observe (its stream's, the legacy default stream's, all of them when `stream` is the
 * legacy default stream). */
void convbn_planner_flush(cudaStream_t stream, const char *trigger);

/* A byte range [lo, lo + len) of device memory a call touches. */
struct convbn_range {
    uintptr_t lo;
    size_t len;
};

/* Returns 1 when one of the n ranges overlaps a buffer (x, w, y or bias) of a pending conv
 * that work on `stream` could observe (the same candidates convbn_planner_flush would
 * flush), else 0.  For the precise flush rule (DESIGN.md section 5). */
int convbn_planner_touches(cudaStream_t stream, const struct convbn_range *ranges, int n);

/* Flushes every pending conv (process exit, device-wide synchronisation). */
void convbn_planner_flush_all(const char *trigger);

/* The handle is being destroyed: flushes the pending convs issued through it. */
void convbn_planner_flush_handle(cudnnHandle_t handle, const char *trigger);

/* A stream capture began / ended: no conv is deferred while any capture is active. */
void convbn_planner_capture(int delta);

/* Returns 1 when no candidate is held at all (a racy read: callers use it only to skip
 * work that would find nothing to flush). */
int convbn_planner_idle(void);

/* Returns the number of candidates currently held (for tests). */
int convbn_planner_pending(void);

#endif
