/* Shim-owned cuDNN descriptors for a convolution geometry, built once and reused, so that a
 * deferred or fused convolution never depends on the program's descriptors (invariant 2). */
#ifndef CONVBN_DESC_CACHE_H
#define CONVBN_DESC_CACHE_H

#include <cudnn.h>

#include "convbn/records.h"

struct convbn_conv_descs {
    cudnnTensorDescriptor_t x, y, bias;   /* bias: 1 x K x 1 x 1 in y's type (fused epilogue) */
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t identity;
};

enum convbn_fused_state { CONVBN_FUSED_UNTRIED, CONVBN_FUSED_OK, CONVBN_FUSED_FAILED };

/* The fused-path choice for a geometry: cached, failures too. */
struct convbn_fused_choice {
    enum convbn_fused_state state;
    int algo;
    size_t workspace;
};

/* What the cache knows about a geometry besides its descriptors. */
struct convbn_geometry_facts {
    struct convbn_fused_choice fused;
    long long workspace; /* bytes conv->algo needs; -1 when not yet asked */
};

/* Returns the descriptors for conv's geometry (x, w, conv, y), creating them on first use,
 * and copies what is known about it to *facts; NULL if cuDNN refuses them.  The entry stays
 * valid until convbn_descs_release; the cache holds at most a fixed number of entries and
 * never evicts one still held. */
struct convbn_conv_descs *convbn_descs_acquire(const struct convbn_conv_call *conv,
                                               struct convbn_geometry_facts *facts);

/* Drops one hold taken by convbn_descs_acquire. */
void convbn_descs_release(struct convbn_conv_descs *descs);

/* Records the fused-path choice of the geometry behind descs (thread-safe). */
void convbn_descs_set_fused(struct convbn_conv_descs *descs, enum convbn_fused_state state,
                            int algo, size_t workspace);

/* Stores in *bytes the workspace cuDNN needs to run the geometry's conv with algo, asking
 * cuDNN and caching the answer.  Returns 0, or -1 when cuDNN refuses the combination. */
int convbn_descs_workspace(struct convbn_conv_descs *descs, cudnnHandle_t handle, int algo,
                           size_t *bytes);

/* Returns a shim-owned tensor descriptor for geometry t (cached like the above; valid until
 * released with convbn_tensor_desc_release), or NULL. */
cudnnTensorDescriptor_t convbn_tensor_desc_acquire(const struct convbn_tensor_geom *t);
void convbn_tensor_desc_release(cudnnTensorDescriptor_t desc);

#endif
