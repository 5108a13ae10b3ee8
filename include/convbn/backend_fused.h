/* Fused execution of a pair whose convolution came through the backend API: the shim's own
 * backend graph (src/backend_graph.c), built once per geometry, handle and pointer
 * alignment, kept in a bounded LRU cache with cuDNN's refusals cached too. */
#ifndef CONVBN_BACKEND_FUSED_H
#define CONVBN_BACKEND_FUSED_H

#include <cudnn.h>

#include "convbn/records.h"

/* Runs y = conv(x, w) + b for conv's geometry (y: the BN output, of conv->y's geometry)
 * through the cached fused graph on handle, which is bound to conv->stream, with workspace
 * from the stream's shim scratch.  Returns 1 when it ran; 0 when the caller must use the
 * legacy fused path: the geometry has no usable fused graph (refused now or before, or
 * CONVBN_BACKEND_GRAPH=0), its workspace is over the memory cap, or the execution failed
 * (the entry is then marked refused, so the next pair does not retry it). */
int convbn_backend_fused_run(const struct convbn_conv_call *conv, cudnnHandle_t handle,
                             const void *w, const void *b, void *y);

/* The handle is being destroyed: destroys the graphs built on it (and forgets its
 * refusals); CONVBN_LOG logs how many.  Returns the number of graphs destroyed. */
int convbn_backend_fused_forget_handle(cudnnHandle_t handle);

/* Returns the number of pairs run through a fused graph so far. */
unsigned long long convbn_backend_fused_count(void);

#endif
