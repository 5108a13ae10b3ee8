/* convbn-shim public control API.
 *
 * A program that runs under the shim (LD_PRELOAD=libconvbn_shim.so) may look these
 * symbols up with dlsym(RTLD_DEFAULT, ...) to read what the shim has seen so far; the
 * bench and the tests do.  Programs must not link against the shim. */
#ifndef CONVBN_CONVBN_H
#define CONVBN_CONVBN_H

#include <stdint.h>

#define CONVBN_COUNTERS_REASONS 16

struct convbn_counters {
    uint64_t pairs_seen;          /* conv -> inference-BN pairs matched */
    uint64_t pairs_fusable;       /* of those, pairs whose geometry folds */
    uint64_t pairs_fused;         /* of those, pairs executed as one convolution */
    uint64_t distinct_signatures; /* distinct (geometry, outcome) signatures */
    uint64_t bytes_saveable;      /* 2 * conv output bytes, summed over fusable pairs */
    uint64_t not_fusable[CONVBN_COUNTERS_REASONS]; /* indexed by reason, see convbn_reason_text */
};

/* Copies the shim's counters into *out.  Returns 0, or -1 if out is NULL. */
int convbn_get_counters(struct convbn_counters *out);

/* Returns the static name of reason index i ("per-activation", "blend", ...) or NULL when
 * i is not a reason. */
const char *convbn_reason_text(int i);

#endif
