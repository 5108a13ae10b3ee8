/* What the shim remembers about one intercepted call: plain values only, so a record stays
 * valid after the program destroys or re-sets its descriptors (invariant 2). */
#ifndef CONVBN_RECORDS_H
#define CONVBN_RECORDS_H

#include <cudnn.h>

#include "convbn/geometry.h"

enum convbn_api { CONVBN_API_LEGACY, CONVBN_API_BACKEND };

enum convbn_conv_kind {
    CONVBN_CONV_PLAIN,    /* cudnnConvolutionForward */
    CONVBN_CONV_BIAS_ACT, /* cudnnConvolutionBiasActivationForward */
};

struct convbn_conv_call {
    enum convbn_api api;
    enum convbn_conv_kind kind;
    cudnnHandle_t handle;
    cudaStream_t stream;
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
    int algo;
    double alpha, beta;
    const void *x_ptr, *w_ptr;
    void *y_ptr;
    size_t w_bytes; /* convbn_filter_bytes(&w), computed once at the snapshot */
    /* Conv bias: bias-activation's bias, or a per-channel cudnnAddTensor onto y that the
     * planner absorbed (replayed after the conv when the pair is not fused). */
    struct convbn_tensor_geom bias;
    const void *bias_ptr; /* NULL: no bias */
    int bias_absorbed;
    /* Bias-activation only: */
    double alpha2;       /* weight of z */
    int activation;      /* cudnnActivationMode_t */
};

struct convbn_bn_call {
    enum convbn_api api;
    int inv_std;         /* var holds 1/sqrt(var + eps) (a backend NORM_FORWARD's inverse
                          * variance; eps then unused); 0: the variance, as legacy BN */
    cudnnHandle_t handle;
    cudaStream_t stream;
    int mode;            /* cudnnBatchNormMode_t */
    struct convbn_tensor_geom x, y, params;
    const void *x_ptr;
    void *y_ptr;
    const void *scale, *bias, *mean, *var;
    double eps;
    double alpha, beta;
    /* Backend BN: the program's plan and variant pack, valid during its cudnnBackendExecute
     * only (CONVBN_VERIFY reruns them); NULL for a legacy BN. */
    cudnnBackendDescriptor_t plan, pack;
};

/* Reads a cuDNN scaling factor (alpha/beta): double for DOUBLE data, float otherwise.
 * Returns 0 for a NULL pointer (the call itself will fail with BAD_PARAM). */
static inline double convbn_read_scalar(const void *p, int data_type)
{
    if (!p)
        return 0.0;
    return data_type == CUDNN_DATA_DOUBLE ? *(const double *)p : (double)*(const float *)p;
}

#endif
