/* DESIGN.md sections 5 and 5a: every cuDNN export goes through the shim's generated
 * pass-through wrappers.  Calls a host function, a work function the emulation implements
 * (cudnnActivationForward, also with a bad argument) and two functions the emulation lacks
 * (cudnnRNNForward, cudnnCreateRNNDescriptor, with NULL arguments), and prints every result
 * and status on stdout; run.sh checks that stdout is identical with and without the shim.
 * The lacking functions are looked up with dlsym: without the shim they do not exist and
 * the line printed is the status the shim must return (CUDNN_STATUS_NOT_INITIALIZED), with
 * the shim its wrapper must return that status, or the emulation's when it has one.
 * usage: passthrough [--shim]   --shim: also assert that the shim interposes every call.
 * Exit 0 on success, 1 on a failed expectation, 2 on errors. */
#include "e2e_util.h"

#define N 2
#define C 3
#define H 4
#define W 5
#define COUNT (N * C * H * W)

static int failures;

/* Returns 1 when addr lies in the shim (libconvbn_shim.so). */
static int in_shim(void *addr)
{
    Dl_info info;
    return addr && dladdr(addr, &info) && info.dli_fname &&
           strstr(info.dli_fname, "libconvbn_shim") != NULL;
}

/* With --shim, records a failure unless the program's `name` resolves to the shim. */
static void expect_interposed(int shim, const char *name)
{
    if (shim && !in_shim(dlsym(RTLD_DEFAULT, name))) {
        fprintf(stderr, "passthrough: %s is not interposed by the shim\n", name);
        failures++;
    }
}

/* Returns the emulation's own `name` (NULL when it lacks it), bypassing the shim. */
static void *emulated(const char *name)
{
    void *lib = dlopen("libcudnn.so.9", RTLD_NOLOAD | RTLD_LAZY);
    void *fn = lib ? dlsym(lib, name) : NULL;
    if (lib)
        dlclose(lib);
    return fn;
}

static void host_calls(int shim)
{
    cudnnTensorDescriptor_t desc = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, H, W);
    size_t bytes = 0;
    cudnnStatus_t st = cudnnGetTensorSizeInBytes(desc, &bytes);
    printf("cudnnGetVersion %zu\n", cudnnGetVersion());
    printf("cudnnGetTensorSizeInBytes status %d bytes %zu\n", (int)st, bytes);
    printf("cudnnGetErrorString %s\n", cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM));
    CUDNN_OK(cudnnDestroyTensorDescriptor(desc));
    expect_interposed(shim, "cudnnGetVersion");
    expect_interposed(shim, "cudnnGetTensorSizeInBytes");
    expect_interposed(shim, "cudnnGetErrorString");
}

static void work_calls(int shim)
{
    cudnnHandle_t handle;
    cudnnActivationDescriptor_t act;
    cudnnTensorDescriptor_t desc = e2e_tensor(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, H, W);
    float alpha = 1.0f, beta = 0.0f, y_host[COUNT];
    void *x = e2e_random_buffer(COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    void *y = e2e_random_buffer(COUNT, CUDNN_DATA_FLOAT, -1.0f, 1.0f);
    CUDNN_OK(cudnnCreate(&handle));
    CUDNN_OK(cudnnCreateActivationDescriptor(&act));
    CUDNN_OK(
        cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    cudnnStatus_t st = cudnnActivationForward(handle, act, &alpha, desc, x, &beta, desc, y);
    CUDA_OK(cudaMemcpy(y_host, y, sizeof y_host, cudaMemcpyDeviceToHost));
    printf("cudnnActivationForward status %d y", (int)st);
    for (int i = 0; i < COUNT; i++)
        printf(" %a", (double)y_host[i]);
    printf("\n");
    st = cudnnActivationForward(handle, act, NULL, desc, x, &beta, desc, y);
    printf("cudnnActivationForward (alpha NULL) status %d\n", (int)st);
    CUDNN_OK(cudnnDestroyActivationDescriptor(act));
    CUDNN_OK(cudnnDestroyTensorDescriptor(desc));
    CUDNN_OK(cudnnDestroy(handle));
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(y));
    expect_interposed(shim, "cudnnActivationForward");
    expect_interposed(shim, "cudnnCreate");
}

/* Prints the status of cudnnRNNForward with NULL arguments (see the file comment). */
static void rnn_forward(int shim)
{
    __typeof__(cudnnRNNForward) *fn = (__typeof__(fn))dlsym(RTLD_DEFAULT, "cudnnRNNForward");
    __typeof__(cudnnRNNForward) *emu = (__typeof__(emu))emulated("cudnnRNNForward");
    cudnnStatus_t want = CUDNN_STATUS_NOT_INITIALIZED, got = want;
    if (emu)
        want = emu(NULL, NULL, CUDNN_FWD_MODE_INFERENCE, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, 0, NULL);
    if (fn)
        got = fn(NULL, NULL, CUDNN_FWD_MODE_INFERENCE, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                 NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, 0, NULL);
    if (got != want) {
        fprintf(stderr, "passthrough: cudnnRNNForward returned %d, expected %d\n", (int)got,
                (int)want);
        failures++;
    }
    printf("cudnnRNNForward (NULL arguments) status %d\n", (int)got);
    expect_interposed(shim, "cudnnRNNForward");
}

/* Prints the status of cudnnCreateRNNDescriptor(NULL) (see the file comment). */
static void create_rnn_descriptor(int shim)
{
    __typeof__(cudnnCreateRNNDescriptor) *fn =
        (__typeof__(fn))dlsym(RTLD_DEFAULT, "cudnnCreateRNNDescriptor");
    __typeof__(cudnnCreateRNNDescriptor) *emu =
        (__typeof__(emu))emulated("cudnnCreateRNNDescriptor");
    cudnnStatus_t want = emu ? emu(NULL) : CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t got = fn ? fn(NULL) : CUDNN_STATUS_NOT_INITIALIZED;
    if (got != want) {
        fprintf(stderr, "passthrough: cudnnCreateRNNDescriptor returned %d, expected %d\n",
                (int)got, (int)want);
        failures++;
    }
    printf("cudnnCreateRNNDescriptor (NULL) status %d\n", (int)got);
    expect_interposed(shim, "cudnnCreateRNNDescriptor");
}

int main(int argc, char **argv)
{
    int shim = argc == 2 && strcmp(argv[1], "--shim") == 0;
    if (argc > 2 || (argc == 2 && !shim)) {
        fprintf(stderr, "usage: passthrough [--shim]\n");
        return 2;
    }
    host_calls(shim);
    work_calls(shim);
    rnn_forward(shim);
    create_rnn_descriptor(shim);
    return failures ? 1 : 0;
}
