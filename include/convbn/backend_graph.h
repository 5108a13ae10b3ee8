/* A shim-built cuDNN backend graph for a fused pair whose conv came through the backend
 * API: the folded convolution Y = conv(X, W') + b', one CONVOLUTION_FORWARD into a virtual
 * float tensor followed by a POINTWISE ADD of the per-channel bias, finalized into an
 * execution plan with the first engine configuration whose plan finalizes, from cuDNN's
 * instant heuristics, then from its fallback list. */
#ifndef CONVBN_BACKEND_GRAPH_H
#define CONVBN_BACKEND_GRAPH_H

#include <stdint.h>
#include <cudnn.h>

#include "convbn/records.h"

#define CONVBN_FUSED_GRAPH_DESCS 16 /* descriptors a built graph keeps alive */
#define CONVBN_FUSED_GRAPH_DATA 4   /* data pointers of its variant pack: x, w, b, y */

/* A built graph: its plan and every descriptor it was made from (kept until destroyed, so
 * nothing the plan may refer to goes away). */
struct convbn_fused_graph {
    cudnnBackendDescriptor_t plan;
    int64_t workspace; /* bytes the plan needs */
    int nb_descs;
    cudnnBackendDescriptor_t descs[CONVBN_FUSED_GRAPH_DESCS];
};

/* Builds the fused graph for conv's geometry (x, w, y, convolution; the bias is 1 x K x 1 ...
 * in y's type) on handle, declaring every data pointer aligned to `alignment` bytes.
 * Returns CUDNN_STATUS_SUCCESS, or the status of the call that failed (*g then holds
 * nothing): NOT_SUPPORTED when no engine configuration finalizes. */
cudnnStatus_t convbn_fused_graph_build(struct convbn_fused_graph *g, cudnnHandle_t handle,
                                       const struct convbn_conv_call *conv, int64_t alignment);

/* Builds a finalized variant pack for a built graph: pointers x, w, b, y (in that order;
 * y = conv(x, w) + b) and `workspace` (NULL when the graph needs none).  Returns it (the
 * caller destroys it with the real cudnnBackendDestroyDescriptor and executes the graph's
 * plan with it), or NULL when cuDNN refuses it. */
cudnnBackendDescriptor_t convbn_fused_graph_pack(void *const pointers[CONVBN_FUSED_GRAPH_DATA],
                                                 void *workspace);

/* Destroys every descriptor of g and clears it. */
void convbn_fused_graph_destroy(struct convbn_fused_graph *g);

#endif
