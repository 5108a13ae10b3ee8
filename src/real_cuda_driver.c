/* Finds the real CUDA driver functions behind the shim's driver hooks, the same way
 * real_cudart.c finds the runtime's: dlsym(RTLD_NEXT), then the already loaded libcuda.so.*
 * reopened with RTLD_NOLOAD.  Never loads libcuda (invariant 5).  Owns the real_cu*
 * pointers; must not call any of them. */
#include <pthread.h>

#include "convbn/real.h"
#include "convbn/real_cuda_driver.h"

#define CONVBN_CUDA_DRIVER(name, params, args, stream, post) CUresult(*real_##name) params;
#define CONVBN_CUDA_DRIVER_PRECISE(name, params, args, stream, touches) CONVBN_CUDA_DRIVER(name, params, args, stream, )
#include "convbn/cuda_driver_hooks.def"
#undef CONVBN_CUDA_DRIVER_PRECISE
#undef CONVBN_CUDA_DRIVER

static pthread_once_t cuda_driver_once = PTHREAD_ONCE_INIT;

static void resolve_cuda_driver(void)
{
#define CONVBN_CUDA_DRIVER(name, params, args, stream, post) \
    CONVBN_REAL_SET(name, (__typeof__(real_##name))convbn_real_lookup("libcuda.so", #name));
#define CONVBN_CUDA_DRIVER_PRECISE(name, params, args, stream, touches) CONVBN_CUDA_DRIVER(name, params, args, stream, )
#include "convbn/cuda_driver_hooks.def"
#undef CONVBN_CUDA_DRIVER_PRECISE
#undef CONVBN_CUDA_DRIVER
}

int convbn_real_cuda_driver_resolve(void)
{
    pthread_once(&cuda_driver_once, resolve_cuda_driver);
    return real_cuLaunchKernel != NULL;
}
