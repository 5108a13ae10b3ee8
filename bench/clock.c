/* Timing of replays.  On a GPU, CUDA events recorded on the replay's streams (GPU time);
 * under the CPU emulation of cuDNN, where every call runs on the calling thread, the host's
 * monotonic wall clock.  The choice follows the device name, and the label says which was
 * used so that nobody reads emulation numbers as GPU performance.  Owns its events. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define EMULATION_NAME "convbn CPU emulation"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int clock_open(struct bench_clock *c, char *err)
{
    struct cudaDeviceProp prop;
    memset(c, 0, sizeof *c);
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        snprintf(err, BENCH_ERR, "cudaGetDeviceProperties failed: no CUDA device");
        return -1;
    }
    snprintf(c->device, sizeof c->device, "%s", prop.name);
    c->events = strcmp(prop.name, EMULATION_NAME) != 0;
    if (c->events)
        snprintf(c->label, sizeof c->label, "GPU time from CUDA events on %s", prop.name);
    else
        snprintf(c->label, sizeof c->label,
                 "CPU wall clock under the CPU emulation of cuDNN (not GPU performance)");
    return 0;
}

int clock_reserve(struct bench_clock *c, size_t marks)
{
    if (marks <= c->cap)
        return 0;
    cudaEvent_t *ev = c->events ? realloc(c->ev, marks * sizeof *ev) : NULL;
    double *host = c->events ? NULL : realloc(c->host_ms, marks * sizeof *host);
    if (c->events ? !ev : !host)
        return -1;
    if (c->events)
        c->ev = ev;
    else
        c->host_ms = host;
    for (; c->cap < marks; c->cap++)
        if (c->events && cudaEventCreate(&c->ev[c->cap]) != cudaSuccess)
            return -1;
    return 0;
}

void clock_restart(struct bench_clock *c)
{
    c->used = 0;
}

long clock_mark(struct bench_clock *c, cudaStream_t stream)
{
    if (c->used == c->cap)
        return -1;
    if (c->events && cudaEventRecord(c->ev[c->used], stream) != cudaSuccess)
        return -1;
    if (!c->events)
        c->host_ms[c->used] = now_ms();
    return (long)c->used++;
}

int clock_wait(struct bench_clock *c)
{
    return c->events && cudaDeviceSynchronize() != cudaSuccess ? -1 : 0;
}

double clock_ms(const struct bench_clock *c, long a, long b)
{
    float ms = 0;
    if (!c->events)
        return c->host_ms[b] - c->host_ms[a];
    return cudaEventElapsedTime(&ms, c->ev[a], c->ev[b]) == cudaSuccess ? ms : NAN;
}

void clock_close(struct bench_clock *c)
{
    for (size_t i = 0; c->ev && i < c->cap; i++)
        if (c->ev[i])
            cudaEventDestroy(c->ev[i]);
    free(c->ev);
    free(c->host_ms);
    memset(c, 0, sizeof *c);
}
