/* Compares two raw arrays of float, half or bfloat16 values (the --out files of the e2e
 * programs) and prints the worst absolute and relative differences.  The relative error of
 * an element is |a - b| / max(1, |b|).
 * usage: close_enough float|half|bfloat16 TOLERANCE FILE_A FILE_B
 * Exit 0 when every element is within TOLERANCE (relative), 1 otherwise, 2 on errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float half_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float mag = exp == 0 ? ldexpf((float)mant, -24)
                : exp == 31 ? (mant ? NAN : INFINITY)
                            : ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

static float bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static long read_file(const char *path, unsigned char **data)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        *data = malloc((size_t)n + 1);
        if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n)
            n = -1;
    }
    if (f)
        fclose(f);
    return n;
}

static double element(const unsigned char *d, const char *type, long i)
{
    if (!strcmp(type, "float")) {
        float f;
        memcpy(&f, d + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, d + 2 * i, 2);
    return !strcmp(type, "half") ? half_value(h) : bf16_value(h);
}

int main(int argc, char **argv)
{
    unsigned char *a = NULL, *b = NULL;
    if (argc != 5) {
        fprintf(stderr, "usage: close_enough float|half|bfloat16 TOLERANCE FILE_A FILE_B\n");
        return 2;
    }
    const char *type = argv[1];
    double tol = atof(argv[2]);
    long na = read_file(argv[3], &a), nb = read_file(argv[4], &b);
    long size = strcmp(type, "float") ? 2 : 4;
    if (na < 0 || nb < 0 || na != nb || na % size) {
        fprintf(stderr, "close_enough: cannot compare %s and %s\n", argv[3], argv[4]);
        return 2;
    }
    double max_abs = 0, max_rel = 0;
    for (long i = 0; i < na / size; i++) {
        double x = element(a, type, i), y = element(b, type, i);
        double diff = isnan(x) || isnan(y) ? INFINITY : fabs(x - y);
        max_abs = fmax(max_abs, diff);
        max_rel = fmax(max_rel, diff / fmax(1.0, fabs(y)));
    }
    printf("close_enough: %ld %s values, max abs %.3g, max rel %.3g (tolerance %.3g)\n",
           na / size, type, max_abs, max_rel, tol);
    free(a);
    free(b);
    return max_rel <= tol ? 0 : 1;
}
