/* The BatchNorm fold (DESIGN.md section 1): per output channel k of a convolution with K output
 * channels and per_k filter elements per channel (filters packed KCRS or KRSC, k outermost;
 * grouped convs fold along the total output-channel axis), in fp32:
 *
 *     s[k]     = gamma[k] / sqrtf(var[k] + eps)          (gamma[k] * var[k] when inv_std)
 *     W'[k, e] = W[k, e] * (bn_alpha * conv_alpha * s[k])
 *     b'[k]    = bn_alpha * (beta[k] + s[k] * (conv_bias[k] - mean[k]))   (conv_bias 0 when NULL)
 *
 * Results are stored in the output's type with round-to-nearest-even.  One CUDA kernel
 * (src/fold_kernel.cu) and a host twin (src/fold_host.c) share this arithmetic operation for
 * operation (no contraction into FMA, IEEE sqrtf and division), so both give the same bits for
 * every result that is not a NaN.  This header is also compiled by nvcc: keep it C and C++. */
#ifndef CONVBN_FOLD_H
#define CONVBN_FOLD_H

#ifdef __cplusplus
extern "C" {
#endif

/* What one fold reads and writes.  Every pointer is device memory on the CUDA path and host
 * memory on the host twin; the caller owns all of them.  Types are cudnnDataType_t values:
 * CUDNN_DATA_FLOAT, CUDNN_DATA_HALF or CUDNN_DATA_BFLOAT16. */
struct convbn_fold_args {
    const float *gamma, *beta, *mean, *var; /* k floats each; var is 1/sqrt(var + eps) if inv_std */
    const void *conv_bias;                  /* k elements of conv_bias_type, or NULL for none */
    int conv_bias_type;                     /* ignored when conv_bias is NULL */
    const void *w;                          /* k * per_k elements of w_type */
    void *w_out;                            /* k * per_k elements of w_type; may equal w */
    int w_type;
    void *b_out;                            /* k elements of b_type */
    int b_type;
    int k;
    long long per_k;
    float eps, conv_alpha, bn_alpha;
    int inv_std;
};

/* Name of the kernel in the fatbin and the block size its launcher uses. */
#define CONVBN_FOLD_KERNEL_NAME "convbn_fold_kernel"
#define CONVBN_FOLD_BLOCK 256

#ifndef __CUDACC__
/* Host twin: computes W' and b' on the host with exactly the kernel's arithmetic (fp32, same
 * operation order, sqrtf, RNE stores).  Returns 0, or -1 for unsupported types / bad args
 * (nothing is written then). */
int convbn_fold_host(const struct convbn_fold_args *a);

/* Runs the fold on `stream` (a cudaStream_t or CUstream; NULL is the default stream): with the
 * CUDA kernel through the driver API when libcuda.so.1 is already loaded in the process and a
 * context is current, with the host twin when no libcuda is loaded (CPU emulation: device
 * memory is host memory).  Returns 0 on success (the CUDA path is asynchronous: the results
 * are ready when the stream reaches them), -1 on failure, also when libcuda is loaded but the
 * kernel cannot run (then device pointers must not be touched from the host); the caller then
 * falls back to the unfused calls. */
int convbn_fold_run(const struct convbn_fold_args *a, void *stream);

/* Returns a static string naming what convbn_fold_run would use now: "cuda", "host", or
 * "none" (libcuda is loaded but no context is current or the kernel is unavailable). */
const char *convbn_fold_backend(void);

/* Returns 0 when a describes a fold that both implementations support, -1 otherwise (NULL
 * pointers other than conv_bias, k < 1, per_k < 1, k * per_k overflowing, unknown types). */
int convbn_fold_check(const struct convbn_fold_args *a);

/* What the driver-API launcher (src/fold_cuda.c) can do in this thread right now. */
enum convbn_fold_cuda_state {
    CONVBN_FOLD_CUDA_ABSENT,   /* libcuda.so.1 is not loaded: memory is host memory */
    CONVBN_FOLD_CUDA_READY,    /* a context is current and the kernel is embedded */
    CONVBN_FOLD_CUDA_UNUSABLE, /* libcuda is loaded but the kernel cannot be launched */
};

/* Returns the launcher's state for the calling thread; never loads libcuda. */
enum convbn_fold_cuda_state convbn_fold_cuda_state(void);

/* Launches the kernel on stream in the calling thread's current context, loading the module
 * into that context on first use.  a must have passed convbn_fold_check.  Returns 0 when the
 * launch was queued, -1 otherwise. */
int convbn_fold_cuda_run(const struct convbn_fold_args *a, void *stream);

/* The fatbin of src/fold_kernel.cu, generated at build time into $(BUILD)/gen/fold_fatbin.c;
 * convbn_fold_fatbin_size is 0 when the shim was built without nvcc. */
extern const unsigned char convbn_fold_fatbin[];
extern const unsigned long convbn_fold_fatbin_size;
#endif

#ifdef __cplusplus
}
#endif

#endif
