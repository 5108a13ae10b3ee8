/* Finds the real CUDA runtime functions behind the shim's runtime hooks, the same way
 * real.c finds cuDNN's: dlsym(RTLD_NEXT), then the already loaded libcudart.so.* reopened
 * with RTLD_NOLOAD.  Owns the real_cuda* pointers; must not call any of them. */
#include <pthread.h>

#include "convbn/real.h"
#include "convbn/real_cudart.h"

#define CONVBN_CUDART(name, params, args, stream, post) cudaError_t(*real_##name) params;
#define CONVBN_CUDART_USE(name, params) cudaError_t(*real_##name) params;
#define CONVBN_CUDART_PRECISE(name, params, args, stream, touches) CONVBN_CUDART(name, params, args, stream, )
#include "convbn/cudart_hooks.def"
#undef CONVBN_CUDART_PRECISE
#undef CONVBN_CUDART
#undef CONVBN_CUDART_USE

static pthread_once_t cudart_once = PTHREAD_ONCE_INIT;

static void resolve_cudart(void)
{
#define CONVBN_CUDART(name, params, args, stream, post) \
    CONVBN_REAL_SET(name, (__typeof__(real_##name))convbn_real_lookup("libcudart.so", #name));
#define CONVBN_CUDART_USE(name, params) CONVBN_CUDART(name, params, , , )
#define CONVBN_CUDART_PRECISE(name, params, args, stream, touches) CONVBN_CUDART(name, params, args, stream, )
#include "convbn/cudart_hooks.def"
#undef CONVBN_CUDART_PRECISE
#undef CONVBN_CUDART
#undef CONVBN_CUDART_USE
}

int convbn_real_cudart_resolve(void)
{
    pthread_once(&cudart_once, resolve_cudart);
    return real_cudaMalloc && real_cudaFree && real_cudaMemcpy;
}
