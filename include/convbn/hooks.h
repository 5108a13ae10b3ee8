/* Helpers shared by the hook files (legacy cuDNN, generated pass-through wrappers): whether
 * a call is inspected, the stream behind a handle, per-call logging, and the flush that
 * precedes a call issuing GPU work (DESIGN.md section 5). */
#ifndef CONVBN_HOOKS_H
#define CONVBN_HOOKS_H

#include <cudnn.h>

/* Returns 1 when the shim should inspect this call, 0 when it must only forward it (shim
 * code already on the stack, mode off, or the descriptor getters are missing).  Initialises
 * the shim and resolves the real cuDNN functions on first use. */
int convbn_hook_inspecting(void);

/* Returns the stream that handle issues work on; NULL (the legacy default stream) when the
 * real cudnnGetStream fails.  Call only once convbn_hook_inspecting() returned 1. */
cudaStream_t convbn_stream_of(cudnnHandle_t handle);

/* Logs one intercepted call when CONVBN_LOG >= 2. */
void convbn_log_call(const char *name, cudaStream_t stream);

/* Flushes the pending work that a GPU-work call on handle's stream could observe and logs
 * the call; returns that stream.  Call with the guard held, after convbn_hook_inspecting(). */
cudaStream_t convbn_before_gpu_work(const char *name, cudnnHandle_t handle);

/* Before a cuDNN call that issues GPU work on handle's stream (all streams when handle is
 * NULL): flushes the pending work it could observe and takes the shim's guard, so that the
 * real function's own calls into cuDNN or CUDA bypass the hooks.  Returns 1 when it took
 * the guard (pass that to convbn_work_end after the real call), 0 when the call is not
 * inspected (guard already held, mode off).  trigger names the call for log and summary.
 * Records nothing: for hooks that describe their call to the trace themselves. */
int convbn_work_enter(const char *trigger, cudnnHandle_t handle);

/* convbn_work_enter, then, when tracing, records the call as an `opaque` op named trigger
 * (what the generated pass-through wrappers of `work` functions call). */
int convbn_work_begin(const char *trigger, cudnnHandle_t handle);

/* Before a CUDA runtime or driver call that issues or awaits work on stream (all streams when
 * NULL): initialises the shim, flushes the pending work that call could observe, logs it
 * and takes the guard.  Returns 1 when it took the guard (pass that to convbn_work_end),
 * 0 when the call is not inspected (guard already held, mode off). */
int convbn_stream_work_begin(const char *name, cudaStream_t stream);

/* convbn_stream_work_begin for a call the precise flush rule may let through: it does not
 * flush when `untouched` is 1 (the call cannot touch a pending conv's buffers). */
int convbn_precise_work_begin(const char *name, cudaStream_t stream, int untouched);
/* Releases the guard taken by convbn_work_begin or convbn_stream_work_begin when `guarded`
 * is 1. */
void convbn_work_end(int guarded);

#endif
