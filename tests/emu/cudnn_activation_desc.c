/* Activation and op-tensor descriptors of the cuDNN emulation: create, set, get, destroy,
 * and the swish beta of an activation.  Owns struct cudnnActivationStruct's and struct
 * cudnnOpTensorStruct's invariants: once set, mode/op and NaN option are valid enumerants.
 * Computes nothing and touches no tensor data; the functions that use these descriptors
 * (cudnn_tensor_ops.c) decide which combinations they support. */
#include <stdlib.h>

#include "emu_cudnn.h"

static int nan_option_valid(cudnnNanPropagation_t nan_opt)
{
    return nan_opt == CUDNN_NOT_PROPAGATE_NAN || nan_opt == CUDNN_PROPAGATE_NAN;
}

static int activation_mode_valid(cudnnActivationMode_t mode)
{
    return mode >= CUDNN_ACTIVATION_SIGMOID && mode <= CUDNN_ACTIVATION_SWISH;
}

static int op_valid(cudnnOpTensorOp_t op)
{
    return op >= CUDNN_OP_TENSOR_ADD && op <= CUDNN_OP_TENSOR_NOT;
}

/* Allocates an unset activation descriptor (swish beta 1) owned by the caller
 * (cudnnDestroyActivationDescriptor). */
cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *desc)
{
    if (!desc)
        return CUDNN_STATUS_BAD_PARAM;
    *desc = calloc(1, sizeof **desc);
    if (!*desc)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    (*desc)->swish_beta = 1.0;
    return CUDNN_STATUS_SUCCESS;
}

/* Sets mode, NaN option and coef (CLIPPED_RELU ceiling, ELU alpha); bad enumerants give
 * CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t desc,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double coef)
{
    if (!desc || !activation_mode_valid(mode) || !nan_option_valid(reluNanOpt))
        return CUDNN_STATUS_BAD_PARAM;
    desc->mode = mode;
    desc->nan_opt = reluNanOpt;
    desc->coef = coef;
    desc->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* Reads back what cudnnSetActivationDescriptor stored; an unset descriptor or a NULL output
 * gives CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnGetActivationDescriptor(const cudnnActivationDescriptor_t desc,
                                           cudnnActivationMode_t *mode,
                                           cudnnNanPropagation_t *reluNanOpt, double *coef)
{
    if (!desc || !desc->is_set || !mode || !reluNanOpt || !coef)
        return CUDNN_STATUS_BAD_PARAM;
    *mode = desc->mode;
    *reluNanOpt = desc->nan_opt;
    *coef = desc->coef;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the beta of CUDNN_ACTIVATION_SWISH (other modes ignore it). */
cudnnStatus_t cudnnSetActivationDescriptorSwishBeta(cudnnActivationDescriptor_t desc,
                                                    double swish_beta)
{
    if (!desc)
        return CUDNN_STATUS_BAD_PARAM;
    desc->swish_beta = swish_beta;
    return CUDNN_STATUS_SUCCESS;
}

/* Stores the swish beta of desc in *swish_beta. */
cudnnStatus_t cudnnGetActivationDescriptorSwishBeta(cudnnActivationDescriptor_t desc,
                                                    double *swish_beta)
{
    if (!desc || !swish_beta)
        return CUDNN_STATUS_BAD_PARAM;
    *swish_beta = desc->swish_beta;
    return CUDNN_STATUS_SUCCESS;
}

/* Frees an activation descriptor; NULL is accepted. */
cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t desc)
{
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

/* Allocates an unset op-tensor descriptor owned by the caller (cudnnDestroyOpTensorDescriptor). */
cudnnStatus_t cudnnCreateOpTensorDescriptor(cudnnOpTensorDescriptor_t *desc)
{
    if (!desc)
        return CUDNN_STATUS_BAD_PARAM;
    *desc = calloc(1, sizeof **desc);
    return *desc ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

/* Sets op, compute type and NaN option; bad op or NaN enumerants give CUDNN_STATUS_BAD_PARAM
 * (the compute type is checked by cudnnOpTensor against the tensors' types). */
cudnnStatus_t cudnnSetOpTensorDescriptor(cudnnOpTensorDescriptor_t desc, cudnnOpTensorOp_t op,
                                         cudnnDataType_t compute_type,
                                         cudnnNanPropagation_t nan_opt)
{
    if (!desc || !op_valid(op) || !nan_option_valid(nan_opt))
        return CUDNN_STATUS_BAD_PARAM;
    desc->op = op;
    desc->compute_type = compute_type;
    desc->nan_opt = nan_opt;
    desc->is_set = 1;
    return CUDNN_STATUS_SUCCESS;
}

/* Reads back what cudnnSetOpTensorDescriptor stored; an unset descriptor or a NULL output
 * gives CUDNN_STATUS_BAD_PARAM. */
cudnnStatus_t cudnnGetOpTensorDescriptor(const cudnnOpTensorDescriptor_t desc,
                                         cudnnOpTensorOp_t *op, cudnnDataType_t *compute_type,
                                         cudnnNanPropagation_t *nan_opt)
{
    if (!desc || !desc->is_set || !op || !compute_type || !nan_opt)
        return CUDNN_STATUS_BAD_PARAM;
    *op = desc->op;
    *compute_type = desc->compute_type;
    *nan_opt = desc->nan_opt;
    return CUDNN_STATUS_SUCCESS;
}

/* Frees an op-tensor descriptor; NULL is accepted. */
cudnnStatus_t cudnnDestroyOpTensorDescriptor(cudnnOpTensorDescriptor_t desc)
{
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}
