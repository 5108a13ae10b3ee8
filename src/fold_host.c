/* Host twin of the fold kernel (src/fold_kernel.cu): the same fp32 arithmetic in the same
 * order, run on the calling thread over host memory.  The CPU emulation uses it in place of
 * the kernel, and tests check it against independent references.  Element conversions
 * (round-to-nearest-even, canonical NaN 0x7fff, as the GPU's cvt.rn instructions do) come
 * from dtype.c.  Must be compiled without FMA contraction (the Makefile passes
 * -ffp-contract=off), exactly as the kernel is built with --fmad=false. */
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "convbn/dtype.h"
#include "convbn/fold.h"

/* s[k], as the kernel's channel_s computes it. */
static float channel_s(const struct convbn_fold_args *a, long long k)
{
    return a->inv_std ? a->gamma[k] * a->var[k] : a->gamma[k] / sqrtf(a->var[k] + a->eps);
}

int convbn_fold_host(const struct convbn_fold_args *a)
{
    if (convbn_fold_check(a) != 0)
        return -1;
    for (long long k = 0; k < a->k; k++) {
        float scale = a->bn_alpha * a->conv_alpha * channel_s(a, k);
        for (long long i = k * a->per_k; i < (k + 1) * a->per_k; i++)
            convbn_element_store(a->w_out, a->w_type, i, convbn_element_load(a->w, a->w_type, i) * scale);
    }
    for (long long k = 0; k < a->k; k++) {
        float s = channel_s(a, k);
        float cb = a->conv_bias ? convbn_element_load(a->conv_bias, a->conv_bias_type, k) : 0.0f;
        convbn_element_store(a->b_out, a->b_type, k, a->bn_alpha * (a->beta[k] + s * (cb - a->mean[k])));
    }
    return 0;
}
