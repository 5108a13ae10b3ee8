/* A ResNet-style inference pass issued through cuDNN's legacy API, as a framework would:
 * stem (conv, BN, ReLU), four bottleneck blocks in two stages (1x1, 3x3 (grouped in stage
 * 2), 1x1, each conv followed by an inference BN), a downsample branch (conv + BN) in the
 * first block of each stage, the residual add through cudnnAddTensor or cudnnOpTensor, and
 * ReLU through cudnnActivationForward.  Every layer output is appended to --out so runs with
 * and without the shim can be compared byte for byte.
 *
 * usage: resnet_seq [--type float|half|bfloat16] [--layout nchw|nhwc] [--out FILE]
 *                   [--expect-pairs N] [--expect-fused N]
 *                   (checked against the shim's counters when it is preloaded)
 * Exit status 0 on success, 1 on a failed expectation, 2 on a cuDNN/CUDA error. */
#include "e2e_util.h"

#define BATCH 2
#define EXPECTED_PAIRS 15

struct net {
    cudnnHandle_t handle;
    cudaStream_t stream;
    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    FILE *out;
    void *workspace;
    size_t workspace_size;
};

/* An activation tensor on the device. */
struct act {
    void *data;
    int c, h, w;
};

static size_t act_bytes(const struct net *net, const struct act *a)
{
    return (size_t)BATCH * (size_t)a->c * (size_t)a->h * (size_t)a->w * e2e_type_size(net->type);
}

static struct act new_act(const struct net *net, int c, int h, int w)
{
    struct act a = {NULL, c, h, w};
    CUDA_OK(cudaMalloc(&a.data, act_bytes(net, &a)));
    return a;
}

static void dump(struct net *net, const struct act *a)
{
    size_t bytes = act_bytes(net, a);
    void *host = malloc(bytes);
    if (!host)
        exit(2);
    CUDA_OK(cudaMemcpy(host, a->data, bytes, cudaMemcpyDeviceToHost));
    if (net->out && fwrite(host, 1, bytes, net->out) != bytes)
        exit(2);
    free(host);
}

static cudnnTensorDescriptor_t desc_of(const struct net *net, const struct act *a)
{
    return e2e_tensor(net->format, net->type, BATCH, a->c, a->h, a->w);
}

static void ensure_workspace(struct net *net, size_t bytes)
{
    if (bytes <= net->workspace_size)
        return;
    CUDA_OK(cudaFree(net->workspace));
    CUDA_OK(cudaMalloc(&net->workspace, bytes));
    net->workspace_size = bytes;
}

/* conv(k x k, stride, groups) then inference BN; returns the BN output (a new tensor). */
static struct act conv_bn(struct net *net, const struct act *in, int out_c, int k, int stride,
                          int groups)
{
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int pad = k / 2, oh = (in->h + 2 * pad - k) / stride + 1, ow = (in->w + 2 * pad - k) / stride + 1;
    CUDNN_OK(cudnnCreateFilterDescriptor(&wd));
    CUDNN_OK(cudnnSetFilter4dDescriptor(wd, net->type, net->format, out_c, in->c / groups, k, k));
    CUDNN_OK(cudnnCreateConvolutionDescriptor(&cd));
    CUDNN_OK(cudnnSetConvolution2dDescriptor(cd, pad, pad, stride, stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_OK(cudnnSetConvolutionGroupCount(cd, groups));
    float fan_in = (float)(in->c / groups * k * k);
    void *w = e2e_random_buffer((size_t)out_c * (size_t)(in->c / groups) * (size_t)(k * k),
                                net->type, -1.0f / fan_in, 1.0f / fan_in);
    /* Parameters exist before the layer runs, as in any framework. */
    void *gamma = e2e_random_buffer((size_t)out_c, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    void *beta = e2e_random_buffer((size_t)out_c, CUDNN_DATA_FLOAT, -0.5f, 0.5f);
    void *mean = e2e_random_buffer((size_t)out_c, CUDNN_DATA_FLOAT, -0.2f, 0.2f);
    void *var = e2e_random_buffer((size_t)out_c, CUDNN_DATA_FLOAT, 0.5f, 1.5f);
    struct act y = new_act(net, out_c, oh, ow), z = new_act(net, out_c, oh, ow);
    cudnnTensorDescriptor_t xd = desc_of(net, in), yd = desc_of(net, &y);

    cudnnConvolutionFwdAlgoPerf_t perf;
    int returned = 0;
    size_t ws = 0;
    CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(net->handle, xd, wd, cd, yd, 1, &returned, &perf));
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(net->handle, xd, wd, cd, yd, perf.algo, &ws));
    ensure_workspace(net, ws);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnConvolutionForward(net->handle, &one, xd, in->data, wd, w, cd, perf.algo,
                                     net->workspace, ws, &zero, yd, y.data));

    /* As PyTorch's legacy path does: BN descriptors are made between the conv and the BN. */
    cudnnTensorDescriptor_t pd;
    CUDNN_OK(cudnnCreateTensorDescriptor(&pd));
    CUDNN_OK(cudnnDeriveBNTensorDescriptor(pd, yd, CUDNN_BATCHNORM_SPATIAL));
    CUDNN_OK(cudnnBatchNormalizationForwardInference(net->handle, CUDNN_BATCHNORM_SPATIAL, &one,
                                                     &zero, yd, y.data, yd, z.data, pd, gamma,
                                                     beta, mean, var, 1e-5));
    dump(net, &z);
    CUDA_OK(cudaFree(y.data));
    void *params[] = {w, gamma, beta, mean, var};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        CUDA_OK(cudaFree(params[i]));
    CUDNN_OK(cudnnDestroyTensorDescriptor(pd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(xd));
    CUDNN_OK(cudnnDestroyTensorDescriptor(yd));
    CUDNN_OK(cudnnDestroyFilterDescriptor(wd));
    CUDNN_OK(cudnnDestroyConvolutionDescriptor(cd));
    return z;
}

static void relu_in_place(struct net *net, struct act *a)
{
    cudnnActivationDescriptor_t ad;
    cudnnTensorDescriptor_t d = desc_of(net, a);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_OK(cudnnCreateActivationDescriptor(&ad));
    CUDNN_OK(cudnnSetActivationDescriptor(ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    CUDNN_OK(cudnnActivationForward(net->handle, ad, &one, d, a->data, &zero, d, a->data));
    CUDNN_OK(cudnnDestroyActivationDescriptor(ad));
    CUDNN_OK(cudnnDestroyTensorDescriptor(d));
}

/* out += shortcut, through AddTensor or (use_op_tensor) OpTensor ADD. */
static void residual_add(struct net *net, struct act *out, const struct act *shortcut,
                         int use_op_tensor)
{
    cudnnTensorDescriptor_t d = desc_of(net, out);
    const float one = 1.0f;
    if (use_op_tensor) {
        cudnnOpTensorDescriptor_t od;
        CUDNN_OK(cudnnCreateOpTensorDescriptor(&od));
        CUDNN_OK(cudnnSetOpTensorDescriptor(od, CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT,
                                            CUDNN_NOT_PROPAGATE_NAN));
        const float zero = 0.0f;
        CUDNN_OK(cudnnOpTensor(net->handle, od, &one, d, out->data, &one, d, shortcut->data, &zero,
                               d, out->data));
        CUDNN_OK(cudnnDestroyOpTensorDescriptor(od));
    } else {
        CUDNN_OK(cudnnAddTensor(net->handle, &one, d, shortcut->data, &one, d, out->data));
    }
    CUDNN_OK(cudnnDestroyTensorDescriptor(d));
}

static struct act bottleneck(struct net *net, struct act *in, int mid, int out_c, int stride,
                             int groups, int use_op_tensor)
{
    struct act a = conv_bn(net, in, mid, 1, 1, 1);
    relu_in_place(net, &a);
    struct act b = conv_bn(net, &a, mid, 3, stride, groups);
    relu_in_place(net, &b);
    struct act c = conv_bn(net, &b, out_c, 1, 1, 1);
    int downsample = stride != 1 || in->c != out_c;
    struct act shortcut = downsample ? conv_bn(net, in, out_c, 1, stride, 1) : *in;
    residual_add(net, &c, &shortcut, use_op_tensor);
    relu_in_place(net, &c);
    dump(net, &c);
    CUDA_OK(cudaFree(a.data));
    CUDA_OK(cudaFree(b.data));
    if (downsample)
        CUDA_OK(cudaFree(shortcut.data));
    return c;
}

static int parse_args(int argc, char **argv, struct net *net, const char **out,
                      struct e2e_expectations *expect)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (!strcmp(opt, "--type"))
            net->type = !strcmp(val, "half") ? CUDNN_DATA_HALF
                        : !strcmp(val, "bfloat16") ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
        else if (!strcmp(opt, "--layout"))
            net->format = !strcmp(val, "nhwc") ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
        else if (!strcmp(opt, "--out"))
            *out = val;
        else if (!strcmp(opt, "--expect-pairs"))
            expect->pairs = strtol(val, NULL, 10);
        else if (!strcmp(opt, "--expect-fused"))
            expect->fused = strtol(val, NULL, 10);
        else
            return -1;
    }
    return (argc % 2) ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct net net = {.type = CUDNN_DATA_FLOAT, .format = CUDNN_TENSOR_NCHW};
    const char *out_path = NULL;
    struct e2e_expectations expect = {-1, -1};
    if (parse_args(argc, argv, &net, &out_path, &expect) != 0) {
        fprintf(stderr, "usage: resnet_seq [--type float|half|bfloat16] [--layout nchw|nhwc] "
                        "[--out FILE] [--expect-pairs N] [--expect-fused N]\n");
        return 2;
    }
    if (out_path && !(net.out = fopen(out_path, "wb"))) {
        perror(out_path);
        return 2;
    }
    CUDNN_OK(cudnnCreate(&net.handle));
    CUDA_OK(cudaStreamCreate(&net.stream));
    CUDNN_OK(cudnnSetStream(net.handle, net.stream));

    struct act input = {e2e_random_buffer((size_t)BATCH * 3 * 32 * 32, net.type, -1.0f, 1.0f), 3, 32, 32};
    struct act x = conv_bn(&net, &input, 16, 3, 1, 1);
    relu_in_place(&net, &x);
    static const struct { int mid, out, stride, groups, op_tensor; } blocks[] = {
        {8, 32, 1, 1, 0}, {8, 32, 1, 1, 0}, {16, 64, 2, 4, 1}, {16, 64, 1, 4, 1}};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        struct act next = bottleneck(&net, &x, blocks[i].mid, blocks[i].out, blocks[i].stride,
                                     blocks[i].groups, blocks[i].op_tensor);
        CUDA_OK(cudaFree(x.data));
        x = next;
    }
    CUDA_OK(cudaStreamSynchronize(net.stream));
    printf("resnet_seq: %d pairs issued, output %dx%dx%dx%d\n", EXPECTED_PAIRS, BATCH, x.c, x.h, x.w);
    CUDA_OK(cudaFree(x.data));
    CUDA_OK(cudaFree(input.data));
    CUDA_OK(cudaFree(net.workspace));
    CUDNN_OK(cudnnDestroy(net.handle));
    CUDA_OK(cudaStreamDestroy(net.stream));
    if (net.out)
        fclose(net.out);
    return e2e_check_expectations("resnet_seq", &expect);
}
