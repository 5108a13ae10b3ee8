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

#endif
