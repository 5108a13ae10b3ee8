/* Unit tests for src/trace.c: the header and the line of every op kind written from
 * hand-built records (exact strings), buffer, stream and thread ids, string escaping and
 * numbers, call sites, the flush rules (whole lines only), the bounded tables, a failed open
 * and concurrent recording; backend convolutions (three directions, in forward roles) and a
 * backend BN with an inverse std described from call records. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convbn/trace.h"
#include "support/run_suite.h"

static char dir[64], path[128];
static char mem[16][8];
#define BUF(i) ((const void *)mem[i])
#define FAKE_PTR(i) ((const void *)(uintptr_t)(0x10000 + 16 * (uintptr_t)(i)))
#define STREAM(i) ((cudaStream_t)(uintptr_t)(0x7000 + (i)))

static const char header_line[] =
    "{\"convbn_trace\":1,\"cudnn_version\":\"9.19.0\",\"device\":\"Test GPU\",\"pid\":42,"
    "\"start_time\":\"2026-11-25T16:20:00Z\",\"source\":\"recorded\"}\n";

static void fixed_header(struct convbn_trace_header *h)
{
    h->cudnn_version = 91900;
    snprintf(h->device, sizeof h->device, "Test GPU");
    h->pid = 42;
    h->start = 1795623600; /* 2026-11-25T16:20:00Z */
}

static int site_calls;
static const char *site_text = "main+0x10 (prog)";

static char *fake_site(char *buf, size_t cap)
{
    site_calls++;
    snprintf(buf, cap, "%s", site_text);
    return buf;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/convbn-trace-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/trace.jsonl", dir);
    site_calls = 0;
    site_text = "main+0x10 (prog)";
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

/* Returns the file's contents (malloc'd, NUL-terminated); "" when it does not exist. */
static char *slurp(const char *name)
{
    FILE *f = fopen(name, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

static long count_lines(const char *text)
{
    long n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* Returns line n (0-based) of text without its newline (malloc'd). */
static char *line_of(const char *text, long n)
{
    for (; n > 0 && text; n--)
        text = strchr(text, '\n') ? strchr(text, '\n') + 1 : NULL;
    ck_assert_ptr_nonnull(text);
    const char *end = strchr(text, '\n');
    ck_assert_ptr_nonnull(end);
    return strndup(text, (size_t)(end - text));
}

static struct convbn_trace_tensor tensor(int type, int n, int c, int h, int w, const void *buf)
{
    struct convbn_trace_tensor t;
    memset(&t, 0, sizeof t);
    t.geom.type = type;
    t.geom.nb_dims = 4;
    int dims[4] = {n, c, h, w}, strides[4] = {c * h * w, h * w, w, 1};
    memcpy(t.geom.dims, dims, sizeof dims);
    memcpy(t.geom.strides, strides, sizeof strides);
    t.buf = buf;
    return t;
}

static struct convbn_trace_filter filter(int type, int format, int k, int c, int r, int s,
                                         const void *buf)
{
    struct convbn_trace_filter f;
    memset(&f, 0, sizeof f);
    f.geom.type = type;
    f.geom.format = format;
    f.geom.nb_dims = 4;
    int dims[4] = {k, c, r, s};
    memcpy(f.geom.dims, dims, sizeof dims);
    f.buf = buf;
    return f;
}

static struct convbn_conv_geom conv2d(int pad, int stride, int dilation, int groups, int mode,
                                      int math)
{
    struct convbn_conv_geom c;
    memset(&c, 0, sizeof c);
    c.nb_spatial = 2;
    for (int i = 0; i < 2; i++) {
        c.pad[i] = pad;
        c.stride[i] = stride;
        c.dilation[i] = dilation;
    }
    c.groups = groups;
    c.mode = mode;
    c.compute_type = CUDNN_DATA_FLOAT;
    c.math_type = math;
    return c;
}

/* Records op alone in a fresh trace and returns its line (malloc'd). */
static char *line_for(const struct convbn_trace_op *op)
{
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, fake_site);
    ck_assert_int_eq(convbn_tracer_record(&t, op), 0);
    convbn_tracer_stop(&t);
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 2);
    char *line = line_of(text, 1);
    free(text);
    unlink(path);
    return line;
}

#define ck_assert_trace_line(op, expected)                                                              \
    do {                                                                                       \
        char *got_ = line_for(op);                                                             \
        ck_assert_str_eq(got_, expected);                                                      \
        free(got_);                                                                            \
    } while (0)

START_TEST(header_line_format)
{
    struct convbn_trace_header h;
    char buf[1024];
    fixed_header(&h);
    ck_assert_uint_eq(convbn_trace_format_header(buf, sizeof buf, &h), strlen(header_line));
    ck_assert_str_eq(buf, header_line);
    h.cudnn_version = 8907;
    h.device[0] = '\0';
    h.start = 0;
    convbn_trace_format_header(buf, sizeof buf, &h);
    ck_assert_str_eq(buf, "{\"convbn_trace\":1,\"cudnn_version\":\"8.9.7\",\"device\":\"unknown\","
                          "\"pid\":42,\"start_time\":\"1970-01-01T00:00:00Z\","
                          "\"source\":\"recorded\"}\n");
    h.cudnn_version = 0;
    convbn_trace_format_header(buf, sizeof buf, &h);
    ck_assert_ptr_nonnull(strstr(buf, "\"cudnn_version\":\"unknown\""));
    ck_assert_uint_eq(convbn_trace_format_header(buf, 40, &h), 0);
}
END_TEST

#define X_1_3_8_8 "{\"type\":\"float\",\"dims\":[1,3,8,8],\"strides\":[192,64,8,1],\"buf\":0}"
#define W_4_3_3_3 "{\"type\":\"float\",\"format\":\"NCHW\",\"dims\":[4,3,3,3],\"buf\":1}"
#define Y_1_4_8_8(id) "{\"type\":\"float\",\"dims\":[1,4,8,8],\"strides\":[256,64,8,1],\"buf\":" id "}"
#define CONV_3X3 "{\"pad\":[1,1],\"stride\":[1,1],\"dilation\":[1,1],\"groups\":1," \
                 "\"mode\":\"cross_correlation\",\"compute\":\"float\",\"math\":\"default\"}"

START_TEST(conv_fwd_line)
{
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_CONV_FWD, .name = "cudnnConvolutionForward",
        .x = tensor(CUDNN_DATA_FLOAT, 1, 3, 8, 8, BUF(0)),
        .w = filter(CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3, BUF(1)),
        .y = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .conv = conv2d(1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DEFAULT_MATH), .algo = 1,
        .alpha = 1, .beta = 0};
    ck_assert_trace_line(&op, "{\"seq\":0,\"op\":\"conv_fwd\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                     "\"name\":\"cudnnConvolutionForward\",\"x\":" X_1_3_8_8 ",\"w\":" W_4_3_3_3
                     ",\"y\":" Y_1_4_8_8("2") ",\"conv\":" CONV_3X3
                     ",\"algo\":1,\"alpha\":1,\"beta\":0}");
}
END_TEST

START_TEST(conv_bias_act_line)
{
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_CONV_BIAS_ACT, .name = "cudnnConvolutionBiasActivationForward",
        .stream = STREAM(1), .caller = BUF(9),
        .x = tensor(CUDNN_DATA_HALF, 2, 8, 4, 4, BUF(0)),
        .w = filter(CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, 16, 2, 3, 3, BUF(1)),
        .y = tensor(CUDNN_DATA_HALF, 2, 16, 2, 2, BUF(2)),
        .z = tensor(CUDNN_DATA_HALF, 2, 16, 2, 2, BUF(2)),
        .bias = tensor(CUDNN_DATA_HALF, 1, 16, 1, 1, BUF(3)),
        .conv = conv2d(0, 2, 1, 4, CUDNN_CONVOLUTION, CUDNN_TENSOR_OP_MATH), .algo = 6,
        .alpha = 1, .alpha2 = 0.5, .activation = CUDNN_ACTIVATION_RELU};
    ck_assert_trace_line(&op,
                "{\"seq\":0,\"op\":\"conv_bias_act\",\"api\":\"legacy\",\"stream\":1,\"thread\":0,"
                "\"name\":\"cudnnConvolutionBiasActivationForward\",\"site\":\"main+0x10 (prog)\","
                "\"x\":{\"type\":\"half\",\"dims\":[2,8,4,4],\"strides\":[128,16,4,1],\"buf\":0},"
                "\"w\":{\"type\":\"half\",\"format\":\"NHWC\",\"dims\":[16,2,3,3],\"buf\":1},"
                "\"y\":{\"type\":\"half\",\"dims\":[2,16,2,2],\"strides\":[64,4,2,1],\"buf\":2},"
                "\"conv\":{\"pad\":[0,0],\"stride\":[2,2],\"dilation\":[1,1],\"groups\":4,"
                "\"mode\":\"convolution\",\"compute\":\"float\",\"math\":\"tensor_op\"},"
                "\"algo\":6,\"alpha\":1,"
                "\"z\":{\"type\":\"half\",\"dims\":[2,16,2,2],\"strides\":[64,4,2,1],\"buf\":2},"
                "\"alpha2\":0.5,"
                "\"bias\":{\"type\":\"half\",\"dims\":[1,16,1,1],\"strides\":[16,1,1,1],\"buf\":3},"
                "\"activation\":\"relu\"}");
}
END_TEST

START_TEST(conv_backward_lines)
{
    struct convbn_trace_op data = {
        .kind = CONVBN_TRACE_CONV_BWD_DATA, .name = "cudnnConvolutionBackwardData",
        .w = filter(CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3, BUF(1)),
        .dy = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .dx = tensor(CUDNN_DATA_FLOAT, 1, 3, 8, 8, BUF(0)),
        .conv = conv2d(1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DEFAULT_MATH), .algo = 0,
        .alpha = 1, .beta = 1};
    ck_assert_trace_line(&data,
                "{\"seq\":0,\"op\":\"conv_bwd_data\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnConvolutionBackwardData\","
                "\"w\":{\"type\":\"float\",\"format\":\"NCHW\",\"dims\":[4,3,3,3],\"buf\":0},"
                "\"dy\":" Y_1_4_8_8("1") ","
                "\"dx\":{\"type\":\"float\",\"dims\":[1,3,8,8],\"strides\":[192,64,8,1],\"buf\":2},"
                "\"conv\":" CONV_3X3 ",\"algo\":0,\"alpha\":1,\"beta\":1}");
    struct convbn_trace_op filt = {
        .kind = CONVBN_TRACE_CONV_BWD_FILTER, .name = "cudnnConvolutionBackwardFilter",
        .x = tensor(CUDNN_DATA_FLOAT, 1, 3, 8, 8, BUF(0)),
        .dy = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .w = filter(CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3, BUF(1)),
        .conv = conv2d(1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_FMA_MATH), .algo = 3,
        .alpha = 1, .beta = 0};
    ck_assert_trace_line(&filt,
                "{\"seq\":0,\"op\":\"conv_bwd_filter\",\"api\":\"legacy\",\"stream\":0,"
                "\"thread\":0,\"name\":\"cudnnConvolutionBackwardFilter\",\"x\":" X_1_3_8_8 ","
                "\"dy\":" Y_1_4_8_8("1") ","
                "\"dw\":{\"type\":\"float\",\"format\":\"NCHW\",\"dims\":[4,3,3,3],\"buf\":2},"
                "\"conv\":{\"pad\":[1,1],\"stride\":[1,1],\"dilation\":[1,1],\"groups\":1,"
                "\"mode\":\"cross_correlation\",\"compute\":\"float\",\"math\":\"fma\"},"
                "\"algo\":3,\"alpha\":1,\"beta\":0}");
}
END_TEST

#define BN_X "{\"type\":\"float\",\"dims\":[1,4,8,8],\"strides\":[256,64,8,1],\"buf\":0}"
#define BN_Y "{\"type\":\"float\",\"dims\":[1,4,8,8],\"strides\":[256,64,8,1],\"buf\":1}"
#define BN_P "{\"type\":\"float\",\"dims\":[1,4,1,1],\"strides\":[4,1,1,1],\"buf\":null}"

static struct convbn_trace_op bn_op(enum convbn_trace_kind kind, const char *name)
{
    struct convbn_trace_op op = {
        .kind = kind, .name = name, .mode = CUDNN_BATCHNORM_SPATIAL,
        .x = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(0)),
        .y = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(1)),
        .params = tensor(CUDNN_DATA_FLOAT, 1, 4, 1, 1, NULL), .scale = BUF(4),
        .bn_bias = BUF(5), .mean = BUF(6), .var = BUF(7), .eps = 1e-5, .alpha = 1, .beta = 0};
    return op;
}

START_TEST(bn_inference_and_training_lines)
{
    struct convbn_trace_op inf = bn_op(CONVBN_TRACE_BN_INFERENCE,
                                       "cudnnBatchNormalizationForwardInference");
    ck_assert_trace_line(&inf,
                "{\"seq\":0,\"op\":\"bn_inference\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnBatchNormalizationForwardInference\",\"mode\":\"spatial\","
                "\"x\":" BN_X ",\"y\":" BN_Y ",\"params\":" BN_P ","
                "\"scale\":2,\"bias\":3,\"mean\":4,\"var\":5,\"eps\":1e-05,\"alpha\":1,\"beta\":0}");
    struct convbn_trace_op train = bn_op(CONVBN_TRACE_BN_TRAINING,
                                         "cudnnBatchNormalizationForwardTraining");
    train.mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    train.factor = 0.1;
    train.saved_mean = BUF(8);
    ck_assert_trace_line(&train,
                "{\"seq\":0,\"op\":\"bn_training\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnBatchNormalizationForwardTraining\","
                "\"mode\":\"spatial_persistent\",\"x\":" BN_X ",\"y\":" BN_Y ",\"params\":" BN_P ","
                "\"scale\":2,\"bias\":3,\"mean\":4,\"var\":5,\"eps\":1e-05,\"alpha\":1,\"beta\":0,"
                "\"factor\":0.1,\"saved_mean\":6,\"saved_inv_var\":null}");
}
END_TEST

/* A backend convolution in forward roles: x 1x3x8x8, w 4x3x3x3, y 1x4x8x8, algo -1. */
static struct convbn_conv_call backend_conv(void)
{
    struct convbn_conv_call c = {
        .api = CONVBN_API_BACKEND, .stream = STREAM(1), .algo = -1, .alpha = 1, .beta = 0.5,
        .x = tensor(CUDNN_DATA_FLOAT, 1, 3, 8, 8, NULL).geom,
        .w = filter(CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3, NULL).geom,
        .y = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, NULL).geom,
        .conv = conv2d(1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DEFAULT_MATH),
        .x_ptr = BUF(0), .w_ptr = BUF(1), .y_ptr = (void *)BUF(2)};
    return c;
}

#define BACKEND_COMMON(op) "{\"seq\":0,\"op\":\"" op "\",\"api\":\"backend\",\"stream\":1," \
                           "\"thread\":0,\"name\":\"cudnnBackendExecute\","
#define BACKEND_TAIL ",\"conv\":" CONV_3X3 ",\"algo\":-1,\"alpha\":1,\"beta\":0.5}"

START_TEST(backend_conv_lines)
{
    struct convbn_conv_call c = backend_conv();
    struct convbn_trace_op op;
    convbn_trace_describe_conv(&c, CONVBN_TRACE_CONV_FWD, "cudnnBackendExecute", &op);
    ck_assert_ptr_null(op.caller);
    ck_assert_trace_line(&op, BACKEND_COMMON("conv_fwd") "\"x\":" X_1_3_8_8 ",\"w\":" W_4_3_3_3
                              ",\"y\":" Y_1_4_8_8("2") BACKEND_TAIL);
    convbn_trace_describe_conv(&c, CONVBN_TRACE_CONV_BWD_DATA, "cudnnBackendExecute", &op);
    ck_assert_trace_line(&op, BACKEND_COMMON("conv_bwd_data")
                         "\"w\":{\"type\":\"float\",\"format\":\"NCHW\",\"dims\":[4,3,3,3],"
                         "\"buf\":0},\"dy\":" Y_1_4_8_8("1") ",\"dx\":{\"type\":\"float\","
                         "\"dims\":[1,3,8,8],\"strides\":[192,64,8,1],\"buf\":2}" BACKEND_TAIL);
    convbn_trace_describe_conv(&c, CONVBN_TRACE_CONV_BWD_FILTER, "cudnnBackendExecute", &op);
    ck_assert_trace_line(&op, BACKEND_COMMON("conv_bwd_filter") "\"x\":" X_1_3_8_8
                         ",\"dy\":" Y_1_4_8_8("1") ",\"dw\":{\"type\":\"float\","
                         "\"format\":\"NCHW\",\"dims\":[4,3,3,3],\"buf\":2}" BACKEND_TAIL);
    convbn_trace_describe_conv(&c, CONVBN_TRACE_OPAQUE, "cudnnBackendExecute", &op);
    ck_assert_trace_line(&op, "{\"seq\":0,\"op\":\"opaque\",\"api\":\"backend\",\"stream\":1,"
                              "\"thread\":0,\"name\":\"cudnnBackendExecute\"}");
}
END_TEST

/* A backend BN (inverse std, eps 0) says "var_form":"inv_std"; a legacy one says nothing. */
START_TEST(backend_bn_line)
{
    struct convbn_bn_call bn = {
        .api = CONVBN_API_BACKEND, .inv_std = 1, .mode = CUDNN_BATCHNORM_SPATIAL,
        .x = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, NULL).geom,
        .y = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, NULL).geom,
        .params = tensor(CUDNN_DATA_FLOAT, 1, 4, 1, 1, NULL).geom, .x_ptr = BUF(0),
        .y_ptr = (void *)BUF(1), .scale = BUF(4), .bias = BUF(5), .mean = BUF(6),
        .var = BUF(7), .alpha = 1};
    struct convbn_trace_op op;
    convbn_trace_describe_bn(&bn, "cudnnBackendExecute", &op);
    ck_assert_trace_line(&op,
                "{\"seq\":0,\"op\":\"bn_inference\",\"api\":\"backend\",\"stream\":0,"
                "\"thread\":0,\"name\":\"cudnnBackendExecute\",\"mode\":\"spatial\","
                "\"x\":" BN_X ",\"y\":" BN_Y ",\"params\":" BN_P ","
                "\"scale\":2,\"bias\":3,\"mean\":4,\"var\":5,\"var_form\":\"inv_std\","
                "\"eps\":0,\"alpha\":1,\"beta\":0}");
    bn.inv_std = 0;
    bn.api = CONVBN_API_LEGACY;
    bn.eps = 1e-5;
    convbn_trace_describe_bn(&bn, "cudnnBatchNormalizationForwardInference", &op);
    char *line = line_for(&op);
    ck_assert_ptr_null(strstr(line, "var_form"));
    ck_assert_ptr_nonnull(strstr(line, "\"var\":5,\"eps\":1e-05,"));
    free(line);
}
END_TEST

START_TEST(bn_backward_line)
{
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_BN_BACKWARD, .name = "cudnnBatchNormalizationBackward",
        .mode = CUDNN_BATCHNORM_PER_ACTIVATION, .x = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(0)),
        .dy = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(1)),
        .dx = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(1)),
        .params = tensor(CUDNN_DATA_FLOAT, 1, 4, 1, 1, NULL), .scale = BUF(4),
        .dscale = BUF(5), .dbias = BUF(6), .saved_mean = BUF(7), .saved_inv_var = BUF(8),
        .eps = 1e-3, .alpha = 1, .beta = 0, .alpha_param = 1, .beta_param = 1};
    ck_assert_trace_line(&op,
                "{\"seq\":0,\"op\":\"bn_backward\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnBatchNormalizationBackward\",\"mode\":\"per_activation\","
                "\"x\":" BN_X ",\"dy\":" BN_Y ",\"dx\":" BN_Y ",\"params\":" BN_P ","
                "\"scale\":2,\"dscale\":3,\"dbias\":4,\"saved_mean\":5,\"saved_inv_var\":6,"
                "\"eps\":0.001,\"alpha\":1,\"beta\":0,\"alpha_param\":1,\"beta_param\":1}");
}
END_TEST

START_TEST(tensor_op_lines)
{
    struct convbn_trace_op add = {
        .kind = CONVBN_TRACE_ADD_TENSOR, .name = "cudnnAddTensor",
        .a = tensor(CUDNN_DATA_FLOAT, 1, 4, 1, 1, BUF(3)),
        .c = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)), .alpha = 1, .beta = 1};
    ck_assert_trace_line(&add,
                "{\"seq\":0,\"op\":\"add_tensor\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnAddTensor\","
                "\"a\":{\"type\":\"float\",\"dims\":[1,4,1,1],\"strides\":[4,1,1,1],\"buf\":0},"
                "\"c\":" Y_1_4_8_8("1") ",\"alpha\":1,\"beta\":1}");
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_OP_TENSOR, .name = "cudnnOpTensor", .mode = CUDNN_OP_TENSOR_MUL,
        .compute = CUDNN_DATA_FLOAT, .a = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .b = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(3)),
        .c = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)), .alpha = 2, .alpha2 = -1, .beta = 0};
    ck_assert_trace_line(&op,
                "{\"seq\":0,\"op\":\"op_tensor\",\"api\":\"legacy\",\"stream\":0,\"thread\":0,"
                "\"name\":\"cudnnOpTensor\",\"tensor_op\":\"mul\",\"compute\":\"float\","
                "\"a\":" Y_1_4_8_8("0") ",\"b\":" Y_1_4_8_8("1") ",\"c\":" Y_1_4_8_8("0") ","
                "\"alpha1\":2,\"alpha2\":-1,\"beta\":0}");
}
END_TEST

START_TEST(opaque_line)
{
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .api = CONVBN_API_BACKEND,
                                 .name = "cudnnBackendExecute", .stream = cudaStreamLegacy,
                                 .x = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2))};
    ck_assert_trace_line(&op, "{\"seq\":0,\"op\":\"opaque\",\"api\":\"backend\",\"stream\":0,\"thread\":0,"
                     "\"name\":\"cudnnBackendExecute\"}");
}
END_TEST

START_TEST(unknown_enum_values_named_unknown)
{
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_OP_TENSOR, .name = "cudnnOpTensor", .mode = 99, .compute = 77,
        .a = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .b = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2)),
        .c = tensor(CUDNN_DATA_FLOAT, 1, 4, 8, 8, BUF(2))};
    char *line = line_for(&op);
    ck_assert_ptr_nonnull(strstr(line, "\"tensor_op\":\"unknown\",\"compute\":\"other\""));
    free(line);
}
END_TEST

/* Writes ops whose a and c are given, into one trace; returns the whole file. */
static char *trace_of_adds(const void *const *ptrs, int n_ops)
{
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, NULL);
    for (int i = 0; i < n_ops; i++) {
        struct convbn_trace_op op = {.kind = CONVBN_TRACE_ADD_TENSOR, .name = "cudnnAddTensor",
                                     .a = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, ptrs[2 * i]),
                                     .c = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, ptrs[2 * i + 1])};
        ck_assert_int_eq(convbn_tracer_record(&t, &op), 0);
    }
    convbn_tracer_stop(&t);
    return slurp(path);
}

START_TEST(buffer_ids_follow_first_use)
{
    const void *ptrs[] = {BUF(5), BUF(5), NULL, BUF(7), BUF(7), BUF(5), BUF(1), NULL};
    char *text = trace_of_adds(ptrs, 4);
    static const char *const want[][2] = {
        {"\"buf\":0}", "\"buf\":0}"}, {"\"buf\":null}", "\"buf\":1}"},
        {"\"buf\":1}", "\"buf\":0}"}, {"\"buf\":2}", "\"buf\":null}"}};
    for (long i = 0; i < 4; i++) {
        char *line = line_of(text, i + 1), expected[128];
        snprintf(expected, sizeof expected, "%s,\"c\":{", want[i][0]);
        ck_assert_msg(strstr(line, expected), "line %ld: %s lacks a %s", i, line, want[i][0]);
        snprintf(expected, sizeof expected, "%s,\"alpha\"", want[i][1]);
        ck_assert_msg(strstr(line, expected), "line %ld: %s lacks c %s", i, line, want[i][1]);
        free(line);
    }
    free(text);
}
END_TEST

START_TEST(stream_and_thread_ids)
{
    cudaStream_t streams[] = {STREAM(5), NULL, cudaStreamLegacy, STREAM(3), STREAM(5)};
    const long want[] = {1, 0, 0, 2, 1};
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, NULL);
    for (int i = 0; i < 5; i++) {
        struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnSoftmaxForward",
                                     .stream = streams[i]};
        ck_assert_int_eq(convbn_tracer_record(&t, &op), 0);
    }
    convbn_tracer_stop(&t);
    char *text = slurp(path);
    for (int i = 0; i < 5; i++) {
        char *line = line_of(text, i + 1), expected[64];
        snprintf(expected, sizeof expected, "\"stream\":%ld,\"thread\":0,", want[i]);
        ck_assert_msg(strstr(line, expected), "%s lacks %s", line, expected);
        free(line);
    }
    free(text);
}
END_TEST

START_TEST(strings_escaped)
{
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE,
                                 .name = "q\"b\\s\n\t\x01 \xc3\xa9 \xe2\x82\xac \xff \xc3 \xed\xa0\x80",
                                 .caller = BUF(1)};
    site_text = "f<\"x\">+0x1 (lib \\ \x7f)";
    char *line = line_for(&op);
    ck_assert_str_eq(line, "{\"seq\":0,\"op\":\"opaque\",\"api\":\"legacy\",\"stream\":0,"
                           "\"thread\":0,\"name\":\"q\\\"b\\\\s\\u000a\\u0009\\u0001 \xc3\xa9 "
                           "\xe2\x82\xac \\ufffd \\ufffd \\ufffd\\ufffd\\ufffd\","
                           "\"site\":\"f<\\\"x\\\">+0x1 (lib \\\\ \x7f)\"}");
    free(line);
}
END_TEST

START_TEST(numbers_round_trip)
{
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_ADD_TENSOR, .name = "cudnnAddTensor",
                                 .a = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, BUF(0)),
                                 .c = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, BUF(1)),
                                 .alpha = (double)0.1f, .beta = NAN};
    char *line = line_for(&op);
    ck_assert_ptr_nonnull(strstr(line, "\"alpha\":0.10000000149011612,\"beta\":null}"));
    free(line);
    op.alpha = 1e300;
    op.beta = -2.5e-7;
    line = line_for(&op);
    ck_assert_ptr_nonnull(strstr(line, "\"alpha\":1e+300,\"beta\":-2.5e-07}"));
    free(line);
}
END_TEST

START_TEST(sites_named_once_per_caller)
{
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, fake_site);
    const void *callers[] = {BUF(1), BUF(2), BUF(1), NULL};
    for (int i = 0; i < 4; i++) {
        struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnLRNCrossChannelForward",
                                     .caller = callers[i]};
        ck_assert_int_eq(convbn_tracer_record(&t, &op), 0);
    }
    convbn_tracer_stop(&t);
    ck_assert_int_eq(site_calls, 2);
    char *text = slurp(path), *last = line_of(text, 4), *first = line_of(text, 1);
    ck_assert_ptr_null(strstr(last, "\"site\""));
    ck_assert_ptr_nonnull(strstr(first, "\"site\":\"main+0x10 (prog)\""));
    free(first);
    free(last);
    free(text);
}
END_TEST

static off_t file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

START_TEST(nothing_written_before_the_first_op)
{
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, NULL);
    ck_assert_int_eq(convbn_tracer_flush(&t), 0);
    convbn_tracer_stop(&t);
    ck_assert_int_eq(file_size(), -1);
}
END_TEST

START_TEST(flushes_every_256_ops)
{
    struct convbn_tracer t;
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnPoolingForward"};
    convbn_tracer_init(&t, path, fixed_header, NULL);
    for (int i = 1; i <= 2 * CONVBN_TRACE_FLUSH_OPS + 1; i++) {
        ck_assert_int_eq(convbn_tracer_record(&t, &op), 0);
        char *text = slurp(path);
        long flushed = i / CONVBN_TRACE_FLUSH_OPS * CONVBN_TRACE_FLUSH_OPS;
        ck_assert_int_eq(count_lines(text), 1 + flushed);
        ck_assert_int_eq(strncmp(text, header_line, strlen(header_line)), 0);
        free(text);
    }
    convbn_tracer_stop(&t);
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 2 + 2 * CONVBN_TRACE_FLUSH_OPS);
    free(text);
}
END_TEST

START_TEST(flushes_whole_lines_past_64k)
{
    static char long_site[600];
    memset(long_site, 's', sizeof long_site - 1);
    site_text = long_site;
    struct convbn_tracer t;
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnPoolingForward",
                                 .caller = BUF(1)};
    convbn_tracer_init(&t, path, fixed_header, fake_site);
    off_t header = (off_t)strlen(header_line), size = 0;
    int first_flush = 0;
    for (int i = 1; i < CONVBN_TRACE_FLUSH_OPS && !first_flush; i++) {
        ck_assert_int_eq(convbn_tracer_record(&t, &op), 0);
        size = file_size();
        first_flush = size > header ? i : 0;
    }
    ck_assert_int_gt(first_flush, 0);
    char *text = slurp(path), *last = line_of(text, first_flush);
    ck_assert_int_eq(text[size - 1], '\n');
    ck_assert_int_eq(count_lines(text), 1 + first_flush);
    /* Written as soon as the buffer passed 64 KiB, not one line later. */
    ck_assert_int_ge(size - header, CONVBN_TRACE_FLUSH_BYTES);
    ck_assert_int_lt(size - header - (off_t)strlen(last) - 1, CONVBN_TRACE_FLUSH_BYTES);
    free(last);
    free(text);
    convbn_tracer_stop(&t);
}
END_TEST

/* Runs fn with fd 2 redirected to a file; returns what was written there (malloc'd). */
static char *stderr_of(void (*fn)(void))
{
    char name[160];
    snprintf(name, sizeof name, "%s/stderr", dir);
    int saved = dup(2), fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    close(fd);
    char *text = slurp(name);
    unlink(name);
    return text;
}

static void record_into_missing_directory(void)
{
    struct convbn_tracer t;
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnPoolingForward"};
    char bad[200];
    snprintf(bad, sizeof bad, "%s/missing/trace.jsonl", dir);
    convbn_tracer_init(&t, bad, fixed_header, NULL);
    ck_assert_int_eq(convbn_tracer_record(&t, &op), -1);
    ck_assert_int_eq(convbn_tracer_record(&t, &op), -1);
    ck_assert_int_eq(convbn_tracer_flush(&t), -1);
    convbn_tracer_stop(&t);
}

START_TEST(failed_open_warns_once)
{
    char *err = stderr_of(record_into_missing_directory);
    ck_assert_int_eq(count_lines(err), 1);
    ck_assert_int_eq(strncmp(err, "convbn: trace ", 14), 0);
    ck_assert_ptr_nonnull(strstr(err, "/missing/trace.jsonl: cannot open: No such file or directory"));
    free(err);
}
END_TEST

static void overflow_buffer_table(void)
{
    struct convbn_tracer t;
    convbn_tracer_init(&t, path, fixed_header, NULL);
    long ops = CONVBN_TRACE_MAX_BUFFERS / 2;
    for (long i = 0; i <= ops; i++) {
        struct convbn_trace_op op = {.kind = CONVBN_TRACE_ADD_TENSOR, .name = "cudnnAddTensor",
                                     .a = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, FAKE_PTR(2 * i)),
                                     .c = tensor(CUDNN_DATA_FLOAT, 1, 1, 1, 1, FAKE_PTR(2 * i + 1))};
        ck_assert_int_eq(convbn_tracer_record(&t, &op), i < ops ? 0 : -1);
    }
    convbn_tracer_stop(&t);
}

START_TEST(full_buffer_table_stops_on_a_whole_line)
{
    char *err = stderr_of(overflow_buffer_table);
    ck_assert_ptr_nonnull(strstr(err, "too many distinct buffers; tracing stopped after 32768 ops"));
    ck_assert_int_eq(count_lines(err), 1);
    free(err);
    char *text = slurp(path);
    size_t len = strlen(text);
    ck_assert_int_eq(text[len - 1], '\n');
    ck_assert_int_eq(count_lines(text), 1 + CONVBN_TRACE_MAX_BUFFERS / 2);
    char *last = line_of(text, CONVBN_TRACE_MAX_BUFFERS / 2);
    ck_assert_ptr_nonnull(strstr(last, "\"buf\":65535}"));
    free(last);
    free(text);
}
END_TEST

#define THREADS 4
#define OPS_PER_THREAD 1000

static void *record_many(void *arg)
{
    struct convbn_trace_op op = {.kind = CONVBN_TRACE_OPAQUE, .name = "cudnnSoftmaxForward"};
    for (int i = 0; i < OPS_PER_THREAD; i++)
        ck_assert_int_eq(convbn_tracer_record(arg, &op), 0);
    return NULL;
}

START_TEST(concurrent_records_keep_seq_and_lines)
{
    struct convbn_tracer t;
    pthread_t threads[THREADS];
    convbn_tracer_init(&t, path, fixed_header, NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, record_many, &t), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    convbn_tracer_stop(&t);
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 1 + THREADS * OPS_PER_THREAD);
    int seen[THREADS] = {0};
    const char *p = strchr(text, '\n') + 1;
    for (long i = 0; i < THREADS * OPS_PER_THREAD; i++, p = strchr(p, '\n') + 1) {
        long seq = -1;
        int thread = -1;
        ck_assert_int_eq(sscanf(p, "{\"seq\":%ld,", &seq), 1);
        ck_assert_int_eq(seq, i);
        ck_assert_int_eq(sscanf(strstr(p, "\"thread\":"), "\"thread\":%d", &thread), 1);
        ck_assert(thread >= 0 && thread < THREADS);
        seen[thread]++;
    }
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(seen[i], OPS_PER_THREAD);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace");
    TCase *lines = tcase_create("lines");
    tcase_add_checked_fixture(lines, setup, teardown);
    tcase_add_test(lines, header_line_format);
    tcase_add_test(lines, conv_fwd_line);
    tcase_add_test(lines, conv_bias_act_line);
    tcase_add_test(lines, conv_backward_lines);
    tcase_add_test(lines, bn_inference_and_training_lines);
    tcase_add_test(lines, bn_backward_line);
    tcase_add_test(lines, backend_conv_lines);
    tcase_add_test(lines, backend_bn_line);
    tcase_add_test(lines, tensor_op_lines);
    tcase_add_test(lines, opaque_line);
    tcase_add_test(lines, unknown_enum_values_named_unknown);
    tcase_add_test(lines, buffer_ids_follow_first_use);
    tcase_add_test(lines, stream_and_thread_ids);
    tcase_add_test(lines, strings_escaped);
    tcase_add_test(lines, numbers_round_trip);
    tcase_add_test(lines, sites_named_once_per_caller);
    suite_add_tcase(s, lines);
    TCase *writing = tcase_create("writing");
    tcase_add_checked_fixture(writing, setup, teardown);
    tcase_add_test(writing, nothing_written_before_the_first_op);
    tcase_add_test(writing, flushes_every_256_ops);
    tcase_add_test(writing, flushes_whole_lines_past_64k);
    tcase_add_test(writing, failed_open_warns_once);
    tcase_add_test(writing, full_buffer_table_stops_on_a_whole_line);
    tcase_add_test(writing, concurrent_records_keep_seq_and_lines);
    suite_add_tcase(s, writing);
    return run_suite(s);
}
