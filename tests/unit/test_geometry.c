/* Unit tests for src/geometry.c: snapshots through the real-getter pointers (replaced here
 * by fakes that play a cuDNN library), limits, size arithmetic and log names. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/geometry.h"
#include "convbn/real.h"
#include "support/run_suite.h"

static cudnnStatus_t fake_status;
static int fake_nb = 4, fake_dims[8] = {2, 3, 5, 7}, fake_strides[8] = {105, 35, 7, 1};

static cudnnStatus_t fake_get_tensor(const cudnnTensorDescriptor_t d, int req, cudnnDataType_t *type,
                                     int *nb, int *dims, int *strides)
{
    (void)d;
    *type = CUDNN_DATA_HALF;
    *nb = fake_nb;
    for (int i = 0; i < req && i < fake_nb; i++) {
        dims[i] = fake_dims[i];
        strides[i] = fake_strides[i];
    }
    return fake_status;
}

static cudnnStatus_t fake_get_filter(const cudnnFilterDescriptor_t d, int req, cudnnDataType_t *type,
                                     cudnnTensorFormat_t *format, int *nb, int *dims)
{
    (void)d;
    *type = CUDNN_DATA_BFLOAT16;
    *format = CUDNN_TENSOR_NHWC;
    *nb = fake_nb;
    for (int i = 0; i < req && i < fake_nb; i++)
        dims[i] = fake_dims[i];
    return fake_status;
}

static int fake_spatial = 2;

static cudnnStatus_t fake_get_conv(const cudnnConvolutionDescriptor_t d, int req, int *len, int *pad,
                                   int *stride, int *dil, cudnnConvolutionMode_t *mode,
                                   cudnnDataType_t *compute)
{
    (void)d;
    *len = fake_spatial;
    for (int i = 0; i < req && i < fake_spatial; i++) {
        pad[i] = i + 1;
        stride[i] = 2;
        dil[i] = 3;
    }
    *mode = CUDNN_CONVOLUTION;
    *compute = CUDNN_DATA_FLOAT;
    return fake_status;
}

static cudnnStatus_t fake_groups(cudnnConvolutionDescriptor_t d, int *g)
{
    (void)d;
    *g = 4;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t fake_math(cudnnConvolutionDescriptor_t d, cudnnMathType_t *m)
{
    (void)d;
    *m = CUDNN_TENSOR_OP_MATH;
    return CUDNN_STATUS_SUCCESS;
}

#define SOME_DESC(T) ((T)(void *)&fake_status)

static void setup(void)
{
    fake_status = CUDNN_STATUS_SUCCESS;
    fake_nb = 4;
    fake_spatial = 2;
    real_cudnnGetTensorNdDescriptor = fake_get_tensor;
    real_cudnnGetFilterNdDescriptor = fake_get_filter;
    real_cudnnGetConvolutionNdDescriptor = fake_get_conv;
    real_cudnnGetConvolutionGroupCount = fake_groups;
    real_cudnnGetConvolutionMathType = fake_math;
}

START_TEST(tensor_snapshot)
{
    struct convbn_tensor_geom t;
    ck_assert_int_eq(convbn_snapshot_tensor(SOME_DESC(cudnnTensorDescriptor_t), &t), 0);
    ck_assert_int_eq(t.type, CUDNN_DATA_HALF);
    ck_assert_int_eq(t.nb_dims, 4);
    ck_assert_int_eq(t.dims[3], 7);
    ck_assert_int_eq(t.strides[0], 105);
    ck_assert_int_eq(t.dims[4], 0); /* zeroed beyond nb_dims */
    ck_assert_uint_eq(convbn_tensor_elems(&t), 210);
    ck_assert_uint_eq(convbn_tensor_bytes(&t), 420);
    ck_assert_uint_eq(convbn_tensor_span_bytes(&t), 420);
    ck_assert_str_eq(convbn_layout_name(&t), "NCHW");
}
END_TEST

START_TEST(tensor_snapshot_failures)
{
    struct convbn_tensor_geom t;
    ck_assert_int_eq(convbn_snapshot_tensor(NULL, &t), -1);
    fake_status = CUDNN_STATUS_BAD_PARAM;
    ck_assert_int_eq(convbn_snapshot_tensor(SOME_DESC(cudnnTensorDescriptor_t), &t), -1);
    fake_status = CUDNN_STATUS_SUCCESS;
    fake_nb = 6; /* 4 spatial dims: beyond what the shim handles */
    ck_assert_int_eq(convbn_snapshot_tensor(SOME_DESC(cudnnTensorDescriptor_t), &t), -1);
}
END_TEST

START_TEST(filter_and_conv_snapshot)
{
    struct convbn_filter_geom f;
    struct convbn_conv_geom c;
    ck_assert_int_eq(convbn_snapshot_filter(SOME_DESC(cudnnFilterDescriptor_t), &f), 0);
    ck_assert_int_eq(f.type, CUDNN_DATA_BFLOAT16);
    ck_assert_int_eq(f.format, CUDNN_TENSOR_NHWC);
    ck_assert_uint_eq(convbn_filter_bytes(&f), 420);
    ck_assert_int_eq(convbn_snapshot_conv(SOME_DESC(cudnnConvolutionDescriptor_t), &c), 0);
    ck_assert_int_eq(c.nb_spatial, 2);
    ck_assert_int_eq(c.pad[1], 2);
    ck_assert_int_eq(c.dilation[0], 3);
    ck_assert_int_eq(c.groups, 4);
    ck_assert_int_eq(c.math_type, CUDNN_TENSOR_OP_MATH);
    ck_assert_int_eq(c.mode, CUDNN_CONVOLUTION);
    fake_spatial = 4;
    ck_assert_int_eq(convbn_snapshot_conv(SOME_DESC(cudnnConvolutionDescriptor_t), &c), -1);
}
END_TEST

static struct convbn_tensor_geom make(int nb, const int *dims, const int *strides)
{
    struct convbn_tensor_geom t;
    memset(&t, 0, sizeof t);
    t.type = CUDNN_DATA_FLOAT;
    t.nb_dims = nb;
    memcpy(t.dims, dims, sizeof(int) * (size_t)nb);
    memcpy(t.strides, strides, sizeof(int) * (size_t)nb);
    return t;
}

START_TEST(layouts_and_spans)
{
    int dims[] = {2, 3, 4, 5}, nhwc[] = {60, 1, 15, 3}, padded[] = {80, 20, 5, 1};
    struct convbn_tensor_geom a = make(4, dims, nhwc), b = make(4, dims, padded);
    ck_assert_str_eq(convbn_layout_name(&a), "NHWC");
    ck_assert_str_eq(convbn_layout_name(&b), "strided");
    ck_assert_uint_eq(convbn_tensor_span_bytes(&b), (80 + 2 * 20 + 3 * 5 + 4 + 1) * 4);
    ck_assert_uint_eq(convbn_tensor_bytes(&b), 120 * 4);
    int d5[] = {1, 2, 3, 4, 5}, s5[] = {120, 1, 40, 10, 2};
    struct convbn_tensor_geom c = make(5, d5, s5);
    ck_assert_str_eq(convbn_layout_name(&c), "NDHWC");
    ck_assert(!convbn_tensor_same(&a, &b));
    ck_assert(convbn_tensor_same(&a, &a));
}
END_TEST

START_TEST(formatting)
{
    char buf[32];
    int dims[] = {1, 64, 56, 56};
    ck_assert_str_eq(convbn_format_dims(buf, sizeof buf, dims, 4), "1x64x56x56");
    ck_assert_str_eq(convbn_format_list(buf, sizeof buf, dims, 2), "1,64");
    ck_assert_str_eq(convbn_format_dims(buf, 6, dims, 4), "1x64x");
    ck_assert_str_eq(convbn_type_name(CUDNN_DATA_BFLOAT16), "bfloat16");
    ck_assert_uint_eq(convbn_type_size(CUDNN_DATA_HALF), 2);
    ck_assert_uint_eq(convbn_type_size(-1), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("geometry");
    TCase *tc = tcase_create("snapshots");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, tensor_snapshot);
    tcase_add_test(tc, tensor_snapshot_failures);
    tcase_add_test(tc, filter_and_conv_snapshot);
    tcase_add_test(tc, layouts_and_spans);
    tcase_add_test(tc, formatting);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
