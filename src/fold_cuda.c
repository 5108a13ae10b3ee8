/* Launches the fold kernel through the CUDA driver API.  Never loads libcuda (invariant 5): it
 * only reopens a libcuda.so.1 that is already loaded, with RTLD_NOLOAD, and resolves the few
 * driver functions it needs from that handle (so the shim's own driver hooks, if any, are not
 * reached).  Owns the driver function pointers and a small table that maps each CUDA context
 * (by its unique id where the driver has cuCtxGetId, else by address) to the kernel loaded
 * from the embedded fatbin, all under one lock.  Modules are never unloaded: they live as long
 * as their context.  Must not call the CUDA runtime. */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include "convbn/fold.h"

#define MAX_CONTEXTS 16
#define MAX_BLOCKS 4096

struct driver {
    int opened;
    int usable;
    __typeof__(cuCtxGetCurrent) *ctx_get_current;
    __typeof__(cuCtxGetId) *ctx_get_id; /* NULL before CUDA 12.0 */
    __typeof__(cuModuleLoadData) *module_load_data;
    __typeof__(cuModuleGetFunction) *module_get_function;
    __typeof__(cuLaunchKernel) *launch_kernel;
};

struct context_entry {
    CUcontext ctx;
    unsigned long long id;
    CUfunction fn; /* NULL: loading the module into this context failed */
};

static pthread_mutex_t fold_cuda_lock = PTHREAD_MUTEX_INITIALIZER;
static struct driver drv;
static struct context_entry contexts[MAX_CONTEXTS];
static unsigned n_contexts, next_victim;

/* Opens the loaded libcuda and resolves the driver functions, once libcuda is there.  Called
 * with the lock held.  Returns 1 when libcuda is loaded, 0 when it is not. */
/* Opens the already loaded libcuda.so.1, once; a miss is remembered for the life of the
 * process.  That is safe: a fold only follows a convolution the program already ran, so a
 * process on a real GPU has loaded the driver before its first fold, and a process without
 * it (the CPU emulation) never gets device memory that the host twin could not touch.
 * Returns 1 when the driver is open.  Called with the lock held. */
static int driver_missing; /* set once, read without the lock */

static int open_driver(void)
{
    if (drv.opened)
        return 1;
    if (__atomic_load_n(&driver_missing, __ATOMIC_RELAXED))
        return 0;
    void *lib = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
    if (!lib) {
        __atomic_store_n(&driver_missing, 1, __ATOMIC_RELAXED);
        return 0;
    }
    drv.ctx_get_current = (__typeof__(drv.ctx_get_current))dlsym(lib, "cuCtxGetCurrent");
    drv.ctx_get_id = (__typeof__(drv.ctx_get_id))dlsym(lib, "cuCtxGetId");
    drv.module_load_data = (__typeof__(drv.module_load_data))dlsym(lib, "cuModuleLoadData");
    drv.module_get_function = (__typeof__(drv.module_get_function))dlsym(lib, "cuModuleGetFunction");
    drv.launch_kernel = (__typeof__(drv.launch_kernel))dlsym(lib, "cuLaunchKernel");
    drv.usable = drv.ctx_get_current && drv.module_load_data && drv.module_get_function &&
                 drv.launch_kernel && convbn_fold_fatbin_size > 0;
    drv.opened = 1;
    return 1;
}

/* Returns the calling thread's current context, or NULL.  Called with the lock held. */
static CUcontext current_context(void)
{
    CUcontext ctx = NULL;
    if (drv.ctx_get_current(&ctx) != CUDA_SUCCESS)
        return NULL;
    return ctx;
}

static unsigned long long context_id(CUcontext ctx)
{
    unsigned long long id = 0;
    if (drv.ctx_get_id && drv.ctx_get_id(ctx, &id) != CUDA_SUCCESS)
        id = 0;
    return id;
}

/* Loads the fatbin into the calling thread's current context.  Returns the kernel, or NULL. */
static CUfunction load_kernel(void)
{
    CUmodule module;
    CUfunction fn;
    if (drv.module_load_data(&module, convbn_fold_fatbin) != CUDA_SUCCESS)
        return NULL;
    if (drv.module_get_function(&fn, module, CONVBN_FOLD_KERNEL_NAME) != CUDA_SUCCESS)
        return NULL;
    return fn;
}

/* Returns the table entry for ctx, filling a slot (the oldest when the table is full) with a
 * freshly loaded kernel on first use.  Called with the lock held. */
static struct context_entry *context_entry(CUcontext ctx)
{
    unsigned long long id = context_id(ctx);
    for (unsigned i = 0; i < n_contexts; i++)
        if (contexts[i].ctx == ctx && contexts[i].id == id)
            return &contexts[i];
    unsigned slot = n_contexts < MAX_CONTEXTS ? n_contexts++ : next_victim++ % MAX_CONTEXTS;
    contexts[slot] = (struct context_entry){.ctx = ctx, .id = id, .fn = load_kernel()};
    return &contexts[slot];
}

enum convbn_fold_cuda_state convbn_fold_cuda_state(void)
{
    enum convbn_fold_cuda_state state = CONVBN_FOLD_CUDA_UNUSABLE;
    if (__atomic_load_n(&driver_missing, __ATOMIC_RELAXED))
        return CONVBN_FOLD_CUDA_ABSENT; /* the common case under the emulation: no lock */
    pthread_mutex_lock(&fold_cuda_lock);
    if (!open_driver())
        state = CONVBN_FOLD_CUDA_ABSENT;
    else if (drv.usable && current_context())
        state = CONVBN_FOLD_CUDA_READY;
    pthread_mutex_unlock(&fold_cuda_lock);
    return state;
}

/* Returns the kernel for the calling thread's current context, or NULL. */
static CUfunction current_kernel(void)
{
    CUfunction fn = NULL;
    pthread_mutex_lock(&fold_cuda_lock);
    if (open_driver() && drv.usable) {
        CUcontext ctx = current_context();
        if (ctx)
            fn = context_entry(ctx)->fn;
    }
    pthread_mutex_unlock(&fold_cuda_lock);
    return fn;
}

int convbn_fold_cuda_run(const struct convbn_fold_args *a, void *stream)
{
    CUfunction fn = current_kernel();
    if (!fn)
        return -1;
    struct convbn_fold_args params = *a;
    void *kernel_params[] = {&params};
    long long items = a->k * a->per_k;
    long long blocks = (items + CONVBN_FOLD_BLOCK - 1) / CONVBN_FOLD_BLOCK;
    if (blocks > MAX_BLOCKS)
        blocks = MAX_BLOCKS;
    CUresult rc = drv.launch_kernel(fn, (unsigned)blocks, 1, 1, CONVBN_FOLD_BLOCK, 1, 1, 0,
                                    (CUstream)stream, kernel_params, NULL);
    return rc == CUDA_SUCCESS ? 0 : -1;
}
