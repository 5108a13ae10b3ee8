/* Internal definitions shared by the CPU emulation of cuDNN (tests/emu/cudnn_*.c).
 *
 * The emulation gives the opaque cuDNN handle and descriptor types a concrete layout
 * here, and offers the element access helpers every emulated compute function uses:
 * "device" memory is host memory, values are stored in their cuDNN data type and
 * computed in float (double for CUDNN_DATA_DOUBLE is not emulated).  Nothing here is
 * part of the shim; the shim only ever sees these objects through cuDNN's API. */
#ifndef CONVBN_EMU_CUDNN_H
#define CONVBN_EMU_CUDNN_H

#include <stdbool.h>
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
/* Stores the unblended result of direction dir for every element of its output (y, dx or dw)
 * in values[], in the output's logical order (row-major over N, C, spatial; for dw over K,
 * C/groups, taps).  Reads x (forward, backward filter), w (forward, backward data) and dy
 * (backward data and filter) through g's strides; values is owned by the caller and holds
 * one float per output element. */
void emu_conv_values(enum emu_conv_direction dir, const struct emu_conv_geometry *g,
                     const void *x, const void *w, const void *dy, float *values);

/* Batch normalization (cudnn_batchnorm.c).  Applies y = scale * (x - mean) * inv_std + bias in
 * place to values[] (x's elements in logical order), with one parameter per channel of x
 * (CUDNN_BATCHNORM_SPATIAL); every array is owned by the caller. */
void emu_bn_normalize_spatial(const struct cudnnTensorStruct *x, float *values,
                              const float *scale, const float *bias, const double *mean,
                              const double *inv_std);


/* The backend (graph) API (cudnn_backend_*.c).  A backend descriptor owns one payload, the
 * struct emu_bk_* of its type.  Setting a descriptor-valued attribute copies the value's
 * payload, so a descriptor never points at another one: the program may destroy or reuse
 * what it passed in.  Every payload starts with its attribute bookkeeping (struct
 * emu_bk_counts): which attributes were set and how many elements each holds. */
#define EMU_BK_MAX_ATTRS 16
#define EMU_BK_MAX_OPS 8         /* operations in one graph (emulation limit) */
#define EMU_BK_MAX_VARIANTS 64   /* tensors in one variant pack (emulation limit) */
#define EMU_BK_OP_TENSORS 7
#define EMU_BK_EPILOGUE_WORKSPACE 1024 /* bytes a convolution with epilogues asks for */
#define EMU_BK_ANY_OPERATION (-1) /* target of CUDNN_ATTR_OPERATIONGRAPH_OPS */

struct emu_bk_counts {
    uint16_t was_set;              /* bit i: attribute i of the type's table was set */
    uint8_t n[EMU_BK_MAX_ATTRS];   /* elements attribute i holds */
};

struct emu_bk_tensor {
    struct emu_bk_counts set;
    int64_t alignment;
    int32_t data_type;             /* cudnnDataType_t */
    int64_t dims[CUDNN_DIM_MAX], strides[CUDNN_DIM_MAX];
    int64_t vector_count, vectorized_dim, uid;
    bool is_virtual, is_by_value;
    int32_t reordering;            /* cudnnBackendTensorReordering_t */
    int nb_dims;                   /* set at finalize */
};

struct emu_bk_convolution {
    struct emu_bk_counts set;
    int32_t compute_type;          /* cudnnDataType_t */
    int32_t mode;                  /* cudnnConvolutionMode_t */
    int64_t spatial_dims;
    int64_t dilations[CUDNN_DIM_MAX], filter_strides[CUDNN_DIM_MAX];
    int64_t pre_paddings[CUDNN_DIM_MAX], post_paddings[CUDNN_DIM_MAX];
};

struct emu_bk_pointwise {
    struct emu_bk_counts set;
    int32_t mode;                  /* cudnnPointwiseMode_t */
    int32_t math_prec;             /* cudnnDataType_t */
    int32_t nan_propagation;       /* cudnnNanPropagation_t */
    double relu_lower_clip, relu_upper_clip, relu_lower_clip_slope;
    double elu_alpha, softplus_beta, swish_beta;
    int64_t axis;
};

/* Tensor slots of an operation.  Convolutions: x side (x or dx), w (w or dw), y side (y or
 * dy).  Pointwise: x, b, y, dx, dy, t.  Norm forward: x, mean, inverse variance, scale,
 * bias, epsilon, y. */
enum {
    EMU_BK_CONV_X = 0, EMU_BK_CONV_W = 1, EMU_BK_CONV_Y = 2,
    EMU_BK_PW_X = 0, EMU_BK_PW_B = 1, EMU_BK_PW_Y = 2, EMU_BK_PW_DX = 3, EMU_BK_PW_DY = 4,
    EMU_BK_PW_T = 5,
    EMU_BK_NORM_X = 0, EMU_BK_NORM_MEAN = 1, EMU_BK_NORM_INV_VARIANCE = 2,
    EMU_BK_NORM_SCALE = 3, EMU_BK_NORM_BIAS = 4, EMU_BK_NORM_EPSILON = 5, EMU_BK_NORM_Y = 6,
};

/* Every operation type shares this payload; kind says which one it is. */
struct emu_bk_op {
    struct emu_bk_counts set;
    int32_t kind;                  /* cudnnBackendDescriptorType_t */
    double alpha, beta;            /* convolution alpha, beta; pointwise alpha1, alpha2 */
    struct emu_bk_convolution conv;
    struct emu_bk_pointwise pointwise;
    int32_t norm_mode;             /* cudnnBackendNormMode_t */
    int32_t norm_phase;            /* cudnnBackendNormFwdPhase_t */
    struct emu_bk_tensor tensor[EMU_BK_OP_TENSORS];
};

/* What a finalized graph computes: main_op, then the pointwise epilogue ops in order; an
 * epilogue op receives the running result through its b port when via_b is set. */
struct emu_bk_pattern {
    int32_t main_kind;             /* cudnnBackendDescriptorType_t of ops[main_op] */
    int main_op, nb_epilogue;
    int8_t epilogue[EMU_BK_MAX_OPS];
    bool via_b[EMU_BK_MAX_OPS];
};

struct emu_bk_graph {
    struct emu_bk_counts set;
    cudnnHandle_t handle;
    struct emu_bk_op ops[EMU_BK_MAX_OPS];
    bool dynamic_shape;
    int64_t engine_count;          /* set at finalize */
    int nb_ops;                    /* set at finalize */
    struct emu_bk_pattern pattern; /* set at finalize */
};

struct emu_bk_engine {
    struct emu_bk_counts set;
    struct emu_bk_graph graph;
    int64_t global_index;
    int32_t sm_count;
};

struct emu_bk_knob_choice {
    struct emu_bk_counts set;
    int32_t type;                  /* cudnnBackendKnobType_t */
    int64_t value;
};

struct emu_bk_engine_cfg {
    struct emu_bk_counts set;
    struct emu_bk_engine engine;
    struct emu_bk_knob_choice knobs[CUDNN_KNOB_TYPE_COUNTS];
    int64_t workspace;             /* set at finalize */
};

struct emu_bk_heur {
    struct emu_bk_counts set;
    int32_t mode;                  /* cudnnBackendHeurMode_t */
    struct emu_bk_graph graph;
    int32_t sm_count;
    struct emu_bk_engine_cfg results[1]; /* set at finalize */
};

struct emu_bk_plan {
    struct emu_bk_counts set;
    cudnnHandle_t handle;
    struct emu_bk_engine_cfg cfg;
    int64_t workspace;             /* set at finalize */
};

struct emu_bk_variant_pack {
    struct emu_bk_counts set;
    int64_t uids[EMU_BK_MAX_VARIANTS];
    void *pointers[EMU_BK_MAX_VARIANTS];
    void *workspace;
    int nb;                        /* set at finalize */
};

/* How an attribute's elements are passed and stored. */
enum emu_bk_kind {
    EMU_BK_WORD,    /* an enumerant or CUDNN_TYPE_INT32: int32_t */
    EMU_BK_INT64,
    EMU_BK_BOOL,    /* CUDNN_TYPE_BOOLEAN: bool */
    EMU_BK_REAL,    /* CUDNN_TYPE_FLOAT or CUDNN_TYPE_DOUBLE, stored as double */
    EMU_BK_HANDLE,
    EMU_BK_POINTER,
    EMU_BK_DESC,    /* backend descriptors, stored as copies of their payloads */
};

#define EMU_BK_SET 1u      /* settable; otherwise derived at finalize, max_count elements */
#define EMU_BK_REQUIRED 2u /* finalize is CUDNN_STATUS_BAD_PARAM while unset */
#define EMU_BK_DEFAULT 4u  /* reads as one element (the type's initial value) while unset */
#define EMU_BK_CAPPED 8u   /* max_count is an emulation limit: more is NOT_SUPPORTED */

struct emu_bk_attr {
    cudnnBackendAttributeName_t name;
    cudnnBackendAttributeType_t type;
    enum emu_bk_kind kind;
    unsigned flags;
    int min_count, max_count;
    size_t offset;                 /* of the first element in the payload */
    int target;                    /* EMU_BK_DESC: descriptor type of the elements */
};

struct emu_bk_type {
    cudnnBackendDescriptorType_t type;
    size_t payload_size;
    const struct emu_bk_attr *attrs;
    int nb_attrs;
    void (*init)(void *payload, cudnnBackendDescriptorType_t type); /* NULL: all zero */
    cudnnStatus_t (*finalize)(void *payload);   /* after the required attributes are checked */
};

/* Returns the static description of an emulated descriptor type, NULL for the others. */
const struct emu_bk_type *emu_bk_type_info(int type);
/* Returns 1 for the operation descriptor types the emulation knows. */
int emu_bk_is_operation(int type);
/* Returns how many elements attribute name of type t holds in payload (0 when unset). */
int emu_bk_count(const struct emu_bk_type *t, const void *payload,
                 cudnnBackendAttributeName_t name);
/* Records that attribute name of type t now holds count elements of payload. */
void emu_bk_mark_set(const struct emu_bk_type *t, void *payload,
                     cudnnBackendAttributeName_t name, int count);
/* Returns the payload of d if d is a finalized descriptor of type; otherwise NULL, with
 * *status set to BAD_PARAM_NULL_POINTER, BAD_PARAM, BAD_PARAM_DESCRIPTOR_TYPE or
 * BAD_PARAM_NOT_FINALIZED.  The descriptor keeps owning the payload. */
const void *emu_bk_finalized(cudnnBackendDescriptor_t d, int type, cudnnStatus_t *status);

/* Finalize steps of the graph-level types (cudnn_backend_graph.c); each validates payload,
 * fills its derived fields, and returns CUDNN_STATUS_SUCCESS, a BAD_PARAM or a
 * NOT_SUPPORTED code. */
cudnnStatus_t emu_bk_finalize_graph(void *payload);
cudnnStatus_t emu_bk_finalize_heur(void *payload);
cudnnStatus_t emu_bk_finalize_engine(void *payload);
cudnnStatus_t emu_bk_finalize_engine_cfg(void *payload);
cudnnStatus_t emu_bk_finalize_plan(void *payload);

/* Conversions to the legacy structs (cudnn_backend_exec.c).  Fills *out with t as a set
 * tensor descriptor; returns CUDNN_STATUS_NOT_SUPPORTED_SHAPE when a dim or stride does not
 * fit an int or the rank is below 3. */
cudnnStatus_t emu_bk_legacy_tensor(const struct emu_bk_tensor *t, struct cudnnTensorStruct *out);
/* Fills *g for the convolution operation op (any direction), with the strides of op's own
 * tensors.  Returns CUDNN_STATUS_SUCCESS, or the NOT_SUPPORTED (types, ranks, asymmetric
 * padding) or BAD_PARAM code that stops the emulation from computing it. */
cudnnStatus_t emu_bk_conv_geometry(const struct emu_bk_op *op, struct emu_conv_geometry *g);

#endif
