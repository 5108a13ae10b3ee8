/* Host element conversions for FLOAT, HALF and BFLOAT16 (cudnnDataType_t values): IEEE
 * binary16 and bfloat16 from their bit layouts, round-to-nearest-even, canonical NaN 0x7fff
 * like the GPU's cvt.rn instructions.  Shared by the fold's host twin and CONVBN_VERIFY.
 * Owns no state. */
#include <cudnn.h>
#include <stdint.h>
#include <string.h>

#include "convbn/dtype.h"

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        float mag = (float)mant * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -mag : mag;
    }
    if (exp == 31)
        return bits_float(sign | 0x7f800000 | mant << 13);
    return bits_float(sign | (exp + 112) << 23 | mant << 13);
}

/* Rounds a magnitude below the smallest normal half (2^-14) to a subnormal or zero. */
static uint16_t half_subnormal(uint32_t abs)
{
    uint32_t exp = abs >> 23;
    if (exp < 102) /* below 2^-25: rounds to zero */
        return 0;
    uint32_t mant = (abs & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp; /* 14..24 */
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1)))
        q++;
    return (uint16_t)q;
}

static uint16_t float_to_half(float f)
{
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000)
        return 0x7fff;
    if (abs >= 0x477ff000) /* 65520 and above round to infinity */
        return sign | 0x7c00;
    if (abs >= 0x38800000) /* normal: re-bias, round on the 13 dropped bits */
        return sign | (uint16_t)((abs + 0xfff + ((abs >> 13) & 1) - 0x38000000) >> 13);
    return sign | half_subnormal(abs);
}

static float bf16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

static uint16_t float_to_bf16(float f)
{
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return 0x7fff;
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float convbn_element_load(const void *p, int type, long long i)
{
    switch (type) {
    case CUDNN_DATA_HALF:
        return half_to_float(((const uint16_t *)p)[i]);
    case CUDNN_DATA_BFLOAT16:
        return bf16_to_float(((const uint16_t *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

void convbn_element_store(void *p, int type, long long i, float v)
{
    switch (type) {
    case CUDNN_DATA_HALF:
        ((uint16_t *)p)[i] = float_to_half(v);
        break;
    case CUDNN_DATA_BFLOAT16:
        ((uint16_t *)p)[i] = float_to_bf16(v);
        break;
    default:
        ((float *)p)[i] = v;
    }
}

