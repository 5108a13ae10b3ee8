/* Host-side values for the bench: reading and writing elements in each storage type
 * (half and bfloat16 rounded to nearest even), and seeded random fills of device memory
 * through a fixed-size staging buffer, so that every mode replays the same inputs.  Owns
 * no state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define STAGING_BYTES (1u << 20)

uint64_t data_seed(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float half_to_float(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float mag = exp == 0    ? ldexpf((float)mant, -24)
                : exp == 31 ? (mant ? NAN : INFINITY)
                            : ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

static uint16_t float_to_half(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    float a = fabsf(f);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 65520.0f)
        return (uint16_t)(sign | 0x7c00u);
    if (a < 6.103515625e-05f) /* subnormal: multiples of 2^-24, rint rounds to even */
        return (uint16_t)(sign | (uint32_t)rintf(a * 16777216.0f));
    uint32_t exp = ((u >> 23) & 0xff) - 127 + 15, mant = u & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13), rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t float_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

double data_get(const void *base, enum trace_type type, size_t i)
{
    const unsigned char *p = (const unsigned char *)base + i * trace_type_size(type);
    float f;
    double d;
    uint16_t h;
    int32_t n;
    switch (type) {
    case TRACE_FLOAT: memcpy(&f, p, 4); return f;
    case TRACE_DOUBLE: memcpy(&d, p, 8); return d;
    case TRACE_HALF: memcpy(&h, p, 2); return half_to_float(h);
    case TRACE_BFLOAT16: memcpy(&h, p, 2); return bf16_to_float(h);
    case TRACE_INT8: return (int8_t)p[0];
    case TRACE_UINT8: return p[0];
    case TRACE_INT32: memcpy(&n, p, 4); return n;
    default: return 0;
    }
}

void data_put(void *base, enum trace_type type, size_t i, double v)
{
    unsigned char *p = (unsigned char *)base + i * trace_type_size(type);
    float f = (float)v;
    uint16_t h;
    int32_t n = (int32_t)lrint(v);
    switch (type) {
    case TRACE_FLOAT: memcpy(p, &f, 4); break;
    case TRACE_DOUBLE: memcpy(p, &v, 8); break;
    case TRACE_HALF: h = float_to_half(f); memcpy(p, &h, 2); break;
    case TRACE_BFLOAT16: h = float_to_bf16(f); memcpy(p, &h, 2); break;
    case TRACE_INT8: p[0] = (unsigned char)(int8_t)n; break;
    case TRACE_UINT8: p[0] = (unsigned char)n; break;
    case TRACE_INT32: memcpy(p, &n, 4); break;
    default: break;
    }
}

/* xorshift64*: returns the next value in [0, 1). */
static double next_unit(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (double)((*state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

int data_fill(void *dev, size_t bytes, enum trace_type type, float lo, float hi, uint64_t seed)
{
    size_t elem = trace_type_size(type), per_chunk = STAGING_BYTES / elem;
    unsigned char *host = malloc(STAGING_BYTES);
    uint64_t state = seed | 1;
    int rc = host ? 0 : -1;
    for (size_t done = 0; rc == 0 && done < bytes;) {
        size_t chunk = bytes - done < STAGING_BYTES ? bytes - done : STAGING_BYTES;
        for (size_t i = 0; i < per_chunk && i * elem < chunk; i++)
            data_put(host, type, i, lo + (hi - lo) * next_unit(&state));
        unsigned char *to = (unsigned char *)dev + done;
        if (cudaMemcpy(to, host, chunk, cudaMemcpyHostToDevice) != cudaSuccess)
            rc = -1;
        done += chunk;
    }
    free(host);
    return rc;
}
