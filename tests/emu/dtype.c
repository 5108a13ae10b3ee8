/* Element storage for the CPU emulation of cuDNN: loads and stores of FLOAT, HALF and
 * BFLOAT16 values at element offsets, with round-to-nearest-even conversions written
 * from the IEEE 754 bit layouts.  Every emulated compute function reads and writes
 * memory only through these helpers, so "stored as such, accumulated in fp32" holds
 * everywhere.  Owns no state. */
#include <math.h>
#include <string.h>

#include "emu_cudnn.h"

int emu_type_supported(cudnnDataType_t type)
{
    return type == CUDNN_DATA_FLOAT || type == CUDNN_DATA_HALF || type == CUDNN_DATA_BFLOAT16;
}

size_t emu_type_size(cudnnDataType_t type)
{
    switch (type) {
    case CUDNN_DATA_FLOAT: return 4;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16: return 2;
    default: return 0;
    }
}

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

uint16_t emu_float_to_bf16(float f)
{
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float emu_bf16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

uint16_t emu_float_to_half(float f)
{
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float mag = bits_float(abs);
        /* Adding 0.5 (2^-1) aligns the half-subnormal quantum 2^-24 to float's last bit,
         * so the FPU performs the round-to-nearest-even for us. */
        uint32_t r = float_bits(mag + 0.5f) - float_bits(0.5f);
        return (uint16_t)(sign | r);
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xc8000fffu + mant_odd; /* rebias exponent (-112 << 23) and round */
    return (uint16_t)(sign | (abs >> 13));
}

float emu_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu)
        return bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        float mag = ldexpf((float)mant, -24);
        return sign ? -mag : mag;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

float emu_load(const void *base, cudnnDataType_t type, ptrdiff_t index)
{
    switch (type) {
    case CUDNN_DATA_FLOAT: return ((const float *)base)[index];
    case CUDNN_DATA_HALF: return emu_half_to_float(((const uint16_t *)base)[index]);
    case CUDNN_DATA_BFLOAT16: return emu_bf16_to_float(((const uint16_t *)base)[index]);
    default: return NAN;
    }
}

void emu_store(void *base, cudnnDataType_t type, ptrdiff_t index, float v)
{
    switch (type) {
    case CUDNN_DATA_FLOAT: ((float *)base)[index] = v; break;
    case CUDNN_DATA_HALF: ((uint16_t *)base)[index] = emu_float_to_half(v); break;
    case CUDNN_DATA_BFLOAT16: ((uint16_t *)base)[index] = emu_float_to_bf16(v); break;
    default: break;
    }
}
