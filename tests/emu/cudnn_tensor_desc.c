/* Tensor descriptors of the cuDNN emulation: create, set (4d, 4d with strides, Nd, Nd from
 * a format), get and destroy, plus the size-in-bytes query.  Owns struct cudnnTensorStruct's
 * invariants: once set, 3..CUDNN_DIM_MAX positive dims and positive strides.  Stores every
 * data type cuDNN knows (compute functions decide what they support). */
#include <stdlib.h>

#include "emu_cudnn.h"

size_t emu_descriptor_type_size(cudnnDataType_t type)
{
    switch (type) {
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_INT32:
    case CUDNN_DATA_UINT32: return 4;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8:
    case CUDNN_DATA_UINT8:
    case CUDNN_DATA_BOOLEAN:
    case CUDNN_DATA_FP8_E4M3:
    case CUDNN_DATA_FP8_E5M2: return 1;
    default: return 0;
    }
}

/* Fills strides for packed dims laid out as format (NCHW or NHWC ordering of axis 1). */
static void packed_strides(cudnnTensorFormat_t format, int nb, const int *dims, int *strides)
{
    if (format == CUDNN_TENSOR_NHWC) {
        int s = dims[1];
        strides[1] = 1;
        for (int i = nb - 1; i >= 2; i--) {
            strides[i] = s;
            s *= dims[i];
        }
        strides[0] = s;
        return;
    }
    int s = 1;
    for (int i = nb - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

static cudnnStatus_t store(cudnnTensorDescriptor_t d, cudnnDataType_t type, int nb,
                           const int *dims, const int *strides)
{
    if (!d || !dims || !strides)
        return CUDNN_STATUS_BAD_PARAM;
    if (nb > CUDNN_DIM_MAX)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (nb < 3 || emu_descriptor_type_size(type) == 0)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nb; i++)
        if (dims[i] <= 0 || strides[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    d->type = type;
    d->nb_dims = nb;
    for (int i = 0; i < nb; i++) {
        d->dims[i] = dims[i];
        d->strides[i] = strides[i];
    }
    d->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* Allocates an unset descriptor owned by the caller (cudnnDestroyTensorDescriptor). */
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *desc)
{
    if (!desc)
        return CUDNN_STATUS_BAD_PARAM;
    *desc = calloc(1, sizeof **desc);
    return *desc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

/* Frees a descriptor; NULL is accepted as cuDNN does. */
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc)
{
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

/* Sets a packed 4-d tensor; format NCHW or NHWC (NCHW_VECT_C is not emulated). */
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w)
{
    int dims[4] = {n, c, h, w}, strides[4];
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
        return format == CUDNN_TENSOR_NCHW_VECT_C ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_BAD_PARAM;
    packed_strides(format, 4, dims, strides);
    return store(desc, type, 4, dims, strides);
}

/* Sets a 4-d tensor with explicit strides. */
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t desc, cudnnDataType_t type,
                                           int n, int c, int h, int w,
                                           int ns, int cs, int hs, int ws)
{
    int dims[4] = {n, c, h, w}, strides[4] = {ns, cs, hs, ws};
    return store(desc, type, 4, dims, strides);
}

/* Reads back a 4-d descriptor; a descriptor of another rank gives CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t desc, cudnnDataType_t *type,
                                         int *n, int *c, int *h, int *w,
                                         int *ns, int *cs, int *hs, int *ws)
{
    if (!desc || !desc->is_set || desc->nb_dims != 4 || !type || !n || !c || !h || !w ||
        !ns || !cs || !hs || !ws)
        return CUDNN_STATUS_BAD_PARAM;
    *type = desc->type;
    *n = desc->dims[0]; *c = desc->dims[1]; *h = desc->dims[2]; *w = desc->dims[3];
    *ns = desc->strides[0]; *cs = desc->strides[1]; *hs = desc->strides[2]; *ws = desc->strides[3];
    return CUDNN_STATUS_SUCCESS;
}

/* Sets an N-d tensor (3 <= nbDims <= CUDNN_DIM_MAX) with explicit strides. */
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t desc, cudnnDataType_t type,
                                         int nbDims, const int dims[], const int strides[])
{
    return store(desc, type, nbDims, dims, strides);
}

/* Sets a packed N-d tensor whose channel axis is ordered as format says. */
cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                           cudnnDataType_t type, int nbDims, const int dims[])
{
    int strides[CUDNN_DIM_MAX];
    if (!dims || nbDims < 3)
        return CUDNN_STATUS_BAD_PARAM;
    if (nbDims > CUDNN_DIM_MAX || format == CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
        return CUDNN_STATUS_BAD_PARAM;
    packed_strides(format, nbDims, dims, strides);
    return store(desc, type, nbDims, dims, strides);
}

/* Reads back up to nbDimsRequested dims/strides; *nbDims receives the real rank. */
cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t desc, int nbDimsRequested,
                                         cudnnDataType_t *type, int *nbDims, int dims[], int strides[])
{
    if (!desc || !desc->is_set || !type || !nbDims || nbDimsRequested < 0 ||
        (nbDimsRequested > 0 && (!dims || !strides)))
        return CUDNN_STATUS_BAD_PARAM;
    *type = desc->type;
    *nbDims = desc->nb_dims;
    for (int i = 0; i < nbDimsRequested && i < desc->nb_dims; i++) {
        dims[i] = desc->dims[i];
        strides[i] = desc->strides[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the bytes spanned by the tensor (last element's offset + 1, times the element size). */
cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t desc, size_t *size)
{
    if (!desc || !desc->is_set || !size)
        return CUDNN_STATUS_BAD_PARAM;
    size_t span = 1;
    for (int i = 0; i < desc->nb_dims; i++)
        span += (size_t)(desc->dims[i] - 1) * (size_t)desc->strides[i];
    *size = span * emu_descriptor_type_size(desc->type);
    return CUDNN_STATUS_SUCCESS;
}
