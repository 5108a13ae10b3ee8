/* The fold kernel (math in include/convbn/fold.h): one launch computes W' for every filter
 * element and b' for every output channel.  Built by the Makefile with nvcc -fatbin, without
 * fast math and without FMA contraction (--fmad=false, IEEE division and sqrtf), so that its
 * arithmetic is operation for operation that of the host twin in src/fold_host.c; change
 * both together.  Launched by src/fold_cuda.c through the driver API with the argument struct
 * by value.  Owns no state. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudnn.h>

#include "convbn/fold.h"

static __device__ float load(const void *p, int type, long long i)
{
    switch (type) {
    case CUDNN_DATA_HALF:
        return __half2float(static_cast<const __half *>(p)[i]);
    case CUDNN_DATA_BFLOAT16:
        return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    default:
        return static_cast<const float *>(p)[i];
    }
}

static __device__ void store(void *p, int type, long long i, float v)
{
    switch (type) {
    case CUDNN_DATA_HALF:
        static_cast<__half *>(p)[i] = __float2half_rn(v);
        break;
    case CUDNN_DATA_BFLOAT16:
        static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v);
        break;
    default:
        static_cast<float *>(p)[i] = v;
    }
}

/* s[k], as the host twin's channel_s computes it. */
static __device__ float channel_s(const struct convbn_fold_args &a, long long k)
{
    return a.inv_std ? a.gamma[k] * a.var[k] : a.gamma[k] / sqrtf(a.var[k] + a.eps);
}

/* Grid-stride over the k * per_k filter elements, then over the k channels for b'. */
extern "C" __global__ void convbn_fold_kernel(const struct convbn_fold_args a)
{
    long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long stride = (long long)gridDim.x * blockDim.x;
    long long items = a.k * a.per_k;
    for (long long i = first; i < items; i += stride) {
        float scale = a.bn_alpha * a.conv_alpha * channel_s(a, i / a.per_k);
        store(a.w_out, a.w_type, i, load(a.w, a.w_type, i) * scale);
    }
    for (long long k = first; k < a.k; k += stride) {
        float s = channel_s(a, k);
        float cb = a.conv_bias ? load(a.conv_bias, a.conv_bias_type, k) : 0.0f;
        store(a.b_out, a.b_type, k, a.bn_alpha * (a.beta[k] + s * (cb - a.mean[k])));
    }
}
