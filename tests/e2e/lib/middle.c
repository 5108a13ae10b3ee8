/* A "framework extension module" for the RTLD_LOCAL test (DESIGN.md section 5a): it links
 * libcudnn itself, and the test program opens it with dlopen(RTLD_LOCAL), so libcudnn is
 * not in the global scope where dlsym(RTLD_NEXT) looks.  middle_run_pair() issues one
 * conv -> inference BN pair and returns 0 on success. */
#include "../e2e_util.h"

__attribute__((visibility("default"))) int middle_run_pair(void)
{
    cudnnHandle_t h;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnCreate(&h));
    cudnnTensorDescriptor_t xd = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 4, 8, 8);
    cudnnTensorDescriptor_t yd = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 8, 8, 8);
    cudnnTensorDescriptor_t pd = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 8, 1, 1);
    CUDNN_OK(cudnnCreateFilterDescriptor(&wd));
    CUDNN_OK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 8, 4, 3, 3));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&cd));
    CUDNN_OK(cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT));
    void *x = e2e_random_buffer(4 * 64, CUDNN_DATA_FLOAT, -1, 1);
    void *w = e2e_random_buffer(8 * 4 * 9, CUDNN_DATA_FLOAT, -1, 1);
    void *y = e2e_random_buffer(8 * 64, CUDNN_DATA_FLOAT, -1, 1);
    void *p = e2e_random_buffer(8, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    CUDNN_OK(cudnnConvolutionForward(h, &one, xd, x, wd, w, cd,
                                     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, yd, y));
    CUDNN_OK(cudnnBatchNormalizationForwardInference(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, yd,
                                                     y, yd, y, pd, p, p, p, p, 1e-5));
    void *bufs[] = {x, w, y, p};
    for (int i = 0; i < 4; i++)
        CUDA_OK(cudaFree(bufs[i]));
    CUDNN_OK(cudnnDestroyTensorDescriptor(xd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(yd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(pd));
    CUDNN_OK(cudnnDestroyFilterDescriptor(wd));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(cd));
    CUDNN_OK(cudnnDestroy(h));
    return 0;
}
