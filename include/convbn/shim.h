/* Process-wide shim state: one-time initialisation, the configuration, and the per-thread
 * guard that lets the shim's own calls into cuDNN/CUDA bypass its hooks. */
#ifndef CONVBN_SHIM_H
#define CONVBN_SHIM_H

#include <pthread.h>

#include "convbn/config.h"

/* The configuration; valid after convbn_init() returned, read-only afterwards except for
 * the mode, which convbn_set_mode (control.c) may switch. */
extern struct convbn_config convbn_cfg;

/* Initialises the shim once (config, log, trace, exit handler); cheap after the first call. */
void convbn_init(void);

/* Per-thread nesting depth of shim code; hooks called while it is > 0 forward directly. */
extern __thread int convbn_guard_depth __attribute__((tls_model("initial-exec")));

static inline int convbn_guard_busy(void) { return convbn_guard_depth > 0; }
static inline void convbn_guard_enter(void) { convbn_guard_depth++; }
static inline void convbn_guard_leave(void) { convbn_guard_depth--; }

#endif
