/* Helpers shared by the end-to-end cuDNN programs (header only, static functions):
 * status checks that exit with a message, seeded random data in any storage type,
 * tensor descriptors by layout, and a lookup of the shim's counters when it is preloaded.
 * These programs are ordinary cuDNN programs: they know nothing of the shim beyond the
 * optional dlsym of its public counters. */
#ifndef CONVBN_E2E_UTIL_H
#define CONVBN_E2E_UTIL_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "convbn/convbn.h"

#define CUDNN_OK(call)                                                                     \
    do {                                                                                   \
        cudnnStatus_t st_ = (call);                                                        \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                 \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,           \
                    cudnnGetErrorString(st_));                                             \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

#define CUDA_OK(call)                                                                      \
    do {                                                                                   \
        cudaError_t err_ = (call);                                                         \
        if (err_ != cudaSuccess) {                                                         \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)err_); \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

static uint64_t e2e_rng_state = 0x9e3779b97f4a7c15ull;

/* Returns a pseudo-random float in [lo, hi) (xorshift64*, seeded above). */
static inline float e2e_uniform(float lo, float hi)
{
    e2e_rng_state ^= e2e_rng_state >> 12;
    e2e_rng_state ^= e2e_rng_state << 25;
    e2e_rng_state ^= e2e_rng_state >> 27;
    uint64_t r = e2e_rng_state * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (float)(r >> 40) / (float)(1u << 24);
}

static inline size_t e2e_type_size(cudnnDataType_t t)
{
    return t == CUDNN_DATA_FLOAT ? 4 : 2;
}

/* Stores v in t's format at element i (bf16/half by truncation: test data need not round). */
static inline void e2e_store(void *base, cudnnDataType_t t, size_t i, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if (t == CUDNN_DATA_FLOAT) {
        ((float *)base)[i] = v;
    } else if (t == CUDNN_DATA_BFLOAT16) {
        ((uint16_t *)base)[i] = (uint16_t)(u >> 16);
    } else {
        uint32_t sign = (u >> 16) & 0x8000u;
        int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
        uint32_t mant = (u >> 13) & 0x3ffu;
        ((uint16_t *)base)[i] = (uint16_t)(exp <= 0 ? sign : exp >= 31 ? sign | 0x7bffu
                                                           : sign | ((uint32_t)exp << 10) | mant);
    }
}

/* cudnnBackendSetAttribute, exiting with status 2 when cuDNN refuses it (CUDNN_OK). */
static inline void e2e_bk_set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                              cudnnBackendAttributeType_t type, int64_t n, const void *values)
{
    CUDNN_OK(cudnnBackendSetAttribute(d, name, type, n, values));
}

/* Sets one descriptor-valued attribute (e2e_bk_set). */
static inline void e2e_bk_set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                                   cudnnBackendDescriptor_t value)
{
    e2e_bk_set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

/* Sets and finalizes backend convolution descriptor c: 2-d cross-correlation with float
 * compute, the same padding, stride and dilation on both axes. */
static inline void e2e_bk_conv2d(cudnnBackendDescriptor_t c, int64_t pad, int64_t stride,
                                 int64_t dilation)
{
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t spatial = 2, pads[2] = {pad, pad}, strides[2] = {stride, stride},
                  dilations[2] = {dilation, dilation};
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pads);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pads);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, strides);
    e2e_bk_set(c, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilations);
    CUDNN_OK(cudnnBackendFinalize(c));
}

/* Allocates device memory holding count random values in [lo, hi) stored as type t. */
static inline void *e2e_random_buffer(size_t count, cudnnDataType_t t, float lo, float hi)
{
    size_t bytes = count * e2e_type_size(t);
    void *host = malloc(bytes), *dev = NULL;
    if (!host)
        exit(2);
    for (size_t i = 0; i < count; i++)
        e2e_store(host, t, i, e2e_uniform(lo, hi));
    CUDA_OK(cudaMalloc(&dev, bytes));
    CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

/* Returns a 4-d tensor descriptor, packed NCHW or NHWC. */
static inline cudnnTensorDescriptor_t e2e_tensor(cudnnTensorFormat_t f, cudnnDataType_t t, int n,
                                                 int c, int h, int w)
{
    cudnnTensorDescriptor_t d;
    CUDNN_OK(cudnnCreateTensorDescriptor(&d));
    CUDNN_OK(cudnnSetTensor4dDescriptor(d, f, t, n, c, h, w));
    return d;
}

/* Returns the shim's counters function when the shim is preloaded, else NULL. */
static inline int (*e2e_shim_counters(void))(struct convbn_counters *, size_t)
{
    return (int (*)(struct convbn_counters *, size_t))dlsym(RTLD_DEFAULT, "convbn_get_counters");
}

/* What a program expects the shim's counters to say when it is preloaded; -1: unchecked. */
struct e2e_expectations {
    long pairs, fused;
};

/* Compares the shim's counters with *expect when the shim is preloaded; prints a line naming
 * program on a mismatch.  Returns 0 when they agree or no shim is there, 1 otherwise. */
static inline int e2e_check_expectations(const char *program, const struct e2e_expectations *expect)
{
    int (*counters)(struct convbn_counters *, size_t) = e2e_shim_counters();
    struct convbn_counters c;
    if (!counters)
        return 0;
    counters(&c, sizeof c);
    if ((expect->pairs >= 0 && c.pairs_seen != (uint64_t)expect->pairs) ||
        (expect->fused >= 0 && c.pairs_fused != (uint64_t)expect->fused)) {
        fprintf(stderr, "%s: shim saw %llu pairs and fused %llu, expected %ld and %ld\n", program,
                (unsigned long long)c.pairs_seen, (unsigned long long)c.pairs_fused,
                expect->pairs, expect->fused);
        return 1;
    }
    return 0;
}

#endif
