/* What every hook file shares: the decision to inspect a call, the stream behind a cuDNN
 * handle, per-call logging, and the flush before a call that issues GPU work (DESIGN.md
 * section 5).  Owns no state; the planner owns the pending work it flushes. */
#include "convbn/hooks.h"
#include "convbn/log.h"
#include "convbn/planner.h"
#include "convbn/real.h"
#include "convbn/shim.h"

int convbn_hook_inspecting(void)
{
    convbn_init();
    return !convbn_guard_busy() && convbn_cfg.mode != CONVBN_MODE_OFF &&
           convbn_real_cudnn_resolve();
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

int convbn_work_begin(const char *trigger, cudnnHandle_t handle)
{
    if (!convbn_hook_inspecting())
        return 0;
    convbn_guard_enter();
    convbn_before_gpu_work(trigger, handle);
    return 1;
}

void convbn_work_end(int guarded)
{
    if (guarded)
        convbn_guard_leave();
}
