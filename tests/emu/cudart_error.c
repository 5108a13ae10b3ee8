/* Error reporting of the CUDA runtime emulation.
 *
 * Owns the per-thread last error (set by every failing call through emu_status, read by
 * cudaGetLastError / cudaPeekAtLastError) and the name and message of every error code the
 * emulation can return, kept in the one list below.  It does not decide which code a call
 * returns; the file implementing each call does. */
#include <stddef.h>

#include "cudart_internal.h"

/* Code, then the message the real runtime's cudaGetErrorString gives for it. */
#define EMU_ERROR_CODES(X)                                                                \
    X(cudaSuccess, "no error")                                                            \
    X(cudaErrorInvalidValue, "invalid argument")                                          \
    X(cudaErrorMemoryAllocation, "out of memory")                                         \
    X(cudaErrorInitializationError, "initialization error")                               \
    X(cudaErrorInvalidConfiguration, "invalid configuration argument")                    \
    X(cudaErrorInvalidPitchValue, "invalid pitch argument")                               \
    X(cudaErrorInvalidMemcpyDirection, "invalid copy direction for memcpy")               \
    X(cudaErrorInvalidDeviceFunction, "invalid device function")                          \
    X(cudaErrorNoDevice, "no CUDA-capable device is detected")                            \
    X(cudaErrorInvalidDevice, "invalid device ordinal")                                   \
    X(cudaErrorInvalidResourceHandle, "invalid resource handle")                          \
    X(cudaErrorNotReady, "device not ready")                                              \
    X(cudaErrorIllegalAddress, "an illegal memory access was encountered")                \
    X(cudaErrorLaunchFailure, "unspecified launch failure")                               \
    X(cudaErrorNotSupported, "operation not supported")                                   \
    X(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing") \
    X(cudaErrorUnknown, "unknown error")

#define EMU_UNRECOGNIZED_ERROR "unrecognized error code"

static __thread cudaError_t emu_last_error = cudaSuccess;

cudaError_t emu_status(cudaError_t status)
{
    if (status != cudaSuccess)
        emu_last_error = status;
    return status;
}

/* Returns the calling thread's last error and resets it to cudaSuccess. */
cudaError_t cudaGetLastError(void)
{
    cudaError_t last = emu_last_error;
    emu_last_error = cudaSuccess;
    return last;
}

/* Returns the calling thread's last error without resetting it. */
cudaError_t cudaPeekAtLastError(void)
{
    return emu_last_error;
}

/* Returns the code's identifier as a static string ("cudaErrorInvalidValue"), or
 * "unrecognized error code". */
const char *cudaGetErrorName(cudaError_t error)
{
#define EMU_NAME_CASE(code, message) \
    case code:                       \
        return #code;
    switch (error) {
        EMU_ERROR_CODES(EMU_NAME_CASE)
    default:
        return EMU_UNRECOGNIZED_ERROR;
    }
#undef EMU_NAME_CASE
}

/* Returns the code's message as a static string ("invalid argument"), or
 * "unrecognized error code". */
const char *cudaGetErrorString(cudaError_t error)
{
#define EMU_STRING_CASE(code, message) \
    case code:                         \
        return message;
    switch (error) {
        EMU_ERROR_CODES(EMU_STRING_CASE)
    default:
        return EMU_UNRECOGNIZED_ERROR;
    }
#undef EMU_STRING_CASE
}
