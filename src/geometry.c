/* Snapshots of tensor, filter and convolution descriptors through the real cuDNN getters,
 * plus size arithmetic and the short names used in logs.  Owns no state; must not call any
 * cuDNN function other than the descriptor getters. */
#include <stdio.h>
#include <string.h>

#include "convbn/geometry.h"
#include "convbn/real.h"

int convbn_snapshot_tensor(cudnnTensorDescriptor_t desc, struct convbn_tensor_geom *out)
{
    cudnnDataType_t type;
    memset(out, 0, sizeof *out);
    if (!desc || real_cudnnGetTensorNdDescriptor(desc, CONVBN_MAX_DIMS, &type, &out->nb_dims,
                                                 out->dims, out->strides) != CUDNN_STATUS_SUCCESS)
        return -1;
    out->type = type;
    return out->nb_dims >= 3 && out->nb_dims <= 2 + CONVBN_MAX_SPATIAL ? 0 : -1;
}

int convbn_snapshot_filter(cudnnFilterDescriptor_t desc, struct convbn_filter_geom *out)
{
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    memset(out, 0, sizeof *out);
    if (!desc || real_cudnnGetFilterNdDescriptor(desc, CONVBN_MAX_DIMS, &type, &format,
                                                 &out->nb_dims, out->dims) != CUDNN_STATUS_SUCCESS)
        return -1;
    out->type = type;
    out->format = format;
    return out->nb_dims >= 3 && out->nb_dims <= 2 + CONVBN_MAX_SPATIAL ? 0 : -1;
}

int convbn_snapshot_conv(cudnnConvolutionDescriptor_t desc, struct convbn_conv_geom *out)
{
    int pad[CONVBN_MAX_DIMS], stride[CONVBN_MAX_DIMS], dilation[CONVBN_MAX_DIMS];
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
    memset(out, 0, sizeof *out);
    if (!desc ||
        real_cudnnGetConvolutionNdDescriptor(desc, CONVBN_MAX_DIMS - 2, &out->nb_spatial, pad,
                                             stride, dilation, &mode,
                                             &compute) != CUDNN_STATUS_SUCCESS ||
        real_cudnnGetConvolutionGroupCount(desc, &out->groups) != CUDNN_STATUS_SUCCESS ||
        real_cudnnGetConvolutionMathType(desc, &math) != CUDNN_STATUS_SUCCESS)
        return -1;
    if (out->nb_spatial < 1 || out->nb_spatial > CONVBN_MAX_SPATIAL)
        return -1;
    for (int i = 0; i < out->nb_spatial; i++) {
        out->pad[i] = pad[i];
        out->stride[i] = stride[i];
        out->dilation[i] = dilation[i];
    }
    out->mode = mode;
    out->compute_type = compute;
    out->math_type = math;
    return 0;
}

size_t convbn_type_size(int type)
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

size_t convbn_tensor_elems(const struct convbn_tensor_geom *t)
{
    size_t n = 1;
    for (int i = 0; i < t->nb_dims; i++)
        n *= (size_t)t->dims[i];
    return n;
}

size_t convbn_tensor_span_bytes(const struct convbn_tensor_geom *t)
{
    size_t last = 0;
    for (int i = 0; i < t->nb_dims; i++)
        last += (size_t)(t->dims[i] - 1) * (size_t)t->strides[i];
    return (last + 1) * convbn_type_size(t->type);
}

size_t convbn_tensor_bytes(const struct convbn_tensor_geom *t)
{
    return convbn_tensor_elems(t) * convbn_type_size(t->type);
}

size_t convbn_filter_bytes(const struct convbn_filter_geom *f)
{
    size_t n = 1;
    for (int i = 0; i < f->nb_dims; i++)
        n *= (size_t)f->dims[i];
    return n * convbn_type_size(f->type);
}

int convbn_tensor_same(const struct convbn_tensor_geom *a, const struct convbn_tensor_geom *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

const char *convbn_type_name(int type)
{
    switch (type) {
    case CUDNN_DATA_FLOAT: return "float";
    case CUDNN_DATA_DOUBLE: return "double";
    case CUDNN_DATA_HALF: return "half";
    case CUDNN_DATA_BFLOAT16: return "bfloat16";
    case CUDNN_DATA_INT8: return "int8";
    case CUDNN_DATA_UINT8: return "uint8";
    case CUDNN_DATA_INT32: return "int32";
    default: return "other";
    }
}

/* Returns 1 if the strides are the packed ones for dims taken in the order axes[]. */
static int packed_in_order(const struct convbn_tensor_geom *t, const int *axes)
{
    long expect = 1;
    for (int i = t->nb_dims - 1; i >= 0; i--) {
        int axis = axes[i];
        if (t->dims[axis] != 1 && t->strides[axis] != expect)
            return 0;
        expect *= t->dims[axis];
    }
    return 1;
}

const char *convbn_layout_name(const struct convbn_tensor_geom *t)
{
    static const int nchw[] = {0, 1, 2, 3, 4}, nhwc4[] = {0, 2, 3, 1}, nhwc5[] = {0, 2, 3, 4, 1};
    int three_d = t->nb_dims == 5;
    if (packed_in_order(t, nchw))
        return three_d ? "NCDHW" : "NCHW";
    if (t->nb_dims >= 4 && packed_in_order(t, three_d ? nhwc5 : nhwc4))
        return three_d ? "NDHWC" : "NHWC";
    return "strided";
}

char *convbn_format_list(char *buf, size_t cap, const int *values, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%d", i ? "," : "", values[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

char *convbn_format_dims(char *buf, size_t cap, const int *dims, int nb)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < nb && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%d", i ? "x" : "", dims[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}
