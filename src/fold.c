/* Chooses how a fold runs: the CUDA kernel when a CUDA driver is loaded and usable, the host
 * twin when none is loaded (the CPU emulation, where device memory is host memory), and
 * neither when a driver is loaded but the kernel cannot run, because device pointers must
 * never be dereferenced on the host.  Owns the argument check both implementations share;
 * owns no state. */
#include <cudnn.h>
#include <limits.h>
#include <stddef.h>

#include "convbn/fold.h"

static int type_supported(int type)
{
    return type == CUDNN_DATA_FLOAT || type == CUDNN_DATA_HALF || type == CUDNN_DATA_BFLOAT16;
}

int convbn_fold_check(const struct convbn_fold_args *a)
{
    if (!a || !a->gamma || !a->beta || !a->mean || !a->var || !a->w || !a->w_out || !a->b_out)
        return -1;
    if (a->k < 1 || a->per_k < 1 || a->per_k > LLONG_MAX / a->k)
        return -1;
    if (!type_supported(a->w_type) || !type_supported(a->b_type))
        return -1;
    if (a->conv_bias && !type_supported(a->conv_bias_type))
        return -1;
    return 0;
}

int convbn_fold_run(const struct convbn_fold_args *a, void *stream)
{
    switch (convbn_fold_cuda_state()) {
    case CONVBN_FOLD_CUDA_ABSENT:
        return convbn_fold_host(a); /* checks the arguments itself */
    case CONVBN_FOLD_CUDA_READY:
        return convbn_fold_check(a) == 0 ? convbn_fold_cuda_run(a, stream) : -1;
    default:
        return -1;
    }
}

const char *convbn_fold_backend(void)
{
    switch (convbn_fold_cuda_state()) {
    case CONVBN_FOLD_CUDA_ABSENT:
        return "host";
    case CONVBN_FOLD_CUDA_READY:
        return "cuda";
    default:
        return "none";
    }
}
