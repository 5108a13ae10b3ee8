/* Check suite for the CPU emulation of the CUDA runtime (build/emu/libcudart.so.13).
 *
 * Drives the library only through <cuda_runtime_api.h> and emu_cudart.h, as a program linked
 * against the real runtime would, and checks results against values computed here: return
 * codes (and that every failure sets the last error), the allocation table, copies and
 * memsets byte by byte, event timing, kernel registration and launch, and concurrent use from
 * several threads.  It does not look inside the library's tables. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "emu_cudart.h"

/* The call must succeed and leave the last error alone. */
#define ck_assert_cuda_ok(call)                                                                    \
    do {                                                                                   \
        (void)cudaGetLastError();                                                          \
        cudaError_t got_ = (call);                                                         \
        ck_assert_msg(got_ == cudaSuccess, "%s returned %s", #call, cudaGetErrorName(got_)); \
        ck_assert_int_eq(cudaPeekAtLastError(), cudaSuccess);                              \
    } while (0)

/* The call must return expected and leave it as the last error. */
#define ck_assert_cuda_fails(expected, call)                                                         \
    do {                                                                                    \
        (void)cudaGetLastError();                                                           \
        cudaError_t got_ = (call);                                                          \
        ck_assert_msg(got_ == (expected), "%s returned %s, expected %s", #call,             \
                      cudaGetErrorName(got_), cudaGetErrorName(expected));                  \
        ck_assert_msg(cudaGetLastError() == (expected), "%s did not set the last error",    \
                      #call);                                                               \
    } while (0)

#define EMU_TOTAL_MEM ((size_t)16 << 30)

static cudaStream_t bogus_stream(void)
{
    static char not_a_stream;
    return (cudaStream_t)&not_a_stream;
}

static cudaEvent_t bogus_event(void)
{
    static char not_an_event;
    return (cudaEvent_t)&not_an_event;
}

static void fill_pattern(unsigned char *bytes, size_t count, unsigned seed)
{
    for (size_t i = 0; i < count; i++)
        bytes[i] = (unsigned char)(seed + i * 7);
}

/* ---- kernels registered by the tests ---- */

/* Symbols standing for device functions; only their addresses matter. */
static const char add_kernel_symbol;
static const char fill_kernel_symbol;
static const char unregistered_symbol;

static const size_t add_offsets[] = { 0, 8, 16, 24 };
static const size_t add_sizes[] = { 8, 8, 8, 4 };

struct launch_record {
    int calls;
    dim3 grid;
    dim3 block;
    cudaStream_t stream;
};

static __thread struct launch_record last_launch;

/* Host body of add(const float *a, const float *b, float *c, int n): c = a + b. */
static void add_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    const float *a = *(const float **)args[0];
    const float *b = *(const float **)args[1];
    float *c = *(float **)args[2];
    int n = *(const int *)args[3];
    for (int i = 0; i < n; i++)
        c[i] = a[i] + b[i];
    last_launch.calls++;
    last_launch.grid = grid;
    last_launch.block = block;
    last_launch.stream = stream;
}

/* Host body of fill(unsigned char *p, int value, size_t count), which calls back into the
 * runtime. */
static void fill_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid;
    (void)block;
    void *target = *(void **)args[0];
    int value = *(const int *)args[1];
    size_t count = *(const size_t *)args[2];
    ck_assert_int_eq(cudaMemsetAsync(target, value, count, stream), cudaSuccess);
    last_launch.calls++;
}

static void register_add(void)
{
    ck_assert_int_eq(emu_register_kernel(&add_kernel_symbol, add_host, 4, add_offsets, add_sizes),
                     cudaSuccess);
}

static void register_fill(void)
{
    static const size_t offsets[] = { 0, 8, 16 };
    static const size_t sizes[] = { 8, 4, 8 };
    ck_assert_int_eq(emu_register_kernel(&fill_kernel_symbol, fill_host, 3, offsets, sizes),
                     cudaSuccess);
}

/* Device buffers for one add launch, with host inputs and the expected sums. */
struct add_case {
    int n;
    float *host_a, *host_b, *expected, *result;
    float *dev_a, *dev_b, *dev_c;
};

static void add_case_init(struct add_case *test, int n, unsigned seed)
{
    size_t bytes = (size_t)n * sizeof(float);
    test->n = n;
    test->host_a = malloc(bytes);
    test->host_b = malloc(bytes);
    test->expected = malloc(bytes);
    test->result = malloc(bytes);
    ck_assert(test->host_a && test->host_b && test->expected && test->result);
    for (int i = 0; i < n; i++) {
        test->host_a[i] = (float)((seed + (unsigned)i) % 97) * 0.5f;
        test->host_b[i] = (float)((seed * 3 + (unsigned)i) % 89) - 40.0f;
        test->expected[i] = test->host_a[i] + test->host_b[i];
    }
    ck_assert_int_eq(cudaMalloc((void **)&test->dev_a, bytes), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&test->dev_b, bytes), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&test->dev_c, bytes), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(test->dev_a, test->host_a, bytes, cudaMemcpyHostToDevice),
                     cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(test->dev_b, test->host_b, bytes, cudaMemcpyHostToDevice),
                     cudaSuccess);
    ck_assert_int_eq(cudaMemset(test->dev_c, 0, bytes), cudaSuccess);
}

/* Copies the device result back and compares it with the expected sums. */
static void add_case_verify(struct add_case *test)
{
    size_t bytes = (size_t)test->n * sizeof(float);
    ck_assert_int_eq(cudaMemcpy(test->result, test->dev_c, bytes, cudaMemcpyDeviceToHost),
                     cudaSuccess);
    for (int i = 0; i < test->n; i++)
        ck_assert_float_eq(test->result[i], test->expected[i]);
}

static void add_case_free(struct add_case *test)
{
    ck_assert_int_eq(cudaFree(test->dev_a), cudaSuccess);
    ck_assert_int_eq(cudaFree(test->dev_b), cudaSuccess);
    ck_assert_int_eq(cudaFree(test->dev_c), cudaSuccess);
    free(test->host_a);
    free(test->host_b);
    free(test->expected);
    free(test->result);
}

/* ---- memory ---- */

START_TEST(malloc_is_aligned_and_writable)
{
    static const size_t sizes[] = { 1, 3, 255, 256, 257, 4096, 1 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = NULL;
        ck_assert_cuda_ok(cudaMalloc((void **)&p, sizes[i]));
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 256, 0);
        p[0] = 1;
        p[sizes[i] - 1] = 2;
        ck_assert_cuda_ok(cudaFree(p));
    }
}
END_TEST

START_TEST(fresh_device_memory_is_not_zeroed)
{
    unsigned char *p;
    ck_assert_cuda_ok(cudaMalloc((void **)&p, 4096));
    size_t zeros = 0;
    for (size_t i = 0; i < 4096; i++)
        zeros += p[i] == 0;
    ck_assert_uint_lt(zeros, 4096);
    ck_assert_cuda_ok(cudaFree(p));
}
END_TEST

START_TEST(malloc_zero_size_and_null_arguments)
{
    void *p = &p;
    ck_assert_cuda_ok(cudaMalloc(&p, 0));
    ck_assert_ptr_null(p);
    ck_assert_cuda_ok(cudaFree(NULL));
    ck_assert_cuda_ok(cudaFreeHost(NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMalloc(NULL, 16));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMallocHost(NULL, 16));
}
END_TEST

START_TEST(free_rejects_unknown_pointers)
{
    char stack_buffer[64];
    char *device, *pinned;
    ck_assert_cuda_ok(cudaMalloc((void **)&device, 512));
    ck_assert_cuda_ok(cudaMallocHost((void **)&pinned, 512));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFree(stack_buffer));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFree(device + 16));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFree(pinned));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFreeHost(device));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFreeHost(stack_buffer));
    ck_assert_cuda_ok(cudaFree(device));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFree(device));
    ck_assert_cuda_ok(cudaFreeHost(pinned));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFreeHost(pinned));
}
END_TEST

START_TEST(mem_get_info_tracks_device_allocations)
{
    size_t free_before, total, free_during, free_after;
    void *p, *pinned;
    ck_assert_cuda_ok(cudaMemGetInfo(&free_before, &total));
    ck_assert_uint_eq(total, EMU_TOTAL_MEM);
    ck_assert_cuda_ok(cudaMalloc(&p, 1 << 20));
    ck_assert_cuda_ok(cudaMallocHost(&pinned, 1 << 20));
    ck_assert_cuda_ok(cudaMemGetInfo(&free_during, &total));
    ck_assert_uint_eq(free_before - free_during, 1 << 20);
    ck_assert_cuda_ok(cudaFree(p));
    ck_assert_cuda_ok(cudaFreeHost(pinned));
    ck_assert_cuda_ok(cudaMemGetInfo(&free_after, &total));
    ck_assert_uint_eq(free_after, free_before);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemGetInfo(NULL, &total));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemGetInfo(&free_after, NULL));
}
END_TEST

START_TEST(malloc_beyond_device_capacity_fails)
{
    void *p = &p;
    ck_assert_cuda_fails(cudaErrorMemoryAllocation, cudaMalloc(&p, EMU_TOTAL_MEM + 1));
    ck_assert_ptr_null(p);
    ck_assert_cuda_fails(cudaErrorMemoryAllocation, cudaMallocAsync(&p, (size_t)1 << 40, NULL));
}
END_TEST

START_TEST(malloc_async_and_free_async)
{
    cudaStream_t stream;
    void *a, *b, *c;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaMallocAsync(&a, 1000, stream));
    ck_assert_cuda_ok(cudaMallocAsync_ptsz(&b, 1000, cudaStreamPerThread));
    ck_assert_cuda_ok(cudaMallocAsync(&c, 1000, NULL));
    ck_assert_uint_eq((uintptr_t)a % 256, 0);
    ck_assert_cuda_ok(cudaFreeAsync(a, stream));
    ck_assert_cuda_ok(cudaFreeAsync_ptsz(b, cudaStreamLegacy));
    ck_assert_cuda_ok(cudaFree(c));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFreeAsync(a, stream));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMallocAsync(NULL, 16, stream));
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaMallocAsync(&a, 16, stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaFreeAsync(NULL, bogus_stream()));
}
END_TEST

START_TEST(host_alloc_flags)
{
    void *p;
    ck_assert_cuda_ok(cudaHostAlloc(&p, 100, cudaHostAllocDefault));
    ck_assert_cuda_ok(cudaFreeHost(p));
    ck_assert_cuda_ok(cudaHostAlloc(&p, 100, cudaHostAllocMapped | cudaHostAllocPortable |
                                         cudaHostAllocWriteCombined));
    memset(p, 7, 100);
    ck_assert_cuda_ok(cudaFreeHost(p));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaHostAlloc(&p, 100, 0x80));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaHostAlloc(NULL, 100, 0));
}
END_TEST

START_TEST(pointer_attributes_by_allocation_kind)
{
    struct cudaPointerAttributes attributes;
    char *device, *pinned, stack_buffer[16];
    ck_assert_cuda_ok(cudaMalloc((void **)&device, 1024));
    ck_assert_cuda_ok(cudaMallocHost((void **)&pinned, 1024));

    ck_assert_cuda_ok(cudaPointerGetAttributes(&attributes, device + 100));
    ck_assert_int_eq(attributes.type, cudaMemoryTypeDevice);
    ck_assert_int_eq(attributes.device, 0);
    ck_assert_ptr_eq(attributes.devicePointer, device + 100);
    ck_assert_ptr_null(attributes.hostPointer);

    ck_assert_cuda_ok(cudaPointerGetAttributes(&attributes, pinned));
    ck_assert_int_eq(attributes.type, cudaMemoryTypeHost);
    ck_assert_int_eq(attributes.device, 0);
    ck_assert_ptr_eq(attributes.devicePointer, pinned);
    ck_assert_ptr_eq(attributes.hostPointer, pinned);

    ck_assert_cuda_ok(cudaPointerGetAttributes(&attributes, stack_buffer));
    ck_assert_int_eq(attributes.type, cudaMemoryTypeUnregistered);
    ck_assert_ptr_null(attributes.devicePointer);

    ck_assert_cuda_ok(cudaPointerGetAttributes(&attributes, device + 1024));
    ck_assert_int_ne(attributes.type, cudaMemoryTypeDevice);
    ck_assert_cuda_ok(cudaFree(device));
    ck_assert_cuda_ok(cudaPointerGetAttributes(&attributes, device));
    ck_assert_int_eq(attributes.type, cudaMemoryTypeUnregistered);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaPointerGetAttributes(NULL, pinned));
    ck_assert_cuda_ok(cudaFreeHost(pinned));
}
END_TEST

START_TEST(memcpy_every_kind_copies_bytes)
{
    enum { N = 1000 };
    unsigned char source[N], back[N], host_copy[N];
    unsigned char *d1, *d2, *pinned;
    fill_pattern(source, N, 11);
    ck_assert_cuda_ok(cudaMalloc((void **)&d1, N));
    ck_assert_cuda_ok(cudaMalloc((void **)&d2, N));
    ck_assert_cuda_ok(cudaMallocHost((void **)&pinned, N));

    ck_assert_cuda_ok(cudaMemcpy(d1, source, N, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaMemcpy(d2, d1, N, cudaMemcpyDeviceToDevice));
    ck_assert_cuda_ok(cudaMemcpy(pinned, d2, N, cudaMemcpyDefault));
    ck_assert_cuda_ok(cudaMemcpy(host_copy, pinned, N, cudaMemcpyHostToHost));
    ck_assert_cuda_ok(cudaMemcpy(back, d2, N, cudaMemcpyDeviceToHost));
    ck_assert_mem_eq(back, source, N);
    ck_assert_mem_eq(host_copy, source, N);

    memset(back, 0, N);
    ck_assert_cuda_ok(cudaMemcpy_ptds(back, d1, N, cudaMemcpyDeviceToHost));
    ck_assert_mem_eq(back, source, N);
    memset(back, 0, N);
    ck_assert_cuda_ok(cudaMemcpyAsync(d2, source + 1, N - 1, cudaMemcpyHostToDevice, NULL));
    ck_assert_cuda_ok(cudaMemcpyAsync_ptsz(back, d2, N - 1, cudaMemcpyDefault, cudaStreamPerThread));
    ck_assert_mem_eq(back, source + 1, N - 1);

    ck_assert_cuda_ok(cudaFree(d1));
    ck_assert_cuda_ok(cudaFree(d2));
    ck_assert_cuda_ok(cudaFreeHost(pinned));
}
END_TEST

START_TEST(memcpy_rejects_bad_ranges_and_kinds)
{
    char host[256];
    char *device;
    ck_assert_cuda_ok(cudaMalloc((void **)&device, 128));
    ck_assert_cuda_fails(cudaErrorInvalidMemcpyDirection,
                cudaMemcpy(device, host, 16, (enum cudaMemcpyKind)7));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(host, host + 64, 16, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(host, host + 64, 16, cudaMemcpyDeviceToHost));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(device, host, 16, cudaMemcpyDeviceToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(device, host, 129, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(host, device + 64, 65, cudaMemcpyDefault));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemcpy(NULL, device, 8, cudaMemcpyDefault));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle,
                cudaMemcpyAsync(device, host, 8, cudaMemcpyHostToDevice, bogus_stream()));
    ck_assert_cuda_ok(cudaMemcpy(device, host, 0, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaMemcpy(device, host, 128, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

START_TEST(memset_sets_exact_range)
{
    enum { N = 300 };
    unsigned char *device, back[N];
    cudaStream_t stream;
    ck_assert_cuda_ok(cudaMalloc((void **)&device, N));
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaMemset(device, 0x11, N));
    ck_assert_cuda_ok(cudaMemset(device + 10, 0x1FF, 20));
    ck_assert_cuda_ok(cudaMemsetAsync(device + 100, 0x33, 50, stream));
    ck_assert_cuda_ok(cudaMemset_ptds(device + 200, 0x44, 5));
    ck_assert_cuda_ok(cudaMemsetAsync_ptsz(device + 250, 0x55, 50, NULL));
    ck_assert_cuda_ok(cudaMemcpy(back, device, N, cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++) {
        unsigned char expected = 0x11;
        if (i >= 10 && i < 30)
            expected = 0xFF;
        else if (i >= 100 && i < 150)
            expected = 0x33;
        else if (i >= 200 && i < 205)
            expected = 0x44;
        else if (i >= 250)
            expected = 0x55;
        ck_assert_uint_eq(back[i], expected);
    }
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

START_TEST(memset_rejects_bad_ranges)
{
    char host[64];
    char *device;
    ck_assert_cuda_ok(cudaMalloc((void **)&device, 64));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemset(host, 0, 8));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemset(device + 32, 0, 33));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaMemset(NULL, 0, 8));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaMemsetAsync(device, 0, 8, bogus_stream()));
    ck_assert_cuda_ok(cudaMemset(device + 32, 0, 32));
    ck_assert_cuda_ok(cudaMemset(NULL, 0, 0));
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

START_TEST(memcpy2d_copies_rows_and_keeps_padding)
{
    enum { WIDTH = 5, HEIGHT = 4, SPITCH = 8, DPITCH = 16 };
    unsigned char source[SPITCH * HEIGHT], back[DPITCH * HEIGHT], packed[WIDTH * HEIGHT];
    unsigned char *device;
    fill_pattern(source, sizeof source, 3);
    ck_assert_cuda_ok(cudaMalloc((void **)&device, sizeof back));
    ck_assert_cuda_ok(cudaMemset(device, 0xEE, sizeof back));
    ck_assert_cuda_ok(cudaMemcpy2D(device, DPITCH, source, SPITCH, WIDTH, HEIGHT, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaMemcpy(back, device, sizeof back, cudaMemcpyDeviceToHost));
    for (int row = 0; row < HEIGHT; row++)
        for (int col = 0; col < DPITCH; col++)
            ck_assert_uint_eq(back[row * DPITCH + col],
                              col < WIDTH ? source[row * SPITCH + col] : 0xEE);

    ck_assert_cuda_ok(cudaMemcpy2DAsync(packed, WIDTH, device, DPITCH, WIDTH, HEIGHT,
                                cudaMemcpyDeviceToHost, NULL));
    for (int row = 0; row < HEIGHT; row++)
        ck_assert_mem_eq(packed + row * WIDTH, source + row * SPITCH, WIDTH);
    memset(packed, 0, sizeof packed);
    ck_assert_cuda_ok(cudaMemcpy2D_ptds(packed, WIDTH, device, DPITCH, WIDTH, HEIGHT, cudaMemcpyDefault));
    ck_assert_cuda_ok(cudaMemcpy2DAsync_ptsz(packed, WIDTH, device, DPITCH, WIDTH, HEIGHT,
                                     cudaMemcpyDeviceToHost, cudaStreamPerThread));
    ck_assert_mem_eq(packed + WIDTH, source + SPITCH, WIDTH);
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

START_TEST(memcpy2d_rejects_bad_pitches_and_ranges)
{
    unsigned char host[64 * 8];
    unsigned char *device;
    ck_assert_cuda_ok(cudaMalloc((void **)&device, 64));
    ck_assert_cuda_fails(cudaErrorInvalidPitchValue,
                cudaMemcpy2D(device, 4, host, 8, 8, 2, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidPitchValue,
                cudaMemcpy2D(device, 8, host, 4, 8, 2, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidValue,
                cudaMemcpy2D(device, 16, host, 16, 16, 5, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidValue,
                cudaMemcpy2D(host, 16, host, 16, 16, 2, cudaMemcpyHostToDevice));
    ck_assert_cuda_fails(cudaErrorInvalidMemcpyDirection,
                cudaMemcpy2D(device, 16, host, 16, 16, 2, (enum cudaMemcpyKind)9));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle,
                cudaMemcpy2DAsync(device, 16, host, 16, 16, 2, cudaMemcpyHostToDevice,
                                  bogus_stream()));
    ck_assert_cuda_ok(cudaMemcpy2D(device, 16, host, 16, 16, 4, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaMemcpy2D(device, 16, host, 16, 0, 4, cudaMemcpyHostToDevice));
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

/* ---- streams ---- */

START_TEST(stream_lifecycle_and_handle_checks)
{
    cudaStream_t stream, nonblocking;
    unsigned int flags = 99;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking));
    ck_assert_ptr_ne(stream, nonblocking);
    ck_assert_cuda_ok(cudaStreamGetFlags(stream, &flags));
    ck_assert_uint_eq(flags, cudaStreamDefault);
    ck_assert_cuda_ok(cudaStreamGetFlags_ptsz(nonblocking, &flags));
    ck_assert_uint_eq(flags, cudaStreamNonBlocking);
    ck_assert_cuda_ok(cudaStreamSynchronize(stream));
    ck_assert_cuda_ok(cudaStreamSynchronize_ptsz(nonblocking));
    ck_assert_cuda_ok(cudaStreamQuery(stream));
    ck_assert_cuda_ok(cudaStreamQuery_ptsz(stream));
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
    ck_assert_cuda_ok(cudaStreamDestroy(nonblocking));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamDestroy(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamSynchronize(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamQuery(bogus_stream()));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamGetFlags(stream, &flags));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamCreateWithFlags(&stream, 0x4));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamCreate(NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamGetFlags(NULL, NULL));
}
END_TEST

START_TEST(builtin_streams_are_always_valid)
{
    cudaStream_t builtins[] = { NULL, cudaStreamLegacy, cudaStreamPerThread };
    for (size_t i = 0; i < 3; i++) {
        unsigned int flags = 99;
        int priority = 99;
        ck_assert_cuda_ok(cudaStreamSynchronize(builtins[i]));
        ck_assert_cuda_ok(cudaStreamQuery(builtins[i]));
        ck_assert_cuda_ok(cudaStreamGetFlags(builtins[i], &flags));
        ck_assert_cuda_ok(cudaStreamGetPriority(builtins[i], &priority));
        ck_assert_uint_eq(flags, cudaStreamDefault);
        ck_assert_int_eq(priority, 0);
        ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamDestroy(builtins[i]));
    }
}
END_TEST

START_TEST(stream_priorities_are_clamped)
{
    int least = 99, greatest = 99, priority;
    cudaStream_t low, high, middle;
    ck_assert_cuda_ok(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    ck_assert_int_eq(least, 0);
    ck_assert_int_eq(greatest, -5);
    ck_assert_cuda_ok(cudaDeviceGetStreamPriorityRange(NULL, NULL));
    ck_assert_cuda_ok(cudaStreamCreateWithPriority(&low, cudaStreamDefault, 100));
    ck_assert_cuda_ok(cudaStreamCreateWithPriority(&high, cudaStreamNonBlocking, -100));
    ck_assert_cuda_ok(cudaStreamCreateWithPriority(&middle, cudaStreamDefault, -3));
    ck_assert_cuda_ok(cudaStreamGetPriority(low, &priority));
    ck_assert_int_eq(priority, least);
    ck_assert_cuda_ok(cudaStreamGetPriority_ptsz(high, &priority));
    ck_assert_int_eq(priority, greatest);
    ck_assert_cuda_ok(cudaStreamGetPriority(middle, &priority));
    ck_assert_int_eq(priority, -3);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamGetPriority(middle, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamCreateWithPriority(&low, 0x2, 0));
    ck_assert_cuda_ok(cudaStreamDestroy(low));
    ck_assert_cuda_ok(cudaStreamDestroy(high));
    ck_assert_cuda_ok(cudaStreamDestroy(middle));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamGetPriority(middle, &priority));
}
END_TEST

START_TEST(stream_capture_is_not_supported)
{
    cudaStream_t stream;
    cudaGraph_t graph = NULL;
    enum cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaStreamIsCapturing(stream, &status));
    ck_assert_int_eq(status, cudaStreamCaptureStatusNone);
    status = cudaStreamCaptureStatusActive;
    ck_assert_cuda_ok(cudaStreamIsCapturing_ptsz(NULL, &status));
    ck_assert_int_eq(status, cudaStreamCaptureStatusNone);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamIsCapturing(stream, NULL));
    ck_assert_cuda_fails(cudaErrorNotSupported,
                cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    ck_assert_cuda_fails(cudaErrorNotSupported,
                cudaStreamBeginCapture_ptsz(stream, cudaStreamCaptureModeRelaxed));
    ck_assert_cuda_fails(cudaErrorNotSupported, cudaStreamEndCapture(stream, &graph));
    ck_assert_cuda_fails(cudaErrorNotSupported, cudaStreamEndCapture_ptsz(stream, &graph));
    ck_assert_ptr_null(graph);
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamIsCapturing(stream, &status));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle,
                cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
}
END_TEST

START_TEST(stream_wait_event_validates)
{
    cudaStream_t stream;
    cudaEvent_t event;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaEventCreate(&event));
    ck_assert_cuda_ok(cudaStreamWaitEvent(stream, event, 0));
    ck_assert_cuda_ok(cudaEventRecord(event, stream));
    ck_assert_cuda_ok(cudaStreamWaitEvent(NULL, event, cudaEventWaitExternal));
    ck_assert_cuda_ok(cudaStreamWaitEvent_ptsz(cudaStreamPerThread, event, 0));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaStreamWaitEvent(stream, event, 0x10));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamWaitEvent(stream, NULL, 0));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamWaitEvent(stream, bogus_event(), 0));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamWaitEvent(bogus_stream(), event, 0));
    ck_assert_cuda_ok(cudaEventDestroy(event));
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
}
END_TEST

/* ---- events ---- */

START_TEST(event_lifecycle_and_handle_checks)
{
    cudaEvent_t event, blocking;
    cudaStream_t stream;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaEventCreate(&event));
    ck_assert_cuda_ok(cudaEventCreateWithFlags(&blocking, cudaEventBlockingSync | cudaEventDisableTiming));
    ck_assert_cuda_ok(cudaEventQuery(event));
    ck_assert_cuda_ok(cudaEventSynchronize(event));
    ck_assert_cuda_ok(cudaEventRecord(event, NULL));
    ck_assert_cuda_ok(cudaEventRecord_ptsz(event, stream));
    ck_assert_cuda_ok(cudaEventRecordWithFlags(blocking, stream, cudaEventRecordExternal));
    ck_assert_cuda_ok(cudaEventRecordWithFlags_ptsz(blocking, cudaStreamPerThread, 0));
    ck_assert_cuda_ok(cudaEventQuery(event));
    ck_assert_cuda_ok(cudaEventSynchronize(blocking));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaEventRecordWithFlags(event, stream, 0x8));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventRecord(event, bogus_stream()));
    ck_assert_cuda_ok(cudaEventDestroy(event));
    ck_assert_cuda_ok(cudaEventDestroy(blocking));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventDestroy(event));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventRecord(event, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventQuery(event));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventSynchronize(NULL));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventDestroy(NULL));
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
}
END_TEST

START_TEST(event_create_flags)
{
    cudaEvent_t event;
    ck_assert_cuda_ok(cudaEventCreateWithFlags(&event, cudaEventInterprocess | cudaEventDisableTiming));
    ck_assert_cuda_ok(cudaEventDestroy(event));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaEventCreateWithFlags(&event, cudaEventInterprocess));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaEventCreateWithFlags(&event, 0x40));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaEventCreate(NULL));
}
END_TEST

static void sleep_ms(long ms)
{
    struct timespec pause = { 0, ms * 1000000L };
    while (nanosleep(&pause, &pause) != 0)
        continue;
}

START_TEST(event_elapsed_time_is_monotonic)
{
    cudaEvent_t first, second, third;
    float first_to_second = -1, first_to_third = -1, backwards = 1;
    ck_assert_cuda_ok(cudaEventCreate(&first));
    ck_assert_cuda_ok(cudaEventCreate(&second));
    ck_assert_cuda_ok(cudaEventCreate(&third));
    ck_assert_cuda_ok(cudaEventRecord(first, NULL));
    sleep_ms(3);
    ck_assert_cuda_ok(cudaEventRecord(second, NULL));
    ck_assert_cuda_ok(cudaEventRecord(third, NULL));
    ck_assert_cuda_ok(cudaEventElapsedTime(&first_to_second, first, second));
    ck_assert_cuda_ok(cudaEventElapsedTime(&first_to_third, first, third));
    ck_assert_cuda_ok(cudaEventElapsedTime(&backwards, third, first));
    ck_assert_float_ge(first_to_second, 2.99f);
    ck_assert_float_lt(first_to_second, 1000.0f);
    ck_assert_float_ge(first_to_third, first_to_second);
    ck_assert_float_eq(backwards, -first_to_third);
    ck_assert_cuda_ok(cudaEventDestroy(first));
    ck_assert_cuda_ok(cudaEventDestroy(second));
    ck_assert_cuda_ok(cudaEventDestroy(third));
}
END_TEST

START_TEST(event_elapsed_time_errors)
{
    cudaEvent_t recorded, unrecorded, untimed;
    float ms = 0;
    ck_assert_cuda_ok(cudaEventCreate(&recorded));
    ck_assert_cuda_ok(cudaEventCreate(&unrecorded));
    ck_assert_cuda_ok(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming));
    ck_assert_cuda_ok(cudaEventRecord(recorded, NULL));
    ck_assert_cuda_ok(cudaEventRecord(untimed, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, recorded, unrecorded));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, unrecorded, recorded));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, recorded, untimed));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, NULL, recorded));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaEventElapsedTime(NULL, recorded, recorded));
    ck_assert_cuda_ok(cudaEventElapsedTime(&ms, recorded, recorded));
    ck_assert_float_eq(ms, 0.0f);
    ck_assert_cuda_ok(cudaEventDestroy(recorded));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, recorded, recorded));
    ck_assert_cuda_ok(cudaEventDestroy(unrecorded));
    ck_assert_cuda_ok(cudaEventDestroy(untimed));
}
END_TEST

/* ---- device ---- */

START_TEST(device_selection_and_count)
{
    int device = -1, count = -1;
    ck_assert_cuda_ok(cudaGetDevice(&device));
    ck_assert_int_eq(device, 0);
    ck_assert_cuda_ok(cudaGetDeviceCount(&count));
    ck_assert_int_eq(count, 1);
    ck_assert_cuda_ok(cudaSetDevice(0));
    ck_assert_cuda_fails(cudaErrorInvalidDevice, cudaSetDevice(1));
    ck_assert_cuda_fails(cudaErrorInvalidDevice, cudaSetDevice(-1));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaGetDevice(NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaGetDeviceCount(NULL));
    ck_assert_cuda_ok(cudaDeviceSynchronize());
}
END_TEST

START_TEST(device_properties_and_attributes_agree)
{
    struct cudaDeviceProp prop;
    int value = -1;
    size_t free_bytes, total_bytes;
    ck_assert_cuda_ok(cudaGetDeviceProperties(&prop, 0));
    ck_assert_str_eq(prop.name, "convbn CPU emulation");
    ck_assert_int_eq(prop.major, 9);
    ck_assert_int_eq(prop.minor, 0);
    ck_assert_int_eq(prop.warpSize, 32);
    ck_assert_int_eq(prop.maxThreadsPerBlock, 1024);
    ck_assert_int_gt(prop.multiProcessorCount, 0);
    ck_assert_cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes));
    ck_assert_uint_eq(prop.totalGlobalMem, total_bytes);

    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMajor, 0));
    ck_assert_int_eq(value, prop.major);
    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMinor, 0));
    ck_assert_int_eq(value, prop.minor);
    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, 0));
    ck_assert_int_eq(value, prop.multiProcessorCount);
    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    ck_assert_uint_eq((size_t)value, prop.sharedMemPerBlockOptin);
    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrMaxBlockDimZ, 0));
    ck_assert_int_eq(value, prop.maxThreadsDim[2]);
    ck_assert_cuda_ok(cudaDeviceGetAttribute(&value, cudaDevAttrKernelExecTimeout, 0));
    ck_assert_int_eq(value, 0);
}
END_TEST

START_TEST(device_query_errors)
{
    struct cudaDeviceProp prop;
    int value;
    ck_assert_cuda_fails(cudaErrorInvalidDevice, cudaGetDeviceProperties(&prop, 1));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaGetDeviceProperties(NULL, 0));
    ck_assert_cuda_fails(cudaErrorInvalidDevice,
                cudaDeviceGetAttribute(&value, cudaDevAttrWarpSize, 2));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaDeviceGetAttribute(NULL, cudaDevAttrWarpSize, 0));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaDeviceGetAttribute(&value, cudaDevAttrMax, 0));
    ck_assert_cuda_fails(cudaErrorInvalidValue,
                cudaDeviceGetAttribute(&value, (enum cudaDeviceAttr)0, 0));
}
END_TEST

START_TEST(versions_come_from_the_header)
{
    int runtime = 0, driver = 0;
    ck_assert_cuda_ok(cudaRuntimeGetVersion(&runtime));
    ck_assert_cuda_ok(cudaDriverGetVersion(&driver));
    ck_assert_int_eq(runtime, CUDART_VERSION);
    ck_assert_int_eq(driver, CUDART_VERSION);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaRuntimeGetVersion(NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaDriverGetVersion(NULL));
}
END_TEST

START_TEST(device_reset_releases_everything_but_kernels)
{
    void *device, *pinned;
    cudaStream_t stream;
    cudaEvent_t event;
    size_t free_bytes, total_bytes;
    register_add();
    ck_assert_cuda_ok(cudaMalloc(&device, 4096));
    ck_assert_cuda_ok(cudaMallocHost(&pinned, 4096));
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaEventCreate(&event));
    ck_assert_cuda_ok(cudaDeviceReset());
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFree(device));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFreeHost(pinned));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaStreamSynchronize(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaEventQuery(event));
    ck_assert_cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes));
    ck_assert_uint_eq(free_bytes, total_bytes);

    struct add_case test;
    add_case_init(&test, 8, 5);
    void *args[] = { &test.dev_a, &test.dev_b, &test.dev_c, &test.n };
    ck_assert_cuda_ok(cudaLaunchKernel(&add_kernel_symbol, (dim3){ 1, 1, 1 }, (dim3){ 8, 1, 1 }, args,
                               0, NULL));
    add_case_verify(&test);
    add_case_free(&test);
}
END_TEST

/* ---- errors ---- */

START_TEST(error_names_and_strings)
{
    static const struct {
        cudaError_t code;
        const char *name;
        const char *message;
    } known[] = {
        { cudaSuccess, "cudaSuccess", "no error" },
        { cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument" },
        { cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory" },
        { cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
          "invalid configuration argument" },
        { cudaErrorInvalidPitchValue, "cudaErrorInvalidPitchValue", "invalid pitch argument" },
        { cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
          "invalid copy direction for memcpy" },
        { cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction",
          "invalid device function" },
        { cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal" },
        { cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle",
          "invalid resource handle" },
        { cudaErrorNotReady, "cudaErrorNotReady", "device not ready" },
        { cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported" },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        ck_assert_str_eq(cudaGetErrorName(known[i].code), known[i].name);
        ck_assert_str_eq(cudaGetErrorString(known[i].code), known[i].message);
    }
    ck_assert_str_eq(cudaGetErrorName((cudaError_t)12345), "unrecognized error code");
    ck_assert_str_eq(cudaGetErrorString((cudaError_t)12345), "unrecognized error code");
}
END_TEST

START_TEST(last_error_is_sticky_until_read)
{
    void *p;
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    ck_assert_int_eq(cudaSetDevice(3), cudaErrorInvalidDevice);
    ck_assert_int_eq(cudaMalloc(&p, 0), cudaSuccess);
    ck_assert_int_eq(cudaPeekAtLastError(), cudaErrorInvalidDevice);
    ck_assert_int_eq(cudaPeekAtLastError(), cudaErrorInvalidDevice);
    ck_assert_int_eq(cudaStreamSynchronize(bogus_stream()), cudaErrorInvalidResourceHandle);
    ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidResourceHandle);
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    ck_assert_int_eq(cudaPeekAtLastError(), cudaSuccess);
}
END_TEST

static void *fail_in_thread(void *unused)
{
    (void)unused;
    (void)cudaSetDevice(7);
    return (void *)(intptr_t)cudaPeekAtLastError();
}

START_TEST(last_error_is_per_thread)
{
    pthread_t thread;
    void *thread_error;
    ck_assert_int_eq(cudaFree((void *)&thread), cudaErrorInvalidValue);
    ck_assert_int_eq(pthread_create(&thread, NULL, fail_in_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(thread, &thread_error), 0);
    ck_assert_int_eq((cudaError_t)(intptr_t)thread_error, cudaErrorInvalidDevice);
    ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidValue);
}
END_TEST

/* ---- launches ---- */

START_TEST(launch_kernel_runs_registered_host_function)
{
    struct add_case test;
    cudaStream_t stream;
    register_add();
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    add_case_init(&test, 1000, 1);
    void *args[] = { &test.dev_a, &test.dev_b, &test.dev_c, &test.n };
    last_launch.calls = 0;
    ck_assert_cuda_ok(cudaLaunchKernel(&add_kernel_symbol, (dim3){ 4, 2, 1 }, (dim3){ 128, 2, 1 }, args,
                               256, stream));
    ck_assert_int_eq(last_launch.calls, 1);
    ck_assert_uint_eq(last_launch.grid.x, 4);
    ck_assert_uint_eq(last_launch.grid.y, 2);
    ck_assert_uint_eq(last_launch.block.x, 128);
    ck_assert_uint_eq(last_launch.block.y, 2);
    ck_assert_ptr_eq(last_launch.stream, stream);
    add_case_verify(&test);
    add_case_free(&test);
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
}
END_TEST

START_TEST(launch_kernel_ex_and_per_thread_variants)
{
    struct add_case test;
    cudaLaunchAttribute attribute = { .id = cudaLaunchAttributePriority, .val.priority = 0 };
    cudaLaunchConfig_t config = { .gridDim = { 2, 1, 1 }, .blockDim = { 64, 1, 1 },
                                  .stream = cudaStreamPerThread, .attrs = &attribute,
                                  .numAttrs = 1 };
    register_add();
    add_case_init(&test, 100, 2);
    void *args[] = { &test.dev_a, &test.dev_b, &test.dev_c, &test.n };
    last_launch.calls = 0;
    ck_assert_cuda_ok(cudaLaunchKernelExC(&config, &add_kernel_symbol, args));
    ck_assert_int_eq(last_launch.calls, 1);
    ck_assert_ptr_eq(last_launch.stream, cudaStreamPerThread);
    add_case_verify(&test);

    ck_assert_cuda_ok(cudaMemset(test.dev_c, 0, 100 * sizeof(float)));
    config.stream = NULL;
    ck_assert_cuda_ok(cudaLaunchKernelExC_ptsz(&config, &add_kernel_symbol, args));
    add_case_verify(&test);

    ck_assert_cuda_ok(cudaMemset(test.dev_c, 0, 100 * sizeof(float)));
    ck_assert_cuda_ok(cudaLaunchKernel_ptsz(&add_kernel_symbol, (dim3){ 1, 1, 1 }, (dim3){ 100, 1, 1 },
                                    args, 0, NULL));
    add_case_verify(&test);
    ck_assert_int_eq(last_launch.calls, 3);
    add_case_free(&test);
}
END_TEST

START_TEST(launch_rejects_bad_functions_streams_and_configs)
{
    struct add_case test;
    const dim3 one = { 1, 1, 1 };
    register_add();
    add_case_init(&test, 4, 3);
    void *args[] = { &test.dev_a, &test.dev_b, &test.dev_c, &test.n };
    static const dim3 bad_blocks[] = { { 0, 1, 1 }, { 1025, 1, 1 }, { 32, 32, 2 }, { 1, 1, 65 } };
    static const dim3 bad_grids[] = { { 0, 1, 1 }, { 1, 65536, 1 }, { 1, 1, 0 } };
    last_launch.calls = 0;
    ck_assert_cuda_fails(cudaErrorInvalidDeviceFunction,
                cudaLaunchKernel(&unregistered_symbol, one, one, args, 0, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidDeviceFunction, cudaLaunchKernel(NULL, one, one, args, 0, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle,
                cudaLaunchKernel(&add_kernel_symbol, one, one, args, 0, bogus_stream()));
    for (size_t i = 0; i < sizeof bad_blocks / sizeof bad_blocks[0]; i++)
        ck_assert_cuda_fails(cudaErrorInvalidConfiguration,
                    cudaLaunchKernel(&add_kernel_symbol, one, bad_blocks[i], args, 0, NULL));
    for (size_t i = 0; i < sizeof bad_grids / sizeof bad_grids[0]; i++)
        ck_assert_cuda_fails(cudaErrorInvalidConfiguration,
                    cudaLaunchKernel(&add_kernel_symbol, bad_grids[i], one, args, 0, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue,
                cudaLaunchKernel(&add_kernel_symbol, one, one, NULL, 0, NULL));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaLaunchKernelExC(NULL, &add_kernel_symbol, args));
    cudaLaunchConfig_t config = { .gridDim = one, .blockDim = one, .numAttrs = 2 };
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaLaunchKernelExC(&config, &add_kernel_symbol, args));
    config.numAttrs = 0;
    ck_assert_cuda_fails(cudaErrorInvalidDeviceFunction,
                cudaLaunchKernelExC(&config, &unregistered_symbol, args));
    ck_assert_int_eq(last_launch.calls, 0);
    ck_assert_cuda_ok(cudaLaunchKernel(&add_kernel_symbol, (dim3){ 2147483647u, 65535, 65535 },
                               (dim3){ 1024, 1, 1 }, args, 0, NULL));
    ck_assert_int_eq(last_launch.calls, 1);
    add_case_free(&test);
}
END_TEST

START_TEST(func_get_param_info_reports_layout)
{
    size_t offset = 99, size = 99;
    register_add();
    for (size_t i = 0; i < 4; i++) {
        ck_assert_cuda_ok(cudaFuncGetParamInfo(&add_kernel_symbol, i, &offset, &size));
        ck_assert_uint_eq(offset, add_offsets[i]);
        ck_assert_uint_eq(size, add_sizes[i]);
    }
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFuncGetParamInfo(&add_kernel_symbol, 4, &offset, &size));
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFuncGetParamInfo(&add_kernel_symbol, 0, NULL, &size));
    ck_assert_cuda_fails(cudaErrorInvalidDeviceFunction,
                cudaFuncGetParamInfo(&unregistered_symbol, 0, &offset, &size));
}
END_TEST

static void count_host(void **args, dim3 grid, dim3 block, cudaStream_t stream)
{
    (void)grid;
    (void)block;
    (void)stream;
    ck_assert_ptr_null(args);
    last_launch.calls += 100;
}

START_TEST(register_kernel_validates_and_replaces)
{
    const size_t offsets[] = { 0 }, sizes[] = { 0 }, one_size[] = { 16 };
    size_t offset, size;
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    ck_assert_int_eq(emu_register_kernel(NULL, add_host, 0, NULL, NULL), cudaErrorInvalidValue);
    ck_assert_int_eq(emu_register_kernel(&unregistered_symbol, NULL, 0, NULL, NULL),
                     cudaErrorInvalidValue);
    ck_assert_int_eq(emu_register_kernel(&unregistered_symbol, add_host, 1, NULL, sizes),
                     cudaErrorInvalidValue);
    ck_assert_int_eq(emu_register_kernel(&unregistered_symbol, add_host, 1, offsets, sizes),
                     cudaErrorInvalidValue);
    ck_assert_int_eq(cudaPeekAtLastError(), cudaSuccess);
    ck_assert_cuda_fails(cudaErrorInvalidDeviceFunction,
                cudaLaunchKernel(&unregistered_symbol, (dim3){ 1, 1, 1 }, (dim3){ 1, 1, 1 },
                                 NULL, 0, NULL));

    register_add();
    ck_assert_int_eq(emu_register_kernel(&add_kernel_symbol, count_host, 0, NULL, NULL),
                     cudaSuccess);
    last_launch.calls = 0;
    ck_assert_cuda_ok(cudaLaunchKernel(&add_kernel_symbol, (dim3){ 1, 1, 1 }, (dim3){ 1, 1, 1 }, NULL, 0,
                               NULL));
    ck_assert_int_eq(last_launch.calls, 100);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaFuncGetParamInfo(&add_kernel_symbol, 0, &offset, &size));
    ck_assert_int_eq(emu_register_kernel(&add_kernel_symbol, count_host, 1, offsets, one_size),
                     cudaSuccess);
    ck_assert_cuda_ok(cudaFuncGetParamInfo(&add_kernel_symbol, 0, &offset, &size));
    ck_assert_uint_eq(size, 16);
}
END_TEST

START_TEST(host_kernel_may_call_back_into_runtime)
{
    unsigned char *device, back[64];
    int value = 0x5A;
    size_t count = 48;
    register_fill();
    ck_assert_cuda_ok(cudaMalloc((void **)&device, sizeof back));
    ck_assert_cuda_ok(cudaMemset(device, 0, sizeof back));
    void *args[] = { &device, &value, &count };
    last_launch.calls = 0;
    ck_assert_cuda_ok(cudaLaunchKernel(&fill_kernel_symbol, (dim3){ 1, 1, 1 }, (dim3){ 32, 1, 1 }, args,
                               0, NULL));
    ck_assert_int_eq(last_launch.calls, 1);
    ck_assert_cuda_ok(cudaMemcpy(back, device, sizeof back, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < sizeof back; i++)
        ck_assert_uint_eq(back[i], i < count ? 0x5A : 0);
    ck_assert_cuda_ok(cudaFree(device));
}
END_TEST

static void CUDART_CB bump_counter(void *data)
{
    ++*(int *)data;
}

START_TEST(launch_host_func_runs_at_once)
{
    int counter = 0;
    cudaStream_t stream;
    ck_assert_cuda_ok(cudaStreamCreate(&stream));
    ck_assert_cuda_ok(cudaLaunchHostFunc(stream, bump_counter, &counter));
    ck_assert_int_eq(counter, 1);
    ck_assert_cuda_ok(cudaLaunchHostFunc_ptsz(NULL, bump_counter, &counter));
    ck_assert_int_eq(counter, 2);
    ck_assert_cuda_fails(cudaErrorInvalidValue, cudaLaunchHostFunc(stream, NULL, &counter));
    ck_assert_cuda_ok(cudaStreamDestroy(stream));
    ck_assert_cuda_fails(cudaErrorInvalidResourceHandle, cudaLaunchHostFunc(stream, bump_counter, &counter));
    ck_assert_int_eq(counter, 2);
}
END_TEST

/* ---- threads ---- */

enum { WORKER_THREADS = 4, WORKER_ITERATIONS = 300, LIVE_BLOCKS = 16 };

/* Holds LIVE_BLOCKS allocations at once, checks each through the allocation table and
 * frees them in an order other than allocation order.  Returns NULL or a failure message. */
static const char *churn_allocations(unsigned seed)
{
    unsigned char *blocks[LIVE_BLOCKS];
    for (int i = 0; i < LIVE_BLOCKS; i++) {
        size_t size = 16 + (seed * 13u + (unsigned)i * 101u) % 3000u;
        if (cudaMalloc((void **)&blocks[i], size) != cudaSuccess)
            return "malloc failed";
        blocks[i][size - 1] = (unsigned char)i;
    }
    for (int i = 0; i < LIVE_BLOCKS; i++) {
        struct cudaPointerAttributes attributes;
        if (cudaPointerGetAttributes(&attributes, blocks[i] + 1) != cudaSuccess ||
            attributes.type != cudaMemoryTypeDevice || attributes.devicePointer != blocks[i] + 1)
            return "allocation missing from the table";
    }
    for (int i = 0; i < LIVE_BLOCKS; i++)
        if (cudaFree(blocks[(i * 7) % LIVE_BLOCKS]) != cudaSuccess)
            return "free failed";
    return NULL;
}

/* Launches add on a fresh stream, orders it with an event and checks the sums.  Returns
 * NULL or a failure message. */
static const char *launch_round(unsigned seed)
{
    struct add_case test;
    cudaStream_t stream;
    cudaEvent_t event;
    add_case_init(&test, 1 + (int)(seed % 200u), seed);
    if (cudaStreamCreate(&stream) != cudaSuccess || cudaEventCreate(&event) != cudaSuccess)
        return "stream or event creation failed";
    void *args[] = { &test.dev_a, &test.dev_b, &test.dev_c, &test.n };
    if (cudaLaunchKernel(&add_kernel_symbol, (dim3){ 1, 1, 1 }, (dim3){ 256, 1, 1 }, args, 0,
                         stream) != cudaSuccess)
        return "launch failed";
    if (cudaEventRecord(event, stream) != cudaSuccess ||
        cudaStreamWaitEvent(NULL, event, 0) != cudaSuccess)
        return "event record or wait failed";
    add_case_verify(&test);
    add_case_free(&test);
    if (cudaEventDestroy(event) != cudaSuccess || cudaStreamDestroy(stream) != cudaSuccess)
        return "stream or event destruction failed";
    return NULL;
}

/* One worker thread.  Returns NULL, or a message naming the first failure. */
static void *worker(void *seed_pointer)
{
    unsigned seed = (unsigned)(uintptr_t)seed_pointer;
    for (unsigned round = 0; round < WORKER_ITERATIONS; round++) {
        const char *failure = churn_allocations(seed * 1000u + round);
        if (!failure)
            failure = launch_round(seed * 1000u + round);
        if (failure)
            return (void *)failure;
    }
    return last_launch.calls == WORKER_ITERATIONS ? NULL : "wrong number of launches";
}

START_TEST(concurrent_malloc_free_and_launch)
{
    pthread_t threads[WORKER_THREADS];
    size_t free_bytes, total_bytes;
    register_add();
    for (uintptr_t i = 0; i < WORKER_THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, worker, (void *)(i + 1)), 0);
    for (int i = 0; i < WORKER_THREADS; i++) {
        void *failure;
        ck_assert_int_eq(pthread_join(threads[i], &failure), 0);
        ck_assert_msg(failure == NULL, "worker %d: %s", i, (const char *)failure);
    }
    ck_assert_cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes));
    ck_assert_uint_eq(free_bytes, total_bytes);
}
END_TEST

/* ---- suite ---- */

static Suite *cudart_suite(void)
{
    Suite *suite = suite_create("cudart emulation");
    TCase *memory = tcase_create("memory");
    tcase_add_test(memory, malloc_is_aligned_and_writable);
    tcase_add_test(memory, fresh_device_memory_is_not_zeroed);
    tcase_add_test(memory, malloc_zero_size_and_null_arguments);
    tcase_add_test(memory, free_rejects_unknown_pointers);
    tcase_add_test(memory, mem_get_info_tracks_device_allocations);
    tcase_add_test(memory, malloc_beyond_device_capacity_fails);
    tcase_add_test(memory, malloc_async_and_free_async);
    tcase_add_test(memory, host_alloc_flags);
    tcase_add_test(memory, pointer_attributes_by_allocation_kind);
    tcase_add_test(memory, memcpy_every_kind_copies_bytes);
    tcase_add_test(memory, memcpy_rejects_bad_ranges_and_kinds);
    tcase_add_test(memory, memset_sets_exact_range);
    tcase_add_test(memory, memset_rejects_bad_ranges);
    tcase_add_test(memory, memcpy2d_copies_rows_and_keeps_padding);
    tcase_add_test(memory, memcpy2d_rejects_bad_pitches_and_ranges);
    suite_add_tcase(suite, memory);

    TCase *streams = tcase_create("streams and events");
    tcase_add_test(streams, stream_lifecycle_and_handle_checks);
    tcase_add_test(streams, builtin_streams_are_always_valid);
    tcase_add_test(streams, stream_priorities_are_clamped);
    tcase_add_test(streams, stream_capture_is_not_supported);
    tcase_add_test(streams, stream_wait_event_validates);
    tcase_add_test(streams, event_lifecycle_and_handle_checks);
    tcase_add_test(streams, event_create_flags);
    tcase_add_test(streams, event_elapsed_time_is_monotonic);
    tcase_add_test(streams, event_elapsed_time_errors);
    suite_add_tcase(suite, streams);

    TCase *device = tcase_create("device and errors");
    tcase_add_test(device, device_selection_and_count);
    tcase_add_test(device, device_properties_and_attributes_agree);
    tcase_add_test(device, device_query_errors);
    tcase_add_test(device, versions_come_from_the_header);
    tcase_add_test(device, device_reset_releases_everything_but_kernels);
    tcase_add_test(device, error_names_and_strings);
    tcase_add_test(device, last_error_is_sticky_until_read);
    tcase_add_test(device, last_error_is_per_thread);
    suite_add_tcase(suite, device);

    TCase *launch = tcase_create("launches");
    tcase_add_test(launch, launch_kernel_runs_registered_host_function);
    tcase_add_test(launch, launch_kernel_ex_and_per_thread_variants);
    tcase_add_test(launch, launch_rejects_bad_functions_streams_and_configs);
    tcase_add_test(launch, func_get_param_info_reports_layout);
    tcase_add_test(launch, register_kernel_validates_and_replaces);
    tcase_add_test(launch, host_kernel_may_call_back_into_runtime);
    tcase_add_test(launch, launch_host_func_runs_at_once);
    tcase_add_test(launch, concurrent_malloc_free_and_launch);
    suite_add_tcase(suite, launch);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(cudart_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
