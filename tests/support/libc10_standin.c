/* A stand-in for PyTorch's libc10 (soname libc10.so) used by the liveness tests: it exports
 * the same mangled c10::GradMode::is_enabled() and, for the tests, a setter.  Grad mode is
 * per thread, as in c10.  The initial value comes from CONVBN_TEST_GRAD_MODE (0/1, default
 * 1 like PyTorch). */
#include <stdbool.h>
#include <stdlib.h>

static __thread int grad_mode = -1;

__attribute__((visibility("default"))) bool _ZN3c108GradMode10is_enabledEv(void)
{
    if (grad_mode < 0) {
        const char *env = getenv("CONVBN_TEST_GRAD_MODE");
        grad_mode = env ? atoi(env) != 0 : 1;
    }
    return grad_mode != 0;
}

/* Sets grad mode for the calling thread (what torch.no_grad() does). */
__attribute__((visibility("default"))) void standin_set_grad_enabled(int enabled)
{
    grad_mode = enabled != 0;
}
