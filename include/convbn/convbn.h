/* convbn-shim public control API.
 *
 * A program that runs under the shim (LD_PRELOAD=libconvbn_shim.so) may look these
 * symbols up with dlsym(RTLD_DEFAULT, ...) to read what the shim has seen so far; the
 * bench and the tests do.  Programs must not link against the shim. */
#ifndef CONVBN_CONVBN_H
#define CONVBN_CONVBN_H

#include <stddef.h>
#include <stdint.h>

#define CONVBN_COUNTERS_REASONS 32

struct convbn_counters {
    uint64_t pairs_seen;          /* conv -> inference-BN pairs matched */
    uint64_t pairs_fusable;       /* of those, pairs with no reason not to fuse */
    uint64_t pairs_fused;         /* of those, pairs executed as one convolution */
    uint64_t distinct_signatures; /* distinct (geometry, outcome) signatures; counted only
                                     when CONVBN_LOG, CONVBN_STATS or CONVBN_VERIFY is on */
    uint64_t bytes_saveable;      /* 2 * conv output bytes, summed over fusable pairs */
    uint64_t bytes_not_moved;     /* 2 * conv output bytes, summed over fused pairs */
    uint64_t bytes_kept_for_grad; /* conv output bytes of pairs not fused because grad mode is
                                     on: what a framework-level Tune mode would free */
    uint64_t flushes;             /* deferred convs run unfused (see the summary per trigger) */
    uint64_t pairs_verified;      /* CONVBN_VERIFY: fused pairs compared with the unfused path */
    double verify_max_abs_error;  /* worst absolute difference over verified pairs */
    double verify_max_rel_error;  /* worst |fused - unfused| / max(1, |unfused|) */
    uint64_t device_bytes_high_water; /* most device memory the shim held at once */
    uint64_t not_fusable[CONVBN_COUNTERS_REASONS]; /* indexed by reason, see convbn_reason_text */
    uint64_t pairs_fused_graph;   /* of the fused pairs, those run as the shim's fused backend
                                     graph (the others ran one legacy fused call) */
};

/* Copies the first `size` bytes of the shim's counters into *out (pass sizeof *out: a
 * program built against an older, shorter struct gets its prefix).  Returns 0, or -1 if out
 * is NULL. */
int convbn_get_counters(struct convbn_counters *out, size_t size);

/* Returns the static name of reason index i ("per-activation", "blend", ...) or NULL when
 * i is not a reason. */
const char *convbn_reason_text(int i);

/* Switches the shim to `mode` ("off", "observe", "auto" or "fuse"; the values of
 * CONVBN_MODE) after running every pending convolution.  Call it while no other thread is
 * inside cuDNN or the CUDA runtime (the bench switches between replays).  Returns 0, or -1
 * when mode is NULL or not one of those names (the mode is then unchanged). */
int convbn_set_mode(const char *mode);

#endif
