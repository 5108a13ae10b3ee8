/* libFuzzer target for the trace reader (bench/trace_reader.c): parses the input as a trace
 * and checks what the reader promises: an error names the input and a line, a success
 * stays within the operation limit and every buffer index lies in 0..n_buffers-1.  A
 * broken promise traps, so the fuzzer reports it.  `make fuzz` builds it with libFuzzer;
 * `make check` replays bench/fuzz-corpus/ through it with bench/fuzz_replay_main.c. */
#include <stdint.h>
#include <string.h>

#include "trace.h"

#define FUZZ_MAX_OPS 4096

static void check_buf(const struct trace *t, int buf)
{
    if (buf != TRACE_NO_BUF && (buf < 0 || buf >= t->n_buffers))
        __builtin_trap();
}

static void check_trace(const struct trace *t)
{
    if (t->n_ops > FUZZ_MAX_OPS || !t->name || !t->model || !t->source || !t->device)
        __builtin_trap();
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        for (int s = 0; s < TRACE_SLOTS; s++)
            if (op->t[s].nb_dims)
                check_buf(t, op->t[s].buf);
        if (op->w.nb_dims)
            check_buf(t, op->w.buf);
        for (int b = 0; b < TRACE_BN_BUFS; b++)
            check_buf(t, op->bn_buf[b]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace t;
    char err[512];
    if (trace_parse_buffer("fuzz", (const char *)data, size, FUZZ_MAX_OPS, &t, err,
                           sizeof err) == 0) {
        check_trace(&t);
        trace_free(&t);
    } else if (strncmp(err, "fuzz:", 5) != 0) {
        __builtin_trap();
    }
    return 0;
}
