/* What every hook file shares: the decision to inspect a call, the stream behind a cuDNN
 * handle, per-call logging, the flush before a call that issues GPU work (DESIGN.md
 * section 5) and the trace record of such a call when nothing describes it better.  Owns no
 * state; the planner owns the pending work it flushes, the recorder the trace. */
#include <string.h>

#include "convbn/hooks.h"
#include "convbn/log.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"
#include "convbn/trace.h"

int convbn_hook_inspecting(void)
{
    static int ready; /* set once the shim is initialised and the getters are found */
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        convbn_init();
        if (!convbn_real_cudnn_resolve())
            return 0;
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return !convbn_guard_busy() && convbn_cfg.mode != CONVBN_MODE_OFF;
}

cudaStream_t convbn_stream_of(cudnnHandle_t handle)
{
    cudaStream_t stream = NULL;
    if (real_cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS)
        return NULL;
    return stream;
}

void convbn_log_call(const char *name, cudaStream_t stream)
{
    if (convbn_cfg.log_level >= 2)
        convbn_logf("call %s stream=%p", name, (void *)stream);
}

cudaStream_t convbn_before_gpu_work(const char *name, cudnnHandle_t handle)
{
    cudaStream_t stream = handle ? convbn_stream_of(handle) : NULL;
    convbn_log_call(name, stream);
    convbn_planner_flush(stream, name);
    return stream;
}

/* Like convbn_before_gpu_work, but skips the stream lookup when nothing is pending. */
static void flush_for_work(const char *name, cudnnHandle_t handle)
{
    if (convbn_planner_idle() && convbn_cfg.log_level < 2)
        return;
    convbn_before_gpu_work(name, handle);
}

int convbn_work_enter(const char *trigger, cudnnHandle_t handle)
{
    if (!convbn_hook_inspecting())
        return 0;
    convbn_guard_enter();
    flush_for_work(trigger, handle);
    return 1;
}

/* Records a call whose work the trace does not describe (it flushes on replay). */
static void trace_opaque(const char *name, cudnnHandle_t handle)
{
    struct convbn_trace_op op = {
        .kind = CONVBN_TRACE_OPAQUE,
        .api = strncmp(name, "cudnnBackend", 12) == 0 ? CONVBN_API_BACKEND : CONVBN_API_LEGACY,
        .name = name,
        .stream = handle ? convbn_stream_of(handle) : NULL};
    convbn_trace_record(&op);
}

int convbn_work_begin(const char *trigger, cudnnHandle_t handle)
{
    int guarded = convbn_work_enter(trigger, handle);
    if (guarded && convbn_tracing())
        trace_opaque(trigger, handle);
    return guarded;
}

/* convbn_stream_work_begin, flushing only when `flush` is 1. */
static int stream_work(const char *name, cudaStream_t stream, int flush)
{
    convbn_init();
    if (convbn_guard_busy() || convbn_cfg.mode == CONVBN_MODE_OFF)
        return 0;
    convbn_guard_enter();
    convbn_log_call(name, stream);
    if (flush)
        convbn_planner_flush(stream, name);
    return 1;
}

int convbn_stream_work_begin(const char *name, cudaStream_t stream)
{
    return stream_work(name, stream, 1);
}

int convbn_precise_work_begin(const char *name, cudaStream_t stream, int untouched)
{
    return stream_work(name, stream, !untouched);
}

void convbn_work_end(int guarded)
{
    if (guarded)
        convbn_guard_leave();
}
