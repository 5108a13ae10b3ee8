/* Convolution compute functions of the cuDNN emulation: forward, fused bias-activation
 * forward, backward data, backward filter and backward bias.  Each is one plain reference
 * loop over the output elements (fp32 accumulation over values stored as FLOAT, HALF or
 * BFLOAT16), whatever algorithm id is asked for; the algorithm only decides what is staged
 * in the workspace first (cudnn_conv_algo.c says what and how much).  The same loops give
 * the backend API its unblended results (emu_conv_values).  Results are blended
 * as dst = alpha * result + beta * dst, and dst is not read when beta == 0.  Writes only
 * the destination tensor's elements and the workspace bytes the algorithm claims; owns no
 * state.  Descriptor checks live in cudnn_conv_desc.c (emu_conv_geometry). */
#include <string.h>

#include "emu_cudnn.h"

#define WORKSPACE_FILL_BYTE 0xa5

/* The operands a compute call reads; staging may point them at copies in the workspace. */
struct operands {
    const void *x;
    const void *w;
    const void *dy;
};

/* Steps p[0..nb) through [0, lim[0]) x ... x [0, lim[nb-1]) in row-major order; returns 0
 * (p back at all zeros) after the last point. */
static int next_point(int nb, const int *lim, int *p)
{
    for (int a = nb - 1; a >= 0; a--) {
        if (++p[a] < lim[a])
            return 1;
        p[a] = 0;
    }
    return 0;
}

static ptrdiff_t offset_of(const struct emu_conv_strides *s, int n, int c, const int *sp)
{
    return (ptrdiff_t)n * s->n + (ptrdiff_t)c * s->c + (ptrdiff_t)sp[0] * s->sp[0] +
           (ptrdiff_t)sp[1] * s->sp[1] + (ptrdiff_t)sp[2] * s->sp[2];
}

/* Stored filter index of logical tap t on axis a: true convolution mirrors the filter. */
static int stored_tap(const struct emu_conv_geometry *g, int a, int t)
{
    return g->flip ? g->filter[a] - 1 - t : t;
}

static ptrdiff_t filter_offset(const struct emu_conv_geometry *g, int k, int c, const int *t)
{
    int tap[EMU_CONV_AXES];
    for (int a = 0; a < EMU_CONV_AXES; a++)
        tap[a] = stored_tap(g, a, t[a]);
    return offset_of(&g->w, k, c, tap);
}

/* Input coordinate that output coordinate o reads through tap t on axis a; -1 in the padding. */
static int input_coord(const struct emu_conv_geometry *g, int a, int o, int t)
{
    int i = o * g->stride[a] - g->pad[a] + t * g->dilation[a];
    return i >= 0 && i < g->in[a] ? i : -1;
}

/* Output coordinate whose tap t on axis a reads input coordinate i; -1 if there is none. */
static int output_coord(const struct emu_conv_geometry *g, int a, int i, int t)
{
    int shifted = i + g->pad[a] - t * g->dilation[a];
    if (shifted < 0 || shifted % g->stride[a] != 0)
        return -1;
    int o = shifted / g->stride[a];
    return o < g->out[a] ? o : -1;
}

static void blend_store(void *dst, cudnnDataType_t type, ptrdiff_t index, float alpha,
                        float beta, float value)
{
    float result = alpha * value;
    if (beta != 0.0f)
        result += beta * emu_load(dst, type, index);
    emu_store(dst, type, index, result);
}

/* Sum over one input channel c (within the group) and every tap of the products feeding
 * output point (n, k, o). */
static float forward_channel_sum(const struct emu_conv_geometry *g, const struct operands *op,
                                 int n, int k, int c, const int *o)
{
    int t[EMU_CONV_AXES] = {0}, i[EMU_CONV_AXES];
    int x_channel = (k / g->out_per_group) * g->in_per_group + c;
    float acc = 0.0f;
    do {
        int inside = 1;
        for (int a = 0; a < EMU_CONV_AXES; a++)
            inside &= (i[a] = input_coord(g, a, o[a], t[a])) >= 0;
        if (inside)
            acc += emu_load(op->x, g->type, offset_of(&g->x, n, x_channel, i)) *
                   emu_load(op->w, g->type, filter_offset(g, k, c, t));
    } while (next_point(EMU_CONV_AXES, g->filter, t));
    return acc;
}

static float forward_sum(const struct emu_conv_geometry *g, const struct operands *op, int n,
                         int k, const int *o)
{
    float acc = 0.0f;
    for (int c = 0; c < g->in_per_group; c++)
        acc += forward_channel_sum(g, op, n, k, c, o);
    return acc;
}

/* Sum of the products that input point (n, c) at i contributed to, taken over dy and w. */
static float backward_data_sum(const struct emu_conv_geometry *g, const struct operands *op,
                               int n, int c, const int *i)
{
    int t[EMU_CONV_AXES] = {0}, o[EMU_CONV_AXES];
    int group = c / g->in_per_group, c_in_group = c % g->in_per_group;
    float acc = 0.0f;
    do {
        int reached = 1;
        for (int a = 0; a < EMU_CONV_AXES; a++)
            reached &= (o[a] = output_coord(g, a, i[a], t[a])) >= 0;
        if (!reached)
            continue;
        for (int k = group * g->out_per_group; k < (group + 1) * g->out_per_group; k++)
            acc += emu_load(op->dy, g->type, offset_of(&g->y, n, k, o)) *
                   emu_load(op->w, g->type, filter_offset(g, k, c_in_group, t));
    } while (next_point(EMU_CONV_AXES, g->filter, t));
    return acc;
}

/* Gradient of filter element (k, c, stored taps s): sum over the batch and every output point. */
static float backward_filter_sum(const struct emu_conv_geometry *g, const struct operands *op,
                                 int k, int c, const int *s)
{
    int t[EMU_CONV_AXES], p[1 + EMU_CONV_AXES] = {0}, lim[1 + EMU_CONV_AXES], i[EMU_CONV_AXES];
    int x_channel = (k / g->out_per_group) * g->in_per_group + c;
    float acc = 0.0f;
    for (int a = 0; a < EMU_CONV_AXES; a++)
        t[a] = stored_tap(g, a, s[a]);
    lim[0] = g->batch;
    memcpy(lim + 1, g->out, sizeof g->out);
    do {
        const int *o = p + 1;
        int inside = 1;
        for (int a = 0; a < EMU_CONV_AXES; a++)
            inside &= (i[a] = input_coord(g, a, o[a], t[a])) >= 0;
        if (inside)
            acc += emu_load(op->x, g->type, offset_of(&g->x, p[0], x_channel, i)) *
                   emu_load(op->dy, g->type, offset_of(&g->y, p[0], k, o));
    } while (next_point(1 + EMU_CONV_AXES, lim, p));
    return acc;
}

/* Limits of the (n, channel, depth, height, width) points of a tensor with the given dims. */
static void point_limits(int n, int c, const int *sp, int *lim)
{
    lim[0] = n;
    lim[1] = c;
    memcpy(lim + 2, sp, EMU_CONV_AXES * sizeof *sp);
}

/* Copies what algorithm algo keeps in its workspace there and points the matching operand
 * at the copy.  Returns CUDNN_STATUS_BAD_PARAM if the workspace is smaller than required. */
static cudnnStatus_t stage_workspace(const struct emu_conv_geometry *g,
                                     enum emu_conv_direction dir, int algo, void *workspace,
                                     size_t workspace_bytes, struct operands *op)
{
    enum emu_workspace_content content;
    size_t bytes;
    cudnnStatus_t status = emu_conv_algo_workspace(dir, algo, g, &content, &bytes);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (bytes > 0 && (!workspace || workspace_bytes < bytes))
        return CUDNN_STATUS_BAD_PARAM;
    const void **staged = content == EMU_WORKSPACE_FILTER ? &op->w
                          : content == EMU_WORKSPACE_INPUT ? &op->x
                          : content == EMU_WORKSPACE_GRADIENT ? &op->dy
                                                              : NULL;
    if (staged) {
        memcpy(workspace, *staged, bytes);
        *staged = workspace;
    } else if (content == EMU_WORKSPACE_SCRATCH) {
        memset(workspace, WORKSPACE_FILL_BYTE, bytes);
    }
    return CUDNN_STATUS_SUCCESS;
}

/* y = alpha * conv(x, w) + beta * y over every point of y. */
static void run_forward(const struct emu_conv_geometry *g, const struct operands *op,
                        float alpha, float beta, void *y)
{
    int p[2 + EMU_CONV_AXES] = {0}, lim[2 + EMU_CONV_AXES];
    point_limits(g->batch, g->groups * g->out_per_group, g->out, lim);
    do {
        float sum = forward_sum(g, op, p[0], p[1], p + 2);
        blend_store(y, g->type, offset_of(&g->y, p[0], p[1], p + 2), alpha, beta, sum);
    } while (next_point(2 + EMU_CONV_AXES, lim, p));
}

/* Computes y = alpha * conv(x, w) + beta * y; see the file comment for what is supported. */
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    struct emu_conv_geometry g;
    struct operands op = {x, w, NULL};
    if (!emu_handle_valid(handle) || !alpha || !beta || !x || !w || !y)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(convDesc, xDesc, wDesc, yDesc, &g);
    if (status == CUDNN_STATUS_SUCCESS)
        status = stage_workspace(&g, EMU_CONV_FORWARD, algo, workSpace, workSpaceSizeInBytes, &op);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    run_forward(&g, &op, *(const float *)alpha, *(const float *)beta, y);
    return CUDNN_STATUS_SUCCESS;
}

/* The epilogue of a bias-activation forward: z (optional), bias and the activation. */
struct epilogue {
    const void *z;                 /* NULL when alpha2 == 0: z is then not read */
    struct emu_conv_strides z_strides;
    const void *bias;
    ptrdiff_t bias_stride;
    int relu;
};

/* cuDNN supports RELU and IDENTITY (the latter with IMPLICIT_PRECOMP_GEMM only), both with
 * CUDNN_NOT_PROPAGATE_NAN; everything else is CUDNN_STATUS_NOT_SUPPORTED. */
static cudnnStatus_t check_activation(const struct cudnnActivationStruct *act,
                                      cudnnConvolutionFwdAlgo_t algo)
{
    if (!act->is_set)
        return CUDNN_STATUS_BAD_PARAM;
    if (act->nan_opt != CUDNN_NOT_PROPAGATE_NAN)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (act->mode == CUDNN_ACTIVATION_RELU)
        return CUDNN_STATUS_SUCCESS;
    if (act->mode == CUDNN_ACTIVATION_IDENTITY &&
        algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return CUDNN_STATUS_SUCCESS;
    return CUDNN_STATUS_NOT_SUPPORTED;
}

/* z must have y's shape and type; bias must be 1 x K x 1 x ... with y's type and a unit
 * channel stride.  Mismatches are CUDNN_STATUS_NOT_SUPPORTED, as cuDNN documents. */
static cudnnStatus_t check_z_and_bias(const struct cudnnTensorStruct *y,
                                      const struct cudnnTensorStruct *z,
                                      const struct cudnnTensorStruct *bias)
{
    if (!z->is_set || !bias->is_set)
        return CUDNN_STATUS_BAD_PARAM;
    if (z->type != y->type || z->nb_dims != y->nb_dims || bias->type != y->type ||
        bias->nb_dims != y->nb_dims || bias->strides[1] != 1)
        return CUDNN_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < y->nb_dims; i++) {
        if (z->dims[i] != y->dims[i])
            return CUDNN_STATUS_NOT_SUPPORTED;
        if (bias->dims[i] != (i == 1 ? y->dims[1] : 1))
            return CUDNN_STATUS_NOT_SUPPORTED;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* y = act(alpha1 * conv(x, w) + alpha2 * z + bias) over every point of y; y is not read. */
static void run_bias_activation(const struct emu_conv_geometry *g, const struct operands *op,
                                float alpha1, float alpha2, const struct epilogue *ep, void *y)
{
    int p[2 + EMU_CONV_AXES] = {0}, lim[2 + EMU_CONV_AXES];
    point_limits(g->batch, g->groups * g->out_per_group, g->out, lim);
    do {
        float v = alpha1 * forward_sum(g, op, p[0], p[1], p + 2);
        if (ep->z)
            v += alpha2 * emu_load(ep->z, g->type, offset_of(&ep->z_strides, p[0], p[1], p + 2));
        v += emu_load(ep->bias, g->type, p[1] * ep->bias_stride);
        if (ep->relu)
            v = v > 0.0f ? v : 0.0f;
        emu_store(y, g->type, offset_of(&g->y, p[0], p[1], p + 2), v);
    } while (next_point(2 + EMU_CONV_AXES, lim, p));
}

static cudnnStatus_t check_bias_activation(const struct emu_conv_geometry *g,
                                           const struct cudnnConvolutionStruct *conv,
                                           const struct cudnnTensorStruct *y,
                                           const struct cudnnTensorStruct *z,
                                           const struct cudnnTensorStruct *bias,
                                           const struct cudnnActivationStruct *act,
                                           cudnnConvolutionFwdAlgo_t algo)
{
    cudnnStatus_t status = check_z_and_bias(y, z, bias);
    if (status == CUDNN_STATUS_SUCCESS)
        status = check_activation(act, algo);
    if (status == CUDNN_STATUS_SUCCESS && g->type == CUDNN_DATA_HALF &&
        conv->compute_type != CUDNN_DATA_FLOAT)
        status = CUDNN_STATUS_NOT_SUPPORTED; /* no TRUE_HALF_CONFIG for the fused call */
    return status;
}

/* Computes y = act(alpha1 * conv(x, w) + alpha2 * z + bias); z may alias y.  See
 * check_activation and check_z_and_bias for the documented restrictions. */
cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *alpha2, const cudnnTensorDescriptor_t zDesc, const void *z,
    const cudnnTensorDescriptor_t biasDesc, const void *bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc, void *y)
{
    struct emu_conv_geometry g;
    struct operands op = {x, w, NULL};
    if (!emu_handle_valid(handle) || !alpha1 || !alpha2 || !x || !w || !z || !bias || !y ||
        !zDesc || !biasDesc || !activationDesc)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(convDesc, xDesc, wDesc, yDesc, &g);
    if (status == CUDNN_STATUS_SUCCESS)
        status = check_bias_activation(&g, convDesc, yDesc, zDesc, biasDesc, activationDesc, algo);
    if (status == CUDNN_STATUS_SUCCESS)
        status = stage_workspace(&g, EMU_CONV_FORWARD, algo, workSpace, workSpaceSizeInBytes, &op);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    struct epilogue ep;
    float a2 = *(const float *)alpha2;
    ep.z = a2 != 0.0f ? z : NULL;
    emu_conv_tensor_strides(zDesc, &ep.z_strides);
    ep.bias = bias;
    ep.bias_stride = biasDesc->strides[1];
    ep.relu = activationDesc->mode == CUDNN_ACTIVATION_RELU;
    run_bias_activation(&g, &op, *(const float *)alpha1, a2, &ep, y);
    return CUDNN_STATUS_SUCCESS;
}

/* dx = alpha * conv_transpose(dy, w) + beta * dx over every point of dx. */
static void run_backward_data(const struct emu_conv_geometry *g, const struct operands *op,
                              float alpha, float beta, void *dx)
{
    int p[2 + EMU_CONV_AXES] = {0}, lim[2 + EMU_CONV_AXES];
    point_limits(g->batch, g->groups * g->in_per_group, g->in, lim);
    do {
        float sum = backward_data_sum(g, op, p[0], p[1], p + 2);
        blend_store(dx, g->type, offset_of(&g->x, p[0], p[1], p + 2), alpha, beta, sum);
    } while (next_point(2 + EMU_CONV_AXES, lim, p));
}

/* Computes dx = alpha * (gradient of conv with respect to x, given dy) + beta * dx. */
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    struct emu_conv_geometry g;
    struct operands op = {NULL, w, dy};
    if (!emu_handle_valid(handle) || !alpha || !beta || !w || !dy || !dx)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(convDesc, dxDesc, wDesc, dyDesc, &g);
    if (status == CUDNN_STATUS_SUCCESS)
        status = stage_workspace(&g, EMU_CONV_BACKWARD_DATA, algo, workSpace,
                                 workSpaceSizeInBytes, &op);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    run_backward_data(&g, &op, *(const float *)alpha, *(const float *)beta, dx);
    return CUDNN_STATUS_SUCCESS;
}

/* dw = alpha * (gradient of conv with respect to w) + beta * dw over every filter element. */
static void run_backward_filter(const struct emu_conv_geometry *g, const struct operands *op,
                                float alpha, float beta, void *dw)
{
    int p[2 + EMU_CONV_AXES] = {0}, lim[2 + EMU_CONV_AXES];
    point_limits(g->groups * g->out_per_group, g->in_per_group, g->filter, lim);
    do {
        float sum = backward_filter_sum(g, op, p[0], p[1], p + 2);
        blend_store(dw, g->type, offset_of(&g->w, p[0], p[1], p + 2), alpha, beta, sum);
    } while (next_point(2 + EMU_CONV_AXES, lim, p));
}

/* Computes dw = alpha * (gradient of conv with respect to w, given x and dy) + beta * dw. */
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *workSpace, size_t workSpaceSizeInBytes,
                                             const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    struct emu_conv_geometry g;
    struct operands op = {x, NULL, dy};
    if (!emu_handle_valid(handle) || !alpha || !beta || !x || !dy || !dw)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(convDesc, xDesc, dwDesc, dyDesc, &g);
    if (status == CUDNN_STATUS_SUCCESS)
        status = stage_workspace(&g, EMU_CONV_BACKWARD_FILTER, algo, workSpace,
                                 workSpaceSizeInBytes, &op);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    run_backward_filter(&g, &op, *(const float *)alpha, *(const float *)beta, dw);
    return CUDNN_STATUS_SUCCESS;
}

/* Sum feeding output point p (n, k, spatial / n, c, spatial / k, c, taps) of direction dir. */
static float direction_sum(enum emu_conv_direction dir, const struct emu_conv_geometry *g,
                           const struct operands *op, const int *p)
{
    switch (dir) {
    case EMU_CONV_FORWARD: return forward_sum(g, op, p[0], p[1], p + 2);
    case EMU_CONV_BACKWARD_DATA: return backward_data_sum(g, op, p[0], p[1], p + 2);
    default: return backward_filter_sum(g, op, p[0], p[1], p + 2);
    }
}

void emu_conv_values(enum emu_conv_direction dir, const struct emu_conv_geometry *g,
                     const void *x, const void *w, const void *dy, float *values)
{
    struct operands op = {x, w, dy};
    int p[2 + EMU_CONV_AXES] = {0}, lim[2 + EMU_CONV_AXES];
    size_t i = 0;
    if (dir == EMU_CONV_FORWARD)
        point_limits(g->batch, g->groups * g->out_per_group, g->out, lim);
    else if (dir == EMU_CONV_BACKWARD_DATA)
        point_limits(g->batch, g->groups * g->in_per_group, g->in, lim);
    else
        point_limits(g->groups * g->out_per_group, g->in_per_group, g->filter, lim);
    do
        values[i++] = direction_sum(dir, g, &op, p);
    while (next_point(2 + EMU_CONV_AXES, lim, p));
}

/* db must be 1 x C x 1 x ... of dy's rank and type. */
static cudnnStatus_t check_bias_gradient(const struct cudnnTensorStruct *dy,
                                         const struct cudnnTensorStruct *db)
{
    if (!dy || !db || !dy->is_set || !db->is_set)
        return CUDNN_STATUS_BAD_PARAM;
    if (!emu_type_supported(dy->type) || !emu_type_supported(db->type))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (dy->type != db->type || dy->nb_dims != db->nb_dims)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < dy->nb_dims; i++)
        if (db->dims[i] != (i == 1 ? dy->dims[1] : 1))
            return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

/* Sum of dy over every point of channel c. */
static float channel_sum(const struct cudnnTensorStruct *dy, const void *data, int c)
{
    int p[CUDNN_DIM_MAX] = {0}, lim[CUDNN_DIM_MAX];
    float acc = 0.0f;
    memcpy(lim, dy->dims, sizeof lim);
    lim[1] = 1;
    do {
        ptrdiff_t index = (ptrdiff_t)c * dy->strides[1];
        for (int a = 0; a < dy->nb_dims; a++)
            index += (ptrdiff_t)p[a] * dy->strides[a];
        acc += emu_load(data, dy->type, index);
    } while (next_point(dy->nb_dims, lim, p));
    return acc;
}

/* Computes db = alpha * (sum of dy over all but the channel axis) + beta * db. */
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void *alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const void *beta, const cudnnTensorDescriptor_t dbDesc,
                                           void *db)
{
    if (!emu_handle_valid(handle) || !alpha || !beta || !dy || !db)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = check_bias_gradient(dyDesc, dbDesc);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float a = *(const float *)alpha, b = *(const float *)beta;
    for (int c = 0; c < dyDesc->dims[1]; c++)
        blend_store(db, dbDesc->type, (ptrdiff_t)c * dbDesc->strides[1], a, b,
                    channel_sum(dyDesc, dy, c));
    return CUDNN_STATUS_SUCCESS;
}
