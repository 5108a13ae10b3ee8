/* The liveness oracle: asks the framework whether the calling thread records gradients
 * (DESIGN.md invariant 3).  Only PyTorch is known: libc10 exports
 * c10::GradMode::is_enabled(), which is false under torch.no_grad() and inference_mode.
 * The library is looked up among the objects already loaded (RTLD_NOLOAD), once; the
 * shim never loads it.  Owns the cached function pointer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "convbn/liveness.h"

#define GRAD_MODE_IS_ENABLED "_ZN3c108GradMode10is_enabledEv"

static pthread_once_t oracle_once = PTHREAD_ONCE_INIT;
static bool (*grad_mode_is_enabled)(void);

static void find_oracle(void)
{
    void *c10 = dlopen("libc10.so", RTLD_NOLOAD | RTLD_LAZY);
    if (c10)
        grad_mode_is_enabled = (bool (*)(void))dlsym(c10, GRAD_MODE_IS_ENABLED);
}

enum convbn_liveness convbn_liveness_query(void)
{
    pthread_once(&oracle_once, find_oracle);
    if (!grad_mode_is_enabled)
        return CONVBN_LIVENESS_NO_ORACLE;
    return grad_mode_is_enabled() ? CONVBN_LIVENESS_GRAD_MODE : CONVBN_LIVENESS_DEAD;
}
