/* Filter and convolution descriptors of the cuDNN emulation, the forward output-dim queries,
 * and the one place that checks how x, w, conv and y fit together (emu_conv_geometry, used
 * by every convolution call).  Owns the invariants of struct cudnnFilterStruct (once set:
 * 3..CUDNN_DIM_MAX positive dims, format NCHW or NHWC) and struct cudnnConvolutionStruct
 * (once set: 1..CUDNN_DIM_MAX-2 spatial axes, pad >= 0, stride and dilation >= 1; group count
 * >= 1 at all times).  Computes nothing and touches no tensor data. */
#include <stdlib.h>

#include "emu_cudnn.h"

static cudnnStatus_t store_filter(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                  cudnnTensorFormat_t format, int nb, const int *dims)
{
    if (!desc || !dims)
        return CUDNN_STATUS_BAD_PARAM;
    if (nb > CUDNN_DIM_MAX || format == CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (nb < 3 || emu_descriptor_type_size(type) == 0 ||
        (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC))
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nb; i++)
        if (dims[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    desc->type = type;
    desc->format = format;
    desc->nb_dims = nb;
    for (int i = 0; i < nb; i++)
        desc->dims[i] = dims[i];
    desc->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* Allocates an unset filter descriptor owned by the caller (cudnnDestroyFilterDescriptor). */
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc)
{
    if (!filterDesc)
        return CUDNN_STATUS_BAD_PARAM;
    *filterDesc = calloc(1, sizeof **filterDesc);
    return *filterDesc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

/* Frees a filter descriptor; NULL is accepted. */
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc)
{
    free(filterDesc);
    return CUDNN_STATUS_SUCCESS;
}

/* Sets a 4-d filter; dims are given as K, C, H, W whatever the format (NCHW stores KCRS,
 * NHWC stores KRSC). */
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w)
{
    int dims[4] = {k, c, h, w};
    return store_filter(filterDesc, dataType, format, 4, dims);
}

/* Reads back a 4-d filter; a filter of another rank gives CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t *dataType, cudnnTensorFormat_t *format,
                                         int *k, int *c, int *h, int *w)
{
    if (!filterDesc || !filterDesc->is_set || filterDesc->nb_dims != 4 || !dataType ||
        !format || !k || !c || !h || !w)
        return CUDNN_STATUS_BAD_PARAM;
    *dataType = filterDesc->type;
    *format = filterDesc->format;
    *k = filterDesc->dims[0];
    *c = filterDesc->dims[1];
    *h = filterDesc->dims[2];
    *w = filterDesc->dims[3];
    return CUDNN_STATUS_SUCCESS;
}

/* Sets an N-d filter (3 <= nbDims <= CUDNN_DIM_MAX), dims in K, C, spatial order. */
cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int nbDims, const int filterDimA[])
{
    return store_filter(filterDesc, dataType, format, nbDims, filterDimA);
}

/* Reads back up to nbDimsRequested dims; *nbDims receives the real rank. */
cudnnStatus_t cudnnGetFilterNdDescriptor(const cudnnFilterDescriptor_t filterDesc,
                                         int nbDimsRequested, cudnnDataType_t *dataType,
                                         cudnnTensorFormat_t *format, int *nbDims,
                                         int filterDimA[])
{
    if (!filterDesc || !filterDesc->is_set || nbDimsRequested < 0 || !dataType || !format ||
        !nbDims || (nbDimsRequested > 0 && !filterDimA))
        return CUDNN_STATUS_BAD_PARAM;
    *dataType = filterDesc->type;
    *format = filterDesc->format;
    *nbDims = filterDesc->nb_dims;
    for (int i = 0; i < nbDimsRequested && i < filterDesc->nb_dims; i++)
        filterDimA[i] = filterDesc->dims[i];
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the bytes of a packed filter (product of dims times the element size) in *size. */
cudnnStatus_t cudnnGetFilterSizeInBytes(const cudnnFilterDescriptor_t filterDesc, size_t *size)
{
    if (!filterDesc || !filterDesc->is_set || !size)
        return CUDNN_STATUS_BAD_PARAM;
    size_t count = 1;
    for (int i = 0; i < filterDesc->nb_dims; i++)
        count *= (size_t)filterDesc->dims[i];
    *size = count * emu_descriptor_type_size(filterDesc->type);
    return CUDNN_STATUS_SUCCESS;
}

/* Allocates an unset convolution descriptor (1 group, default math, default reorder) owned
 * by the caller (cudnnDestroyConvolutionDescriptor). */
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc)
{
    if (!convDesc)
        return CUDNN_STATUS_BAD_PARAM;
    *convDesc = calloc(1, sizeof **convDesc);
    if (!*convDesc)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    (*convDesc)->group_count = 1;
    (*convDesc)->math_type = CUDNN_DEFAULT_MATH;
    (*convDesc)->reorder_type = CUDNN_DEFAULT_REORDER;
    return CUDNN_STATUS_SUCCESS;
}

/* Frees a convolution descriptor; NULL is accepted. */
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc)
{
    free(convDesc);
    return CUDNN_STATUS_SUCCESS;
}

/* Sets pad/stride/dilation, mode and compute type; keeps group count, math and reorder type. */
static cudnnStatus_t store_convolution(cudnnConvolutionDescriptor_t desc, int nb_spatial,
                                       const int *pad, const int *stride, const int *dilation,
                                       cudnnConvolutionMode_t mode, cudnnDataType_t compute_type)
{
    if (!desc || !pad || !stride || !dilation)
        return CUDNN_STATUS_BAD_PARAM;
    if (nb_spatial > CUDNN_DIM_MAX - 2)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (nb_spatial < 1 || (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) ||
        emu_descriptor_type_size(compute_type) == 0)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nb_spatial; i++)
        if (pad[i] < 0 || stride[i] <= 0 || dilation[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    desc->nb_spatial = nb_spatial;
    for (int i = 0; i < nb_spatial; i++) {
        desc->pad[i] = pad[i];
        desc->stride[i] = stride[i];
        desc->dilation[i] = dilation[i];
    }
    desc->mode = mode;
    desc->compute_type = compute_type;
    desc->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* Sets a 2-d convolution (pad >= 0, strides u, v >= 1, dilations >= 1). */
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc,
                                              int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    int pad[2] = {pad_h, pad_w}, stride[2] = {u, v}, dilation[2] = {dilation_h, dilation_w};
    return store_convolution(convDesc, 2, pad, stride, dilation, mode, computeType);
}

/* Reads back a 2-d convolution; an unset or N-d (N != 2) one gives CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnGetConvolution2dDescriptor(const cudnnConvolutionDescriptor_t convDesc,
                                              int *pad_h, int *pad_w, int *u, int *v,
                                              int *dilation_h, int *dilation_w,
                                              cudnnConvolutionMode_t *mode,
                                              cudnnDataType_t *computeType)
{
    if (!convDesc || !convDesc->is_set || convDesc->nb_spatial != 2 || !pad_h || !pad_w ||
        !u || !v || !dilation_h || !dilation_w || !mode || !computeType)
        return CUDNN_STATUS_BAD_PARAM;
    *pad_h = convDesc->pad[0];
    *pad_w = convDesc->pad[1];
    *u = convDesc->stride[0];
    *v = convDesc->stride[1];
    *dilation_h = convDesc->dilation[0];
    *dilation_w = convDesc->dilation[1];
    *mode = convDesc->mode;
    *computeType = convDesc->compute_type;
    return CUDNN_STATUS_SUCCESS;
}

/* Sets an N-d convolution with arrayLength spatial axes (1..CUDNN_DIM_MAX-2). */
cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t convDesc,
                                              int arrayLength, const int padA[],
                                              const int filterStrideA[], const int dilationA[],
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    return store_convolution(convDesc, arrayLength, padA, filterStrideA, dilationA, mode,
                             computeType);
}

/* Reads back up to arrayLengthRequested spatial axes; *arrayLength receives the real count. */
cudnnStatus_t cudnnGetConvolutionNdDescriptor(const cudnnConvolutionDescriptor_t convDesc,
                                              int arrayLengthRequested, int *arrayLength,
                                              int padA[], int strideA[], int dilationA[],
                                              cudnnConvolutionMode_t *mode,
                                              cudnnDataType_t *computeType)
{
    if (arrayLengthRequested > CUDNN_DIM_MAX - 2)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (!convDesc || !convDesc->is_set || arrayLengthRequested < 0 || !arrayLength || !mode ||
        !computeType || (arrayLengthRequested > 0 && (!padA || !strideA || !dilationA)))
        return CUDNN_STATUS_BAD_PARAM;
    *arrayLength = convDesc->nb_spatial;
    for (int i = 0; i < arrayLengthRequested && i < convDesc->nb_spatial; i++) {
        padA[i] = convDesc->pad[i];
        strideA[i] = convDesc->stride[i];
        dilationA[i] = convDesc->dilation[i];
    }
    *mode = convDesc->mode;
    *computeType = convDesc->compute_type;
    return CUDNN_STATUS_SUCCESS;
}

/* Sets the group count (>= 1); it survives later Set*Descriptor calls. */
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount)
{
    if (!convDesc || groupCount < 1)
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->group_count = groupCount;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the group count in *groupCount. */
cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int *groupCount)
{
    if (!convDesc || !groupCount)
        return CUDNN_STATUS_BAD_PARAM;
    *groupCount = convDesc->group_count;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the math type (reported back in algorithm perf results; the arithmetic is fp32). */
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType)
{
    if (!convDesc || mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH)
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->math_type = mathType;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the math type in *mathType. */
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t *mathType)
{
    if (!convDesc || !mathType)
        return CUDNN_STATUS_BAD_PARAM;
    *mathType = convDesc->math_type;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the reorder type (only INT8x32 convolutions, which are not emulated, use it). */
cudnnStatus_t cudnnSetConvolutionReorderType(cudnnConvolutionDescriptor_t convDesc,
                                             cudnnReorderType_t reorderType)
{
    if (!convDesc || (reorderType != CUDNN_DEFAULT_REORDER && reorderType != CUDNN_NO_REORDER))
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->reorder_type = reorderType;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the reorder type in *reorderType. */
cudnnStatus_t cudnnGetConvolutionReorderType(cudnnConvolutionDescriptor_t convDesc,
                                             cudnnReorderType_t *reorderType)
{
    if (!convDesc || !reorderType)
        return CUDNN_STATUS_BAD_PARAM;
    *reorderType = convDesc->reorder_type;
    return CUDNN_STATUS_SUCCESS;
}

/* Output size of one spatial axis, or 0 when the dilated filter is wider than the padded input. */
static int output_size(int in, int filter, int pad, int stride, int dilation)
{
    long extent = (long)(filter - 1) * dilation + 1;
    long padded = (long)in + 2L * pad;
    return extent > padded ? 0 : (int)(1 + (padded - extent) / stride);
}

cudnnStatus_t emu_conv_output_dims(const struct cudnnConvolutionStruct *conv,
                                   const struct cudnnTensorStruct *x,
                                   const struct cudnnFilterStruct *w, int out[CUDNN_DIM_MAX])
{
    if (!conv || !x || !w || !conv->is_set || !x->is_set || !w->is_set)
        return CUDNN_STATUS_BAD_PARAM;
    int nb = x->nb_dims;
    if (w->nb_dims != nb || conv->nb_spatial + 2 != nb ||
        x->dims[1] != w->dims[1] * conv->group_count || w->dims[0] % conv->group_count != 0)
        return CUDNN_STATUS_BAD_PARAM;
    out[0] = x->dims[0];
    out[1] = w->dims[0];
    for (int i = 0; i < conv->nb_spatial; i++) {
        out[i + 2] = output_size(x->dims[i + 2], w->dims[i + 2], conv->pad[i], conv->stride[i],
                                 conv->dilation[i]);
        if (out[i + 2] == 0)
            return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the N, C, H, W of a 2-d convolution's output. */
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc,
                                                    int *n, int *c, int *h, int *w)
{
    int out[CUDNN_DIM_MAX];
    if (!n || !c || !h || !w || (inputTensorDesc && inputTensorDesc->nb_dims != 4))
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_output_dims(convDesc, inputTensorDesc, filterDesc, out);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    *n = out[0];
    *c = out[1];
    *h = out[2];
    *w = out[3];
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the nbDims output dims (nbDims must be the input's rank) in tensorOuputDimA. */
cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc,
                                                    int nbDims, int tensorOuputDimA[])
{
    int out[CUDNN_DIM_MAX];
    if (!tensorOuputDimA || (inputTensorDesc && inputTensorDesc->nb_dims != nbDims))
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_output_dims(convDesc, inputTensorDesc, filterDesc, out);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    for (int i = 0; i < nbDims; i++)
        tensorOuputDimA[i] = out[i];
    return CUDNN_STATUS_SUCCESS;
}

/* Data types the emulation convolves, with the compute types cuDNN pairs them with:
 * FLOAT_CONFIG, TRUE_HALF_CONFIG, PSEUDO_HALF_CONFIG and PSEUDO_BFLOAT16_CONFIG. */
static int compute_type_supported(cudnnDataType_t data, cudnnDataType_t compute)
{
    switch (data) {
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_BFLOAT16: return compute == CUDNN_DATA_FLOAT;
    case CUDNN_DATA_HALF: return compute == CUDNN_DATA_HALF || compute == CUDNN_DATA_FLOAT;
    default: return 0;
    }
}

static cudnnStatus_t check_types(const struct cudnnConvolutionStruct *conv,
                                 const struct cudnnTensorStruct *x,
                                 const struct cudnnFilterStruct *w,
                                 const struct cudnnTensorStruct *y)
{
    if (!emu_type_supported(x->type) || !emu_type_supported(w->type) ||
        !emu_type_supported(y->type))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (x->type != w->type || x->type != y->type)
        return CUDNN_STATUS_BAD_PARAM;
    return compute_type_supported(x->type, conv->compute_type) ? CUDNN_STATUS_SUCCESS
                                                               : CUDNN_STATUS_NOT_SUPPORTED;
}

/* Geometry axis (0 depth, 1 height, 2 width) of descriptor spatial axis i out of nb_spatial. */
static int geometry_axis(int nb_spatial, int i)
{
    return EMU_CONV_AXES - nb_spatial + i;
}

static size_t span_of(const struct cudnnTensorStruct *t)
{
    size_t span = 1;
    for (int i = 0; i < t->nb_dims; i++)
        span += (size_t)(t->dims[i] - 1) * (size_t)t->strides[i];
    return span;
}

void emu_conv_tensor_strides(const struct cudnnTensorStruct *t, struct emu_conv_strides *s)
{
    int nb_spatial = t->nb_dims - 2;
    s->n = t->strides[0];
    s->c = t->strides[1];
    for (int a = 0; a < EMU_CONV_AXES; a++)
        s->sp[a] = 0;
    for (int i = 0; i < nb_spatial; i++)
        s->sp[geometry_axis(nb_spatial, i)] = t->strides[i + 2];
}

/* Strides of a packed filter: KCRS for NCHW, KRSC (channel innermost) for NHWC. */
static void filter_strides(const struct cudnnFilterStruct *w, struct emu_conv_strides *s)
{
    int nb_spatial = w->nb_dims - 2;
    ptrdiff_t step = w->format == CUDNN_TENSOR_NHWC ? w->dims[1] : 1;
    for (int a = 0; a < EMU_CONV_AXES; a++)
        s->sp[a] = 0;
    for (int i = nb_spatial - 1; i >= 0; i--) {
        s->sp[geometry_axis(nb_spatial, i)] = step;
        step *= w->dims[i + 2];
    }
    if (w->format == CUDNN_TENSOR_NHWC) {
        s->c = 1;
    } else {
        s->c = step;
        step *= w->dims[1];
    }
    s->n = step;
}

static void fill_geometry(const struct cudnnConvolutionStruct *conv,
                          const struct cudnnTensorStruct *x, const struct cudnnFilterStruct *w,
                          const struct cudnnTensorStruct *y, struct emu_conv_geometry *g)
{
    g->type = x->type;
    g->batch = x->dims[0];
    g->groups = conv->group_count;
    g->in_per_group = w->dims[1];
    g->out_per_group = w->dims[0] / conv->group_count;
    g->flip = conv->mode == CUDNN_CONVOLUTION;
    for (int a = 0; a < EMU_CONV_AXES; a++) {
        g->in[a] = g->out[a] = g->filter[a] = 1;
        g->stride[a] = g->dilation[a] = 1;
        g->pad[a] = 0;
    }
    for (int i = 0; i < conv->nb_spatial; i++) {
        int a = geometry_axis(conv->nb_spatial, i);
        g->in[a] = x->dims[i + 2];
        g->out[a] = y->dims[i + 2];
        g->filter[a] = w->dims[i + 2];
        g->pad[a] = conv->pad[i];
        g->stride[a] = conv->stride[i];
        g->dilation[a] = conv->dilation[i];
    }
    emu_conv_tensor_strides(x, &g->x);
    emu_conv_tensor_strides(y, &g->y);
    filter_strides(w, &g->w);
    g->x_span = span_of(x);
    g->y_span = span_of(y);
    g->w_count = (size_t)g->w.n * (size_t)w->dims[0];
}

cudnnStatus_t emu_conv_geometry(const struct cudnnConvolutionStruct *conv,
                                const struct cudnnTensorStruct *x,
                                const struct cudnnFilterStruct *w,
                                const struct cudnnTensorStruct *y, struct emu_conv_geometry *g)
{
    int out[CUDNN_DIM_MAX];
    if (!conv || !x || !w || !y || !conv->is_set || !x->is_set || !w->is_set || !y->is_set)
        return CUDNN_STATUS_BAD_PARAM;
    if (x->nb_dims != y->nb_dims || x->nb_dims != w->nb_dims || conv->nb_spatial + 2 != x->nb_dims)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = check_types(conv, x, w, y);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (x->nb_dims != 4 && x->nb_dims != 5)
        return CUDNN_STATUS_NOT_SUPPORTED;
    status = emu_conv_output_dims(conv, x, w, out);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (y->dims[0] != out[0] || y->dims[1] != out[1])
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 2; i < x->nb_dims; i++)
        if (y->dims[i] != out[i])
            return CUDNN_STATUS_NOT_SUPPORTED;
    fill_geometry(conv, x, w, y, g);
    return CUDNN_STATUS_SUCCESS;
}
