/* Check suite for the filter and convolution descriptors of the cuDNN emulation
 * (tests/emu/cudnn_conv_desc.c): set/get round trips, defaults, sizes, the status codes
 * of bad arguments, and the forward output dims against the formula written out here
 * (out = 1 + (in + 2 * pad - ((filter - 1) * dilation + 1)) / stride) on seeded random
 * shapes. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <cudnn.h>
#include "support/run_suite.h"

#define RANDOM_SHAPES 40

static cudnnFilterDescriptor_t filter;
static cudnnConvolutionDescriptor_t conv;
static cudnnTensorDescriptor_t input;

static void create_descriptors(void)
{
    ck_assert_int_eq(cudnnCreateFilterDescriptor(&filter), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnCreateTensorDescriptor(&input), CUDNN_STATUS_SUCCESS);
}

static void destroy_descriptors(void)
{
    cudnnDestroyFilterDescriptor(filter);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyTensorDescriptor(input);
}

START_TEST(filter_4d_round_trip)
{
    static const cudnnTensorFormat_t formats[2] = {CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC};
    for (int f = 0; f < 2; f++) {
        cudnnDataType_t type;
        cudnnTensorFormat_t format;
        int k, c, h, w;
        ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_HALF, formats[f], 8, 3, 5, 7),
                         CUDNN_STATUS_SUCCESS);
        ck_assert_int_eq(cudnnGetFilter4dDescriptor(filter, &type, &format, &k, &c, &h, &w),
                         CUDNN_STATUS_SUCCESS);
        ck_assert_int_eq(type, CUDNN_DATA_HALF);
        ck_assert_int_eq(format, formats[f]);
        ck_assert(k == 8 && c == 3 && h == 5 && w == 7);
    }
}
END_TEST

START_TEST(filter_nd_round_trip)
{
    const int dims[5] = {4, 2, 3, 5, 7};
    int got[5] = {0}, nb = 0;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, 5, dims),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetFilterNdDescriptor(filter, 5, &type, &format, &nb, got),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(nb, 5);
    ck_assert_int_eq(type, CUDNN_DATA_BFLOAT16);
    ck_assert_int_eq(format, CUDNN_TENSOR_NHWC);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(got[i], dims[i]);
    int few[2] = {0, 0};
    ck_assert_int_eq(cudnnGetFilterNdDescriptor(filter, 2, &type, &format, &nb, few),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(nb == 5 && few[0] == 4 && few[1] == 2);
    int k, c, h, w;
    ck_assert_int_eq(cudnnGetFilter4dDescriptor(filter, &type, &format, &k, &c, &h, &w),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetFilterNdDescriptor(filter, -1, &type, &format, &nb, got),
                     CUDNN_STATUS_BAD_PARAM);
}
END_TEST

START_TEST(filter_size_in_bytes)
{
    size_t size = 0;
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 8, 3, 5, 7),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetFilterSizeInBytes(filter, &size), CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(size, 8u * 3 * 5 * 7 * 4);
    const int dims[5] = {2, 3, 4, 5, 6};
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, 5, dims),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetFilterSizeInBytes(filter, &size), CUDNN_STATUS_SUCCESS);
    ck_assert_uint_eq(size, 2u * 3 * 4 * 5 * 6 * 2);
    ck_assert_int_eq(cudnnGetFilterSizeInBytes(filter, NULL), CUDNN_STATUS_BAD_PARAM);
}
END_TEST

START_TEST(filter_bad_arguments)
{
    cudnnFilterDescriptor_t fresh;
    size_t size;
    int dims[CUDNN_DIM_MAX + 1];
    for (int i = 0; i <= CUDNN_DIM_MAX; i++)
        dims[i] = 1;
    ck_assert_int_eq(cudnnCreateFilterDescriptor(NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(NULL, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 1, 1),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 0, 1, 1, 1),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, -3, 1),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, (cudnnDataType_t)99, CUDNN_TENSOR_NCHW, 1, 1, 1, 1),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, (cudnnTensorFormat_t)7, 1, 1, 1, 1),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_INT8, CUDNN_TENSOR_NCHW_VECT_C, 4, 4, 1, 1),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 2, dims),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                CUDNN_DIM_MAX + 1, dims),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnCreateFilterDescriptor(&fresh), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetFilterSizeInBytes(fresh, &size), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnDestroyFilterDescriptor(fresh), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnDestroyFilterDescriptor(NULL), CUDNN_STATUS_SUCCESS);
}
END_TEST

START_TEST(convolution_defaults)
{
    int groups = 0;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    cudnnReorderType_t reorder = CUDNN_NO_REORDER;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t type;
    ck_assert_int_eq(cudnnGetConvolutionGroupCount(conv, &groups), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(groups, 1);
    ck_assert_int_eq(cudnnGetConvolutionMathType(conv, &math), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(math, CUDNN_DEFAULT_MATH);
    ck_assert_int_eq(cudnnGetConvolutionReorderType(conv, &reorder), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(reorder, CUDNN_DEFAULT_REORDER);
    ck_assert_int_eq(cudnnGetConvolution2dDescriptor(conv, &pad_h, &pad_w, &u, &v, &dil_h, &dil_w,
                                                     &mode, &type),
                     CUDNN_STATUS_BAD_PARAM);
}
END_TEST

START_TEST(convolution_2d_round_trip)
{
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t type;
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 4), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 1, 2, 3, 4, 5, 6, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_HALF),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolution2dDescriptor(conv, &pad_h, &pad_w, &u, &v, &dil_h, &dil_w,
                                                     &mode, &type),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(pad_h == 1 && pad_w == 2 && u == 3 && v == 4 && dil_h == 5 && dil_w == 6);
    ck_assert_int_eq(mode, CUDNN_CONVOLUTION);
    ck_assert_int_eq(type, CUDNN_DATA_HALF);
    ck_assert_int_eq(cudnnGetConvolutionGroupCount(conv, &groups), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(groups, 4);
}
END_TEST

START_TEST(convolution_nd_round_trip)
{
    const int pad[3] = {0, 1, 2}, stride[3] = {1, 2, 3}, dilation[3] = {2, 1, 3};
    int got_pad[3], got_stride[3], got_dilation[3], length = 0;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t type;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 3, pad, stride, dilation,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionNdDescriptor(conv, 3, &length, got_pad, got_stride,
                                                     got_dilation, &mode, &type),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(length, 3);
    for (int i = 0; i < 3; i++)
        ck_assert(got_pad[i] == pad[i] && got_stride[i] == stride[i] &&
                  got_dilation[i] == dilation[i]);
    ck_assert_int_eq(mode, CUDNN_CROSS_CORRELATION);
    ck_assert_int_eq(type, CUDNN_DATA_FLOAT);
    got_pad[1] = -7;
    ck_assert_int_eq(cudnnGetConvolutionNdDescriptor(conv, 1, &length, got_pad, got_stride,
                                                     got_dilation, &mode, &type),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(length == 3 && got_pad[0] == 0 && got_pad[1] == -7);
    ck_assert_int_eq(cudnnGetConvolution2dDescriptor(conv, &pad_h, &pad_w, &u, &v, &dil_h, &dil_w,
                                                     &mode, &type),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionNdDescriptor(conv, CUDNN_DIM_MAX - 1, &length, got_pad,
                                                     got_stride, got_dilation, &mode, &type),
                     CUDNN_STATUS_NOT_SUPPORTED);
}
END_TEST

START_TEST(convolution_attributes)
{
    cudnnMathType_t math;
    cudnnReorderType_t reorder;
    int groups;
    ck_assert_int_eq(cudnnSetConvolutionMathType(conv, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionMathType(conv, &math), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(math, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
    ck_assert_int_eq(cudnnSetConvolutionMathType(conv, (cudnnMathType_t)9), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionReorderType(conv, CUDNN_NO_REORDER), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionReorderType(conv, &reorder), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(reorder, CUDNN_NO_REORDER);
    ck_assert_int_eq(cudnnSetConvolutionReorderType(conv, (cudnnReorderType_t)5),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 0), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(NULL, 2), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 3), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionGroupCount(conv, &groups), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(groups, 3);
    ck_assert_int_eq(cudnnGetConvolutionMathType(conv, NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionGroupCount(conv, NULL), CUDNN_STATUS_BAD_PARAM);
}
END_TEST

START_TEST(convolution_bad_arguments)
{
    const int ok[3] = {1, 1, 1}, negative[3] = {1, -1, 1}, zero[3] = {1, 0, 1};
    ck_assert_int_eq(cudnnCreateConvolutionDescriptor(NULL), CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(NULL, 0, 0, 1, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, -1, 0, 1, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 0, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 0, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1,
                                                     (cudnnConvolutionMode_t)2, CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     (cudnnDataType_t)99),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 3, negative, ok, ok, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 3, ok, zero, ok, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 3, ok, ok, zero, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 0, ok, ok, ok, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, 3, NULL, ok, ok, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, CUDNN_DIM_MAX - 1, ok, ok, ok,
                                                     CUDNN_CONVOLUTION, CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_NOT_SUPPORTED);
    ck_assert_int_eq(cudnnDestroyConvolutionDescriptor(NULL), CUDNN_STATUS_SUCCESS);
}
END_TEST

/* xorshift64*: the seeded generator of the random-shape tests. */
static uint32_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 2685821657736338717ull) >> 32);
}

static int random_int(uint64_t *state, int lo, int hi)
{
    return lo + (int)(next_random(state) % (uint32_t)(hi - lo + 1));
}

static int expected_output(int in, int filter_size, int pad, int stride, int dilation)
{
    return 1 + (in + 2 * pad - ((filter_size - 1) * dilation + 1)) / stride;
}

/* One random 2-d or 3-d convolution: x, w and conv set; the expected output dims in want. */
static int set_random_shape(uint64_t *rng, int want[5])
{
    int nb = random_int(rng, 4, 5), groups = random_int(rng, 1, 3);
    int x_dims[5], x_strides[5], w_dims[5], pad[3], stride[3], dilation[3];
    x_dims[0] = random_int(rng, 1, 4);
    w_dims[1] = random_int(rng, 1, 4);
    x_dims[1] = w_dims[1] * groups;
    w_dims[0] = groups * random_int(rng, 1, 3);
    want[0] = x_dims[0];
    want[1] = w_dims[0];
    for (int i = 2; i < nb; i++) {
        w_dims[i] = random_int(rng, 1, 4);
        pad[i - 2] = random_int(rng, 0, 2);
        stride[i - 2] = random_int(rng, 1, 3);
        dilation[i - 2] = random_int(rng, 1, 3);
        int extent = (w_dims[i] - 1) * dilation[i - 2] + 1;
        x_dims[i] = random_int(rng, extent > 2 * pad[i - 2] ? extent - 2 * pad[i - 2] : 1, extent + 9);
        want[i] = expected_output(x_dims[i], w_dims[i], pad[i - 2], stride[i - 2], dilation[i - 2]);
    }
    x_strides[nb - 1] = 1;
    for (int i = nb - 2; i >= 0; i--)
        x_strides[i] = x_strides[i + 1] * x_dims[i + 1];
    ck_assert_int_eq(cudnnSetTensorNdDescriptor(input, CUDNN_DATA_FLOAT, nb, x_dims, x_strides),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetFilterNdDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, nb, w_dims),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolutionNdDescriptor(conv, nb - 2, pad, stride, dilation,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, groups), CUDNN_STATUS_SUCCESS);
    return nb;
}

START_TEST(output_dims_random)
{
    uint64_t rng = 0x5eed0000u + (uint64_t)_i * 7919u;
    int want[5], got[5], n, c, h, w;
    int nb = set_random_shape(&rng, want);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(conv, input, filter, nb, got),
                     CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < nb; i++)
        ck_assert_msg(got[i] == want[i], "dim %d: %d, want %d", i, got[i], want[i]);
    cudnnStatus_t status2d = cudnnGetConvolution2dForwardOutputDim(conv, input, filter, &n, &c, &h, &w);
    if (nb == 4) {
        ck_assert_int_eq(status2d, CUDNN_STATUS_SUCCESS);
        ck_assert(n == want[0] && c == want[1] && h == want[2] && w == want[3]);
    } else {
        ck_assert_int_eq(status2d, CUDNN_STATUS_BAD_PARAM);
    }
}
END_TEST

/* x 1x4x5x5, w 6x2x3x3, 2 groups, pad 1: the valid starting point of the negative cases. */
static void set_known_shape(void)
{
    ck_assert_int_eq(cudnnSetTensor4dDescriptor(input, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 4, 5, 5),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 2, 3, 3),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 2), CUDNN_STATUS_SUCCESS);
}

START_TEST(output_dims_bad_arguments)
{
    int n, c, h, w, dims[5];
    cudnnConvolutionDescriptor_t unset;
    set_known_shape();
    ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(conv, input, filter, &n, &c, &h, &w),
                     CUDNN_STATUS_SUCCESS);
    ck_assert(n == 1 && c == 6 && h == 5 && w == 5);
    ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(conv, input, filter, &n, &c, &h, NULL),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(NULL, input, filter, &n, &c, &h, &w),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(conv, input, filter, 5, dims),
                     CUDNN_STATUS_BAD_PARAM);
    ck_assert_int_eq(cudnnCreateConvolutionDescriptor(&unset), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(unset, input, filter, 4, dims),
                     CUDNN_STATUS_BAD_PARAM);
    cudnnDestroyConvolutionDescriptor(unset);
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 1), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(conv, input, filter, 4, dims),
                     CUDNN_STATUS_BAD_PARAM); /* 4 input channels, filter C 2, 1 group */
    ck_assert_int_eq(cudnnSetConvolutionGroupCount(conv, 4), CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 1, 3, 3),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(conv, input, filter, 4, dims),
                     CUDNN_STATUS_BAD_PARAM); /* K = 6 not divisible by 4 groups */
    set_known_shape();
    ck_assert_int_eq(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 3, 1, CUDNN_CONVOLUTION,
                                                     CUDNN_DATA_FLOAT),
                     CUDNN_STATUS_SUCCESS);
    ck_assert_int_eq(cudnnGetConvolutionNdForwardOutputDim(conv, input, filter, 4, dims),
                     CUDNN_STATUS_BAD_PARAM); /* dilated filter height 7 > input 5 */
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("conv descriptors");
    TCase *filters = tcase_create("filter");
    TCase *convs = tcase_create("convolution");
    TCase *dims = tcase_create("output dims");
    TCase *all[3] = {filters, convs, dims};
    for (int i = 0; i < 3; i++) {
        tcase_add_checked_fixture(all[i], create_descriptors, destroy_descriptors);
        suite_add_tcase(suite, all[i]);
    }
    tcase_add_test(filters, filter_4d_round_trip);
    tcase_add_test(filters, filter_nd_round_trip);
    tcase_add_test(filters, filter_size_in_bytes);
    tcase_add_test(filters, filter_bad_arguments);
    tcase_add_test(convs, convolution_defaults);
    tcase_add_test(convs, convolution_2d_round_trip);
    tcase_add_test(convs, convolution_nd_round_trip);
    tcase_add_test(convs, convolution_attributes);
    tcase_add_test(convs, convolution_bad_arguments);
    tcase_add_loop_test(dims, output_dims_random, 0, RANDOM_SHAPES);
    tcase_add_test(dims, output_dims_bad_arguments);
    return run_suite(suite);
}
