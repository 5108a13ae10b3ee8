/* Interposers for the CUDA driver calls that could observe or disturb a pending conv
 * (include/convbn/cuda_driver_hooks.def): the launches a program makes through libcuda's
 * PLT (Triton's launchers), and the driver's copies, sets, event records, waits,
 * synchronisations, frees and captures.  Each flushes the pending work its stream could
 * observe (all of it for context-wide calls), then forwards with the caller's exact
 * arguments, with the shim's guard held so that the driver's own calls bypass the hooks.
 * The shim's own driver launches (src/fold_cuda.c) go through pointers it resolved itself
 * and never reach these.  Stream capture is counted like the runtime's.  Under
 * CONVBN_FLUSH=precise a launch, async copy or set that cannot touch a pending buffer does not
 * flush (precise.c).  Owns no state. */
#include <cuda.h>

#include "convbn/hooks.h"
#include "convbn/planner.h"
#include "convbn/precise.h"
#include "convbn/real_cuda_driver.h"
#include "convbn/shim.h"

#define EXPORT __attribute__((visibility("default")))

/* A CUstream is a cudaStream_t; the driver's special handles name the runtime's. */
static cudaStream_t runtime_stream(CUstream stream)
{
    if (stream == CU_STREAM_LEGACY)
        return cudaStreamLegacy;
    if (stream == CU_STREAM_PER_THREAD)
        return cudaStreamPerThread;
    return (cudaStream_t)stream;
}

#define CONVBN_ON(s) runtime_stream(s)
#define CONVBN_ON_PTSZ(s) ((s) ? runtime_stream(s) : cudaStreamPerThread)
#define CONVBN_ON_ALL NULL
#define CONVBN_NO_POST(stream, status) ((void)(stream), (void)(status))

static void convbn_cu_capture_began(cudaStream_t stream, CUresult status)
{
    (void)stream;
    if (status == CUDA_SUCCESS)
        convbn_planner_capture(+1);
}

static void convbn_cu_capture_ended(cudaStream_t stream, CUresult status)
{
    (void)stream;
    (void)status; /* the capture ends even when it failed */
    convbn_planner_capture(-1);
}

#define CONVBN_CUDA_DRIVER(name, params, args, stream_expr, post)                             \
    EXPORT CUresult name params                                                               \
    {                                                                                         \
        if (!CONVBN_REAL_READY(name) && (convbn_real_cuda_driver_resolve(), !real_##name))    \
            return CUDA_ERROR_NOT_INITIALIZED;                                                \
        cudaStream_t work_stream = stream_expr;                                               \
        int guarded = convbn_stream_work_begin(#name, work_stream);                           \
        CUresult status = real_##name args;                                                   \
        post(work_stream, status);                                                            \
        convbn_work_end(guarded);                                                             \
        return status;                                                                        \
    }
#define CONVBN_CUDA_DRIVER_PRECISE(name, params, args, stream_expr, touches)                 \
    EXPORT CUresult name params                                                               \
    {                                                                                         \
        if (!CONVBN_REAL_READY(name) && (convbn_real_cuda_driver_resolve(), !real_##name))    \
            return CUDA_ERROR_NOT_INITIALIZED;                                                \
        cudaStream_t work_stream = stream_expr;                                               \
        int guarded = convbn_precise_work_begin(#name, work_stream,                           \
                                                convbn_precise_applies() && !(touches));      \
        CUresult status = real_##name args;                                                   \
        convbn_work_end(guarded);                                                             \
        return status;                                                                        \
    }
#include "convbn/cuda_driver_hooks.def"
#undef CONVBN_CUDA_DRIVER_PRECISE
#undef CONVBN_CUDA_DRIVER
