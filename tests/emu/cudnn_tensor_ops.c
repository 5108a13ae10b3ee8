/* Element-wise tensor functions of the cuDNN emulation: cudnnAddTensor, cudnnOpTensor,
 * cudnnScaleTensor, cudnnSetTensor, cudnnActivationForward and cudnnActivationBackward, plus
 * the whole-tensor gather/scatter helpers (emu_gather, emu_scatter_blend) that these and the
 * batch normalization functions use to honour arbitrary strides and alpha/beta blending.
 * Every function reads its inputs completely before it writes, so aliased inputs and outputs
 * give the element-wise result.  Owns no state; must not modify descriptors (they belong to
 * the caller) and must not write outside the elements a destination descriptor describes. */
#include <math.h>
#include <stdlib.h>

#include "emu_cudnn.h"

int emu_tensor_ready(const struct cudnnTensorStruct *desc)
{
    return desc && desc->is_set;
}

int emu_same_dims(const struct cudnnTensorStruct *a, const struct cudnnTensorStruct *b)
{
    if (a->nb_dims != b->nb_dims)
        return 0;
    for (int i = 0; i < a->nb_dims; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

size_t emu_element_count(const struct cudnnTensorStruct *desc)
{
    size_t count = 1;
    for (int i = 0; i < desc->nb_dims; i++)
        count *= (size_t)desc->dims[i];
    return count;
}

/* Advances idx to the next index of dims in logical order; returns 0 after the last one. */
static int next_index(int nb_dims, const int *dims, int *idx)
{
    for (int i = nb_dims - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return 1;
        idx[i] = 0;
    }
    return 0;
}

/* Element offset of idx in t; an axis where t has extent 1 always reads index 0 (broadcast). */
static ptrdiff_t offset_of(const struct cudnnTensorStruct *t, const int *idx)
{
    ptrdiff_t offset = 0;
    for (int i = 0; i < t->nb_dims; i++)
        if (t->dims[i] > 1)
            offset += (ptrdiff_t)idx[i] * t->strides[i];
    return offset;
}

void emu_gather(const struct cudnnTensorStruct *src, const void *data,
                const struct cudnnTensorStruct *shape, float *out)
{
    int idx[CUDNN_DIM_MAX] = {0};
    size_t i = 0;
    do
        out[i++] = emu_load(data, src->type, offset_of(src, idx));
    while (next_index(shape->nb_dims, shape->dims, idx));
}

void emu_scatter_blend(const struct cudnnTensorStruct *desc, void *data, const float *values,
                       float alpha, float beta)
{
    int idx[CUDNN_DIM_MAX] = {0};
    size_t i = 0;
    do {
        ptrdiff_t offset = offset_of(desc, idx);
        float v = alpha * values[i++];
        if (beta != 0.0f)
            v += beta * emu_load(data, desc->type, offset);
        emu_store(data, desc->type, offset, v);
    } while (next_index(desc->nb_dims, desc->dims, idx));
}

/* Alpha/beta scaling factors are host floats for FLOAT, HALF and BFLOAT16 tensors. */
static float scaling(const void *factor)
{
    return *(const float *)factor;
}

/* Returns a buffer for the logical values of desc (caller frees), or NULL. */
static float *values_for(const struct cudnnTensorStruct *desc)
{
    return malloc(emu_element_count(desc) * sizeof(float));
}

/* Returns 1 if src has shape's rank and each of its dims is shape's or 1. */
static int broadcasts_to(const struct cudnnTensorStruct *src, const struct cudnnTensorStruct *shape)
{
    if (src->nb_dims != shape->nb_dims)
        return 0;
    for (int i = 0; i < src->nb_dims; i++)
        if (src->dims[i] != shape->dims[i] && src->dims[i] != 1)
            return 0;
    return 1;
}

static int same_strides(const struct cudnnTensorStruct *a, const struct cudnnTensorStruct *b)
{
    for (int i = 0; i < a->nb_dims; i++)
        if (a->strides[i] != b->strides[i])
            return 0;
    return 1;
}

static cudnnStatus_t check_add(cudnnHandle_t handle, const void *alpha,
                               const struct cudnnTensorStruct *a, const void *A, const void *beta,
                               const struct cudnnTensorStruct *c, const void *C)
{
    if (!emu_handle_valid(handle) || !alpha || !beta || !A || !C || !emu_tensor_ready(a) ||
        !emu_tensor_ready(c) || a->type != c->type || a->nb_dims != c->nb_dims)
        return CUDNN_STATUS_BAD_PARAM;
    if (!emu_type_supported(c->type) || (c->nb_dims != 4 && c->nb_dims != 5))
        return CUDNN_STATUS_NOT_SUPPORTED;
    return broadcasts_to(a, c) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

/* C = alpha * A + beta * C, A broadcast along every axis where its extent is 1.  4-d and 5-d
 * tensors of one type (FLOAT, HALF, BFLOAT16); the caller owns all buffers. */
cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void *alpha,
                             const cudnnTensorDescriptor_t aDesc, const void *A, const void *beta,
                             const cudnnTensorDescriptor_t cDesc, void *C)
{
    cudnnStatus_t status = check_add(handle, alpha, aDesc, A, beta, cDesc, C);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float *values = values_for(cDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    emu_gather(aDesc, A, cDesc, values);
    emu_scatter_blend(cDesc, C, values, scaling(alpha), scaling(beta));
    free(values);
    return CUDNN_STATUS_SUCCESS;
}

static int op_is_unary(cudnnOpTensorOp_t op)
{
    return op == CUDNN_OP_TENSOR_SQRT || op == CUDNN_OP_TENSOR_NOT;
}

/* The (compute, A, B, C) type rows cuDNN documents for cudnnOpTensor that the emulation runs:
 * FLOAT compute, A and B of one type, C of that type or either side FLOAT. */
static int op_types_emulated(cudnnDataType_t compute, cudnnDataType_t a, cudnnDataType_t b,
                             cudnnDataType_t c)
{
    if (compute != CUDNN_DATA_FLOAT || a != b || !emu_type_supported(a) || !emu_type_supported(c))
        return 0;
    return a == c || a == CUDNN_DATA_FLOAT || c == CUDNN_DATA_FLOAT;
}

/* The rows cuDNN documents that the emulation does not run (double, int8). */
static int op_types_documented_only(cudnnDataType_t compute, cudnnDataType_t a,
                                    cudnnDataType_t b, cudnnDataType_t c)
{
    if (a != b)
        return 0;
    if (compute == CUDNN_DATA_DOUBLE)
        return a == CUDNN_DATA_DOUBLE && c == CUDNN_DATA_DOUBLE;
    if (compute != CUDNN_DATA_FLOAT)
        return 0;
    if (a == CUDNN_DATA_INT8)
        return c == CUDNN_DATA_INT8 || c == CUDNN_DATA_FLOAT;
    return a == CUDNN_DATA_FLOAT && c == CUDNN_DATA_INT8;
}

static cudnnStatus_t check_op_types(const struct cudnnOpTensorStruct *op,
                                    const struct cudnnTensorStruct *a,
                                    const struct cudnnTensorStruct *b,
                                    const struct cudnnTensorStruct *c)
{
    cudnnDataType_t b_type = op_is_unary(op->op) ? a->type : b->type;
    if (op_types_emulated(op->compute_type, a->type, b_type, c->type))
        return CUDNN_STATUS_SUCCESS;
    if (op_types_documented_only(op->compute_type, a->type, b_type, c->type))
        return CUDNN_STATUS_NOT_SUPPORTED;
    return CUDNN_STATUS_BAD_PARAM;
}

static cudnnStatus_t check_op(cudnnHandle_t handle, const struct cudnnOpTensorStruct *op,
                              const void *alpha1, const struct cudnnTensorStruct *a, const void *A,
                              const void *alpha2, const struct cudnnTensorStruct *b, const void *B,
                              const void *beta, const struct cudnnTensorStruct *c, const void *C)
{
    if (!emu_handle_valid(handle) || !op || !op->is_set || !alpha1 || !alpha2 || !beta || !A ||
        !C || !emu_tensor_ready(a) || !emu_tensor_ready(c) || !emu_same_dims(a, c) ||
        c->nb_dims > 5)
        return CUDNN_STATUS_BAD_PARAM;
    if (!op_is_unary(op->op) && (!B || !emu_tensor_ready(b) || !broadcasts_to(b, c)))
        return CUDNN_STATUS_BAD_PARAM;
    return check_op_types(op, a, b, c);
}

static float min_or_max(float x, float y, int want_max, cudnnNanPropagation_t nan_opt)
{
    if ((isnan(x) || isnan(y)) && nan_opt == CUDNN_PROPAGATE_NAN)
        return NAN;
    return want_max ? fmaxf(x, y) : fminf(x, y);
}

static float apply_op(const struct cudnnOpTensorStruct *op, float x, float y)
{
    switch (op->op) {
    case CUDNN_OP_TENSOR_ADD: return x + y;
    case CUDNN_OP_TENSOR_MUL: return x * y;
    case CUDNN_OP_TENSOR_MIN: return min_or_max(x, y, 0, op->nan_opt);
    case CUDNN_OP_TENSOR_MAX: return min_or_max(x, y, 1, op->nan_opt);
    case CUDNN_OP_TENSOR_SQRT: return sqrtf(x);
    default: return 1.0f - x; /* CUDNN_OP_TENSOR_NOT */
    }
}

/* Fills a_values[i] = op(alpha1 * A[i], alpha2 * B[i]); B is read only by binary ops. */
static cudnnStatus_t compute_op(const struct cudnnOpTensorStruct *op, float alpha1,
                                const struct cudnnTensorStruct *a, const void *A, float alpha2,
                                const struct cudnnTensorStruct *b, const void *B,
                                const struct cudnnTensorStruct *c, float *a_values)
{
    size_t count = emu_element_count(c);
    float *b_values = NULL;
    if (!op_is_unary(op->op)) {
        b_values = values_for(c);
        if (!b_values)
            return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
        emu_gather(b, B, c, b_values);
    }
    emu_gather(a, A, c, a_values);
    for (size_t i = 0; i < count; i++)
        a_values[i] = apply_op(op, alpha1 * a_values[i], b_values ? alpha2 * b_values[i] : 0.0f);
    free(b_values);
    return CUDNN_STATUS_SUCCESS;
}

/* C = op(alpha1 * A, alpha2 * B) + beta * C; A has C's dims, B is broadcast where its extent is
 * 1 and is ignored (may be NULL) for SQRT and NOT.  The caller owns all buffers. */
cudnnStatus_t cudnnOpTensor(cudnnHandle_t handle, const cudnnOpTensorDescriptor_t opTensorDesc,
                            const void *alpha1, const cudnnTensorDescriptor_t aDesc, const void *A,
                            const void *alpha2, const cudnnTensorDescriptor_t bDesc, const void *B,
                            const void *beta, const cudnnTensorDescriptor_t cDesc, void *C)
{
    cudnnStatus_t status = check_op(handle, opTensorDesc, alpha1, aDesc, A, alpha2, bDesc, B,
                                    beta, cDesc, C);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float *values = values_for(cDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    status = compute_op(opTensorDesc, scaling(alpha1), aDesc, A, scaling(alpha2), bDesc, B,
                        cDesc, values);
    if (status == CUDNN_STATUS_SUCCESS)
        emu_scatter_blend(cDesc, C, values, 1.0f, scaling(beta));
    free(values);
    return status;
}

static cudnnStatus_t check_whole_tensor(cudnnHandle_t handle, const struct cudnnTensorStruct *y,
                                        const void *data, const void *value)
{
    if (!emu_handle_valid(handle) || !emu_tensor_ready(y) || !data || !value)
        return CUDNN_STATUS_BAD_PARAM;
    return emu_type_supported(y->type) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}

/* Sets every element of y to value[0], which is of y's data type (a half for HALF, as cuDNN
 * documents).  The caller owns y. */
cudnnStatus_t cudnnSetTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void *y,
                             const void *valuePtr)
{
    cudnnStatus_t status = check_whole_tensor(handle, yDesc, y, valuePtr);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float *values = values_for(yDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    float value = emu_load(valuePtr, yDesc->type, 0);
    size_t count = emu_element_count(yDesc);
    for (size_t i = 0; i < count; i++)
        values[i] = value;
    emu_scatter_blend(yDesc, y, values, 1.0f, 0.0f);
    free(values);
    return CUDNN_STATUS_SUCCESS;
}

/* y = alpha[0] * y over every element (alpha a host float).  The caller owns y. */
cudnnStatus_t cudnnScaleTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void *y,
                               const void *alpha)
{
    cudnnStatus_t status = check_whole_tensor(handle, yDesc, y, alpha);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    float *values = values_for(yDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    emu_gather(yDesc, y, yDesc, values);
    emu_scatter_blend(yDesc, y, values, scaling(alpha), 0.0f);
    free(values);
    return CUDNN_STATUS_SUCCESS;
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* max(x, 0) clipped at ceiling; NaN gives NaN or 0 as the descriptor's NaN option says. */
static float relu(const struct cudnnActivationStruct *act, float x, float ceiling)
{
    if (isnan(x))
        return act->nan_opt == CUDNN_PROPAGATE_NAN ? x : 0.0f;
    return fminf(fmaxf(x, 0.0f), ceiling);
}

static float activate(const struct cudnnActivationStruct *act, float x)
{
    switch (act->mode) {
    case CUDNN_ACTIVATION_SIGMOID: return sigmoid(x);
    case CUDNN_ACTIVATION_RELU: return relu(act, x, INFINITY);
    case CUDNN_ACTIVATION_TANH: return tanhf(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU: return relu(act, x, (float)act->coef);
    case CUDNN_ACTIVATION_ELU: return x > 0.0f ? x : (float)act->coef * expm1f(x);
    default: return x * sigmoid((float)act->swish_beta * x); /* CUDNN_ACTIVATION_SWISH */
    }
}

/* d activate(x) / dx, computed from x (not from y, which alpha/beta may have blended). */
static float activation_slope(const struct cudnnActivationStruct *act, float x)
{
    float s;
    switch (act->mode) {
    case CUDNN_ACTIVATION_SIGMOID: s = sigmoid(x); return s * (1.0f - s);
    case CUDNN_ACTIVATION_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case CUDNN_ACTIVATION_TANH: s = tanhf(x); return 1.0f - s * s;
    case CUDNN_ACTIVATION_CLIPPED_RELU: return x > 0.0f && x < (float)act->coef ? 1.0f : 0.0f;
    case CUDNN_ACTIVATION_ELU: return x > 0.0f ? 1.0f : (float)act->coef * expf(x);
    default: /* CUDNN_ACTIVATION_SWISH */
        s = sigmoid((float)act->swish_beta * x);
        return s + (float)act->swish_beta * x * s * (1.0f - s);
    }
}

/* IDENTITY is for cudnnConvolutionBiasActivationForward only; cuDNN documents that it does not
 * work with the activation functions themselves. */
static int activation_usable(const struct cudnnActivationStruct *act)
{
    return act && act->is_set && act->mode != CUDNN_ACTIVATION_IDENTITY;
}

/* Same dims and type as x; in place (same pointer) only with identical strides. */
static int pairs_with(const struct cudnnTensorStruct *x, const void *x_data,
                      const struct cudnnTensorStruct *y, const void *y_data)
{
    if (!emu_tensor_ready(x) || !emu_tensor_ready(y) || !x_data || !y_data)
        return 0;
    if (!emu_same_dims(x, y) || x->type != y->type)
        return 0;
    return x_data != y_data || same_strides(x, y);
}

/* y = alpha * act(x) + beta * y for SIGMOID, RELU, TANH, CLIPPED_RELU, ELU and SWISH; x and y
 * have the same dims and type, any strides, x == y allowed with identical strides.  The caller
 * owns all buffers. */
cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle,
                                     cudnnActivationDescriptor_t activationDesc, const void *alpha,
                                     const cudnnTensorDescriptor_t xDesc, const void *x,
                                     const void *beta, const cudnnTensorDescriptor_t yDesc,
                                     void *y)
{
    if (!emu_handle_valid(handle) || !activation_usable(activationDesc) || !alpha || !beta ||
        !pairs_with(xDesc, x, yDesc, y))
        return CUDNN_STATUS_BAD_PARAM;
    if (!emu_type_supported(xDesc->type))
        return CUDNN_STATUS_NOT_SUPPORTED;
    float *values = values_for(xDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    emu_gather(xDesc, x, xDesc, values);
    size_t count = emu_element_count(xDesc);
    for (size_t i = 0; i < count; i++)
        values[i] = activate(activationDesc, values[i]);
    emu_scatter_blend(yDesc, y, values, scaling(alpha), scaling(beta));
    free(values);
    return CUDNN_STATUS_SUCCESS;
}

/* Fills dx_values[i] = dy[i] * act'(x[i]). */
static cudnnStatus_t compute_activation_grad(const struct cudnnActivationStruct *act,
                                             const struct cudnnTensorStruct *dy_desc,
                                             const void *dy, const struct cudnnTensorStruct *x_desc,
                                             const void *x, float *dx_values)
{
    float *x_values = values_for(x_desc);
    if (!x_values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    emu_gather(x_desc, x, x_desc, x_values);
    emu_gather(dy_desc, dy, dy_desc, dx_values);
    size_t count = emu_element_count(x_desc);
    for (size_t i = 0; i < count; i++)
        dx_values[i] *= activation_slope(act, x_values[i]);
    free(x_values);
    return CUDNN_STATUS_SUCCESS;
}

/* dx = alpha * dy * act'(x) + beta * dx for the modes cudnnActivationForward takes; y, dy, x and
 * dx have the same dims and type, dy == dx allowed with identical strides.  y is checked but the
 * slope is computed from x.  The caller owns all buffers. */
cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle,
                                      cudnnActivationDescriptor_t activationDesc, const void *alpha,
                                      const cudnnTensorDescriptor_t yDesc, const void *y,
                                      const cudnnTensorDescriptor_t dyDesc,
                                      const void *dy, const cudnnTensorDescriptor_t xDesc,
                                      const void *x, const void *beta,
                                      const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    if (!emu_handle_valid(handle) || !activation_usable(activationDesc) || !alpha || !beta ||
        !pairs_with(dyDesc, dy, dxDesc, dx) || !pairs_with(xDesc, x, dxDesc, dx) ||
        !pairs_with(yDesc, y, dxDesc, dx))
        return CUDNN_STATUS_BAD_PARAM;
    if (!emu_type_supported(xDesc->type))
        return CUDNN_STATUS_NOT_SUPPORTED;
    float *values = values_for(dxDesc);
    if (!values)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    cudnnStatus_t status = compute_activation_grad(activationDesc, dyDesc, dy, xDesc, x, values);
    if (status == CUDNN_STATUS_SUCCESS)
        emu_scatter_blend(dxDesc, dx, values, scaling(alpha), scaling(beta));
    free(values);
    return status;
}
