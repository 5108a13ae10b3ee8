/* Interposers for the CUDA runtime calls that could observe or disturb a pending conv
 * (include/convbn/cudart_hooks.def): each flushes the pending work its stream could observe
 * (all of it for device-wide calls), then forwards with the caller's exact arguments, with
 * the shim's guard held so the runtime's own calls bypass the hooks.  Stream capture is
 * tracked so that nothing is deferred while a capture is active.  Under CONVBN_FLUSH=precise
 * a launch, async copy or set that cannot touch a pending buffer does not flush (precise.c).
 * Owns no state. */
#include "convbn/hooks.h"
#include "convbn/planner.h"
#include "convbn/precise.h"
#include "convbn/real_cudart.h"
#include "convbn/shim.h"

#define EXPORT __attribute__((visibility("default")))

#define CONVBN_ON(s) (s)
#define CONVBN_ON_PTSZ(s) ((s) ? (s) : cudaStreamPerThread)
#define CONVBN_ON_ALL NULL
#define CONVBN_NO_POST(stream, status) ((void)(stream), (void)(status))

static void convbn_capture_began(cudaStream_t stream, cudaError_t status)
{
    (void)stream;
    if (status == cudaSuccess)
        convbn_planner_capture(+1);
}

static void convbn_capture_ended(cudaStream_t stream, cudaError_t status)
{
    (void)stream;
    (void)status; /* the capture ends even when it failed */
    convbn_planner_capture(-1);
}

#define CONVBN_CUDART(name, params, args, stream_expr, post)                                  \
    EXPORT cudaError_t name params                                                            \
    {                                                                                         \
        if (!CONVBN_REAL_READY(name) && (convbn_real_cudart_resolve(), !real_##name))         \
            return cudaErrorInitializationError;                                              \
        cudaStream_t work_stream = stream_expr;                                               \
        int guarded = convbn_stream_work_begin(#name, work_stream);                           \
        cudaError_t status = real_##name args;                                                \
        post(work_stream, status);                                                            \
        convbn_work_end(guarded);                                                             \
        return status;                                                                        \
    }
#define CONVBN_CUDART_PRECISE(name, params, args, stream_expr, touches)                      \
    EXPORT cudaError_t name params                                                            \
    {                                                                                         \
        if (!CONVBN_REAL_READY(name) && (convbn_real_cudart_resolve(), !real_##name))         \
            return cudaErrorInitializationError;                                              \
        cudaStream_t work_stream = stream_expr;                                               \
        int guarded = convbn_precise_work_begin(#name, work_stream,                           \
                                                convbn_precise_applies() && !(touches));      \
        cudaError_t status = real_##name args;                                                \
        convbn_work_end(guarded);                                                             \
        return status;                                                                        \
    }
#define CONVBN_CUDART_USE(name, params)
#include "convbn/cudart_hooks.def"
#undef CONVBN_CUDART
#undef CONVBN_CUDART_PRECISE
#undef CONVBN_CUDART_USE
