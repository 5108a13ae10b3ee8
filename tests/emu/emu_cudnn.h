/* Internal definitions shared by the CPU emulation of cuDNN (tests/emu/cudnn_*.c).
 *
 * The emulation gives the opaque cuDNN handle and descriptor types a concrete layout
 * here, and offers the element access helpers every emulated compute function uses:
 * "device" memory is host memory, values are stored in their cuDNN data type and
 * computed in float (double for CUDNN_DATA_DOUBLE is not emulated).  Nothing here is
 * part of the shim; the shim only ever sees these objects through cuDNN's API. */
#ifndef CONVBN_EMU_CUDNN_H
#define CONVBN_EMU_CUDNN_H

#include <stddef.h>
#include <stdint.h>
#include <cudnn.h>

#define EMU_MAGIC_HANDLE 0x48414e44u /* "HAND" */

struct cudnnContext {
    uint32_t magic;
    cudaStream_t stream;
};

/* Tensor descriptor: dims/strides in NCHW... order (index 0 = N, 1 = C), as cuDNN reports them. */
struct cudnnTensorStruct {
    int is_set;
    cudnnDataType_t type;
    int nb_dims;
    int dims[CUDNN_DIM_MAX];
    int strides[CUDNN_DIM_MAX];
};

/* Filter descriptor: dims in K, C/groups, spatial... order; format says how they are laid out. */
struct cudnnFilterStruct {
    int is_set;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    int nb_dims;
    int dims[CUDNN_DIM_MAX];
};

struct cudnnConvolutionStruct {
    int is_set;
    int nb_spatial; /* array length: 2 for 2D, 3 for 3D */
    int pad[CUDNN_DIM_MAX];
    int stride[CUDNN_DIM_MAX];
    int dilation[CUDNN_DIM_MAX];
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute_type;
    int group_count;
    cudnnMathType_t math_type;
    cudnnReorderType_t reorder_type;
};

struct cudnnActivationStruct {
    int is_set;
    cudnnActivationMode_t mode;
    cudnnNanPropagation_t nan_opt;
    double coef;
    double swish_beta; /* CUDNN_ACTIVATION_SWISH: y = x * sigmoid(swish_beta * x) */
};

struct cudnnOpTensorStruct {
    int is_set;
    cudnnOpTensorOp_t op;
    cudnnDataType_t compute_type;
    cudnnNanPropagation_t nan_opt;
};

/* Element types the compute functions accept: FLOAT, HALF, BFLOAT16.  Returns 1 if supported. */
int emu_type_supported(cudnnDataType_t type);
/* Size in bytes of one element of a supported type; 0 otherwise. */
size_t emu_type_size(cudnnDataType_t type);
/* Reads element `index` (in elements, may be any offset computed from strides) as float. */
float emu_load(const void *base, cudnnDataType_t type, ptrdiff_t index);
/* Writes v, rounded to nearest even, to element `index`. */
void emu_store(void *base, cudnnDataType_t type, ptrdiff_t index, float v);
/* IEEE binary16 / bfloat16 conversions, round to nearest even, NaN and Inf preserved. */
uint16_t emu_float_to_half(float f);
float emu_half_to_float(uint16_t h);
uint16_t emu_float_to_bf16(float f);
float emu_bf16_to_float(uint16_t b);

/* Returns 1 if h is a live handle created by cudnnCreate. */
int emu_handle_valid(cudnnHandle_t h);

/* Whole-tensor access for the element-wise and normalization functions (cudnn_tensor_ops.c).
 * "Logical order" is row-major over dims[0..nb_dims-1] (N, C, then spatial), whatever the
 * strides; value arrays in logical order are owned by the caller. */
/* Returns 1 if desc is non-NULL and has been set. */
int emu_tensor_ready(const struct cudnnTensorStruct *desc);
/* Returns 1 if a and b have the same rank and the same dims (strides and types may differ). */
int emu_same_dims(const struct cudnnTensorStruct *a, const struct cudnnTensorStruct *b);
/* Returns the number of elements of desc's shape. */
size_t emu_element_count(const struct cudnnTensorStruct *desc);
/* Reads (src, data) into out, in the logical order of shape (same rank as src; each dim of src
 * equals shape's or is 1, and is then broadcast).  out holds emu_element_count(shape) floats. */
void emu_gather(const struct cudnnTensorStruct *src, const void *data,
                const struct cudnnTensorStruct *shape, float *out);
/* Writes dst = alpha * values + beta * dst over every element of (desc, data), values in logical
 * order.  The prior dst is not read when beta == 0, so garbage there (NaN) cannot leak. */
void emu_scatter_blend(const struct cudnnTensorStruct *desc, void *data, const float *values,
                       float alpha, float beta);

/* Bytes per element of every type a descriptor may carry (the compute functions support fewer:
 * see emu_type_supported); 0 for values that are not cudnnDataType_t enumerants. */
size_t emu_descriptor_type_size(cudnnDataType_t type);

/* Convolutions (cudnn_conv_desc.c, cudnn_conv.c, cudnn_conv_algo.c).  A geometry describes
 * one convolution with three spatial axes, depth first: a 2-D convolution has depth 1 (size 1,
 * pad 0, stride 1, dilation 1, element stride 0).  "x" is the input-side tensor (x or dx),
 * "y" the output-side tensor (y or dy), "w" the filter (w or dw), whatever the direction. */
#define EMU_CONV_AXES 3

struct emu_conv_strides {
    ptrdiff_t n;                   /* batch (for a filter: output channel k) */
    ptrdiff_t c;                   /* channel (for a filter: input channel within the group) */
    ptrdiff_t sp[EMU_CONV_AXES];   /* depth, height, width */
};

struct emu_conv_geometry {
    cudnnDataType_t type;          /* element type of x, w and y */
    int batch, groups, in_per_group, out_per_group;
    int in[EMU_CONV_AXES], out[EMU_CONV_AXES], filter[EMU_CONV_AXES];
    int pad[EMU_CONV_AXES], stride[EMU_CONV_AXES], dilation[EMU_CONV_AXES];
    int flip;                      /* CUDNN_CONVOLUTION: the filter is applied mirrored */
    struct emu_conv_strides x, y, w;
    size_t x_span, y_span, w_count; /* elements spanned by x and y (gaps included), in w */
};

enum emu_conv_direction { EMU_CONV_FORWARD, EMU_CONV_BACKWARD_DATA, EMU_CONV_BACKWARD_FILTER };

/* What an algorithm keeps in its workspace.  The compute functions really write it there and
 * read the operand back from the copy, so a workspace that is too small or shared with a
 * tensor shows up as wrong results or a sanitizer report. */
enum emu_workspace_content {
    EMU_WORKSPACE_NONE,
    EMU_WORKSPACE_FILTER,   /* a copy of w (forward, backward data) */
    EMU_WORKSPACE_INPUT,    /* a copy of x's span (forward, backward filter) */
    EMU_WORKSPACE_GRADIENT, /* a copy of dy's span (backward data, backward filter) */
    EMU_WORKSPACE_SCRATCH,  /* EMU_WORKSPACE_SCRATCH_BYTES overwritten with a fill pattern */
};
#define EMU_WORKSPACE_SCRATCH_BYTES ((size_t)1 << 20)

/* Stores the output dims (N, K, spatial...; x's rank) of convolving x with w under conv in
 * out[].  Returns CUDNN_STATUS_BAD_PARAM for NULL or unset descriptors, ranks that disagree,
 * x channels != w's C * groups, K not divisible by groups, or a dilated filter wider than the
 * padded input; checks no data types. */
cudnnStatus_t emu_conv_output_dims(const struct cudnnConvolutionStruct *conv,
                                   const struct cudnnTensorStruct *x,
                                   const struct cudnnFilterStruct *w, int out[CUDNN_DIM_MAX]);
/* Validates a convolution's descriptors as every convolution call does and fills *g.
 * Returns CUDNN_STATUS_SUCCESS, CUDNN_STATUS_BAD_PARAM (NULL/unset descriptors, ranks, channel
 * and group counts, mismatched types, y's N or C) or CUDNN_STATUS_NOT_SUPPORTED (a type or
 * compute type the emulation does not compute, a rank other than 4 or 5, y's spatial dims). */
cudnnStatus_t emu_conv_geometry(const struct cudnnConvolutionStruct *conv,
                                const struct cudnnTensorStruct *x,
                                const struct cudnnFilterStruct *w,
                                const struct cudnnTensorStruct *y, struct emu_conv_geometry *g);
/* Fills *s with t's strides laid out as a geometry's (depth stride 0 for a 4-d tensor). */
void emu_conv_tensor_strides(const struct cudnnTensorStruct *t, struct emu_conv_strides *s);
/* Looks up algorithm algo of direction dir: stores what it keeps in its workspace and how many
 * bytes that takes for g.  Returns CUDNN_STATUS_BAD_PARAM for an id that is not an algorithm
 * of dir, CUDNN_STATUS_NOT_SUPPORTED for one cuDNN does not implement. */
cudnnStatus_t emu_conv_algo_workspace(enum emu_conv_direction dir, int algo,
                                      const struct emu_conv_geometry *g,
                                      enum emu_workspace_content *content, size_t *bytes);

#endif
