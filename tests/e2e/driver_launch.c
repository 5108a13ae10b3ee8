/* A kernel launched through the CUDA driver API between a convolution and its inference BN
 * (DESIGN.md section 5: Triton's launchers call cuLaunchKernel through libcuda's PLT).  The
 * conv is deferred under CONVBN_MODE=fuse; cuLaunchKernel of a host "kernel" that copies y
 * to a probe must run it first, so the probe holds the conv result and the pair is not
 * fused.  Linked with the emulated libcuda.so.1 (tests/emu/cuda_driver.c), the only
 * program that is.  The probe is copied back with cuMemcpyDtoH_v2 after
 * cuStreamSynchronize; probe and z go to --out, which run.sh compares byte for byte with
 * the run without the shim.  The program checks the probe against a naive conv itself and,
 * under the shim, the counters (nothing seen or fused, one flush).
 *
 * usage: driver_launch [--out FILE]
 * Exit status 0 on success, 1 on a wrong probe or counters, 2 on a usage, cuDNN or CUDA
 * error. */
#include <math.h>

#include <cuda.h>

#include "e2e_util.h"
#include "emu_cudart.h"

#define BATCH 2
#define CHANNELS 8 /* conv input and output channels: x, y and z share one shape */
#define SIDE 6
#define ACT_COUNT ((size_t)BATCH * CHANNELS * SIDE * SIDE)
#define ACT_BYTES (ACT_COUNT * sizeof(float))
#define W_COUNT ((size_t)CHANNELS * CHANNELS * 9)

#define CU_OK(call)                                                                        \
    do {                                                                                   \
        CUresult cu_ = (call);                                                             \
        if (cu_ != CUDA_SUCCESS) {                                                         \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)cu_); \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

static char copy_symbol; /* the "kernel" copy(const float *src, float *dst, int n) */

/* Host body of copy: dst[i] = src[i]. */
static void copy_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid;
    (void)block;
    (void)stream;
    const float *src = *(const float **)args[0];
    float *dst = *(float **)args[1];
    int n = *(const int *)args[2];
    memcpy(dst, src, (size_t)n * sizeof *dst);
}

/* Launches copy(src, dst, ACT_COUNT) on stream through the driver API. */
static void driver_copy(const void *src, void *dst, cudaStream_t stream)
{
    static const size_t offsets[] = {0, 8, 16}, sizes[] = {8, 8, 4};
    int n = (int)ACT_COUNT;
    void *args[] = {&src, &dst, &n};
    CUDA_OK(emu_register_kernel(&copy_symbol, copy_host, 3, offsets, sizes));
    CU_OK(cuLaunchKernel((CUfunction)(void *)&copy_symbol, 1, 1, 1, 1, 1, 1, 0, (CUstream)stream,
                         args, NULL));
}

static void *device_copy_to_host(const void *dev, size_t bytes)
{
    void *host = malloc(bytes);
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
    return host;
}

/* Returns 1 when probe is the 3x3, pad 1 cross-correlation of x with w (naive loops, fp32
 * tolerance), else 0. */
static int probe_is_conv(const float *probe, const float *x, const float *w)
{
    for (int n = 0; n < BATCH; n++)
        for (int k = 0; k < CHANNELS; k++)
            for (int i = 0; i < SIDE; i++)
                for (int j = 0; j < SIDE; j++) {
                    double acc = 0;
                    for (int c = 0; c < CHANNELS; c++)
                        for (int r = 0; r < 3; r++)
                            for (int s = 0; s < 3; s++) {
                                int h = i + r - 1, v = j + s - 1;
                                if (h < 0 || h >= SIDE || v < 0 || v >= SIDE)
                                    continue;
                                acc += (double)x[((n * CHANNELS + c) * SIDE + h) * SIDE + v] *
                                       w[((k * CHANNELS + c) * 3 + r) * 3 + s];
                            }
                    float got = probe[((n * CHANNELS + k) * SIDE + i) * SIDE + j];
                    if (fabs(got - acc) > 1e-5 * (1 + fabs(acc))) {
                        fprintf(stderr, "probe[%d,%d,%d,%d] = %g, conv = %g\n", n, k, i, j,
                                got, acc);
                        return 0;
                    }
                }
    return 1;
}

/* Under the shim: nothing paired (the conv ran before its BN), nothing fused, one flush. */
static int check_counters(void)
{
    int (*get)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!get)
        return 0;
    if (get(&c, sizeof c) != 0)
        return 1;
    printf("seen %llu fused %llu flushes %llu\n", (unsigned long long)c.pairs_seen,
           (unsigned long long)c.pairs_fused, (unsigned long long)c.flushes);
    return c.pairs_seen == 0 && c.pairs_fused == 0 && c.flushes == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    if (argc == 3 && !strcmp(argv[1], "--out"))
        out_path = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: driver_launch [--out FILE]\n");
        return 2;
    }
    cudnnHandle_t handle;
    cudaStream_t stream;
    CUDNN_OK(cudnnCreate(&handle));
    CUDA_OK(cudaStreamCreate(&stream));
    CUDNN_OK(cudnnSetStream(handle, stream));

    cudnnTensorDescriptor_t act = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, BATCH, CHANNELS,
                                             SIDE, SIDE);
    cudnnTensorDescriptor_t params;
    cudnnFilterDescriptor_t filter;
    cudnnConvolutionDescriptor_t conv;
    CUDNN_OK(cudnnCreateFilterDescriptor(&filter));
    CUDNN_OK(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CHANNELS,
                                        CHANNELS, 3, 3));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_OK(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT));
    CUDNN_OK(cudnnCreateTensorDescriptor(&params));
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(params, act, CUDNN_BATCHNORM_SPATIAL));
    void *w = e2e_random_buffer(W_COUNT, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    void *gamma = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    void *beta = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    void *mean = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    void *var = e2e_random_buffer(CHANNELS, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    void *x = e2e_random_buffer(ACT_COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    void *y = NULL, *z = NULL, *probe = NULL;
    CUDA_OK(cudaMalloc(&y, ACT_BYTES));
    CUDA_OK(cudaMalloc(&z, ACT_BYTES));
    CUDA_OK(cudaMalloc(&probe, ACT_BYTES));
    CUDA_OK(cudaMemset(probe, 0, ACT_BYTES));

    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnConvolutionForward(handle, &one, act, x, filter, w, conv,
                                     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero,
                                     act, y));
    driver_copy(y, probe, stream);
    CUDNN_OK(cudnnBatchNormalizationForwardInference(handle, CUDNN_BATCHNORM_SPATIAL, &one,
                                                     &zero, act, y, act, z, params, gamma, beta,
                                                     mean, var, 1e-5));

    float *probe_host = malloc(ACT_BYTES);
    if (!probe_host)
        return 2;
    CU_OK(cuStreamSynchronize((CUstream)stream));
    CU_OK(cuMemcpyDtoH_v2(probe_host, (CUdeviceptr)(uintptr_t)probe, ACT_BYTES));
    float *z_host = device_copy_to_host(z, ACT_BYTES);
    float *x_host = device_copy_to_host(x, ACT_BYTES);
    float *w_host = device_copy_to_host(w, W_COUNT * sizeof(float));
    int status = probe_is_conv(probe_host, x_host, w_host) ? 0 : 1;
    if (out_path) {
        FILE *out = fopen(out_path, "wb");
        if (!out || fwrite(probe_host, 1, ACT_BYTES, out) != ACT_BYTES ||
            fwrite(z_host, 1, ACT_BYTES, out) != ACT_BYTES || fclose(out) != 0) {
            perror(out_path);
            return 2;
        }
    }
    free(probe_host);
    free(z_host);
    free(x_host);
    free(w_host);

    void *buffers[] = {w, gamma, beta, mean, var, x, y, z, probe};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        CUDA_OK(cudaFree(buffers[i]));
    CUDNN_OK(cudnnDestroyTensorDescriptor(act));
    CUDNN_OK(cudnnDestroyTensorDescriptor(params));
    CUDNN_OK(cudnnDestroyFilterDescriptor(filter));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(conv));
    CUDNN_OK(cudnnDestroy(handle));
    CUDA_OK(cudaStreamDestroy(stream));
    if (status != 0)
        return status;
    return check_counters();
}
