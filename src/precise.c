/* The precise flush rule (CONVBN_FLUSH=precise, DESIGN.md section 5): a kernel launch flushes
 * only when one of its 8-byte argument words points into a pending conv's buffers, an
 * asynchronous copy or set only when its ranges overlap them.  A kernel's parameter layout
 * (the size of each parameter) comes from cudaFuncGetParamInfo or cuFuncGetParamInfo and is
 * kept in a small bounded table, one entry per function, replaced round-robin when full.
 * A parameter smaller than 8 bytes cannot hold a pointer and is skipped; larger ones (structs
 * passed by value) are scanned word by word.  A layout that cannot be read means flush.
 * Owns the layout table; the planner owns the pending buffers it tests against. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "convbn/planner.h"
#include "convbn/precise.h"
#include "convbn/real.h"
#include "convbn/real_cudart.h"
#include "convbn/shim.h"

#define MAX_LAYOUTS 64
#define MAX_PARAMS 64
#define WORDS_PER_TEST 64

struct layout {
    const void *func;
    int driver; /* 1: a CUfunction, 0: a runtime function pointer */
    int nparams;
    uint32_t sizes[MAX_PARAMS];
};

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout layouts[MAX_LAYOUTS];
static int layouts_used, next_victim;

typedef CUresult (*cu_param_info_fn)(CUfunction, size_t, size_t *, size_t *);
static cu_param_info_fn real_cuFuncGetParamInfo;
static pthread_once_t cu_param_info_once = PTHREAD_ONCE_INIT;

static void resolve_cu_param_info(void)
{
    real_cuFuncGetParamInfo =
        (cu_param_info_fn)convbn_real_lookup("libcuda.so", "cuFuncGetParamInfo");
}

int convbn_precise_applies(void)
{
    return convbn_cfg.flush == CONVBN_FLUSH_PRECISE && !convbn_planner_idle() &&
           !convbn_guard_busy();
}

/* Stores parameter i's size; returns 0, 1 past the last parameter, -1 on failure. */
static int param_size(const struct layout *l, size_t i, size_t *size)
{
    size_t offset;
    if (l->driver) {
        CUresult st = real_cuFuncGetParamInfo((CUfunction)l->func, i, &offset, size);
        return st == CUDA_SUCCESS ? 0 : st == CUDA_ERROR_INVALID_VALUE && i > 0 ? 1 : -1;
    }
    cudaError_t st = real_cudaFuncGetParamInfo(l->func, i, &offset, size);
    return st == cudaSuccess ? 0 : st == cudaErrorInvalidValue && i > 0 ? 1 : -1;
}

/* Reads l->func's layout into l; returns 1, or 0 when it cannot be read. */
static int read_layout(struct layout *l)
{
    int end = 0;
    for (size_t i = 0; i <= MAX_PARAMS && !end; i++) {
        size_t size = 0;
        end = param_size(l, i, &size);
        if (end < 0 || (end == 0 && (i == MAX_PARAMS || size > UINT32_MAX)))
            return 0;
        if (end == 0)
            l->sizes[i] = (uint32_t)size;
        l->nparams = (int)i;
    }
    return 1;
}

/* Reads a layout through the runtime without disturbing the program's last error: the probe
 * past the last parameter fails, and that failure is cleared (none is pending before). */
static int read_runtime_layout(struct layout *l)
{
    if (!real_cudaFuncGetParamInfo || !real_cudaPeekAtLastError || !real_cudaGetLastError ||
        real_cudaPeekAtLastError() != cudaSuccess)
        return 0;
    int ok = read_layout(l);
    real_cudaGetLastError();
    return ok;
}

/* Finds or reads the layout of func into *out; returns 1, or 0 when it cannot be read. */
static int layout_of(const void *func, int driver, struct layout *out)
{
    int found = 0;
    pthread_mutex_lock(&layout_lock);
    for (int i = 0; i < layouts_used && !found; i++)
        if (layouts[i].func == func && layouts[i].driver == driver) {
            *out = layouts[i];
            found = 1;
        }
    pthread_mutex_unlock(&layout_lock);
    if (found)
        return 1;
    out->func = func;
    out->driver = driver;
    if (!func || !(driver ? read_layout(out) : read_runtime_layout(out)))
        return 0;
    pthread_mutex_lock(&layout_lock);
    int slot = layouts_used < MAX_LAYOUTS ? layouts_used++ : next_victim++ % MAX_LAYOUTS;
    layouts[slot] = *out;
    pthread_mutex_unlock(&layout_lock);
    return 1;
}

/* Returns 1 when an 8-byte word of the arguments (laid out as l says) points into a pending
 * buffer that work on stream could observe. */
static int args_touch(cudaStream_t stream, const struct layout *l, void **args)
{
    struct convbn_range words[WORDS_PER_TEST];
    int n = 0;
    if (!args && l->nparams > 0)
        return 1;
    for (int i = 0; i < l->nparams; i++) {
        for (size_t k = 0; k + 8 <= l->sizes[i]; k += 8) {
            uint64_t word;
            if (n == WORDS_PER_TEST && convbn_planner_touches(stream, words, n))
                return 1;
            n %= WORDS_PER_TEST;
            memcpy(&word, (const char *)args[i] + k, sizeof word);
            words[n++] = (struct convbn_range){(uintptr_t)word, 1};
        }
    }
    return n > 0 && convbn_planner_touches(stream, words, n);
}

int convbn_precise_kernel_touches(cudaStream_t stream, const void *func, void **args)
{
    struct layout l;
    return !layout_of(func, 0, &l) || args_touch(stream, &l, args);
}

int convbn_precise_cu_kernel_touches(cudaStream_t stream, CUfunction f, void **params,
                                     void **extra)
{
    struct layout l;
    pthread_once(&cu_param_info_once, resolve_cu_param_info);
    if (extra || !real_cuFuncGetParamInfo)
        return 1;
    return !layout_of(f, 1, &l) || args_touch(stream, &l, params);
}

int convbn_precise_copy_touches(cudaStream_t stream, const void *dst, const void *src,
                                size_t bytes)
{
    const struct convbn_range ranges[2] = {{(uintptr_t)dst, bytes}, {(uintptr_t)src, bytes}};
    return convbn_planner_touches(stream, ranges, src ? 2 : 1);
}
