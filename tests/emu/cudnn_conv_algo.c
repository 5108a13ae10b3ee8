/* Convolution algorithm queries of the cuDNN emulation: workspace sizes, algorithm counts,
 * the _v7 heuristics, and the Find functions (the Ex variants run every algorithm through
 * the compute functions, writing the output tensor as cuDNN does).  Owns the algorithm
 * tables: the order in which algorithms are recommended, their documented determinism, and
 * the workspace each one claims (deterministic, see algo_workspace_bytes).  Every answer is
 * a pure function of the descriptors; no timing is measured.  Must not compute convolutions
 * itself: it calls cudnnConvolution* for that. */
#include <string.h>

#include "emu_cudnn.h"

/* One algorithm of a direction, in the order the heuristics recommend it. */
struct algo_info {
    int algo;
    int implemented;               /* 0: cuDNN documents it as not implemented */
    cudnnDeterminism_t determinism;
    enum emu_workspace_content workspace;
};

static const struct algo_info forward_algos[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_FILTER},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_NONE},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_INPUT},
    {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
};

static const struct algo_info backward_data_algos[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_FILTER},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, 1, CUDNN_NON_DETERMINISTIC, EMU_WORKSPACE_NONE},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_GRADIENT},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
};

static const struct algo_info backward_filter_algos[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_INPUT},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, 1, CUDNN_NON_DETERMINISTIC, EMU_WORKSPACE_NONE},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_GRADIENT},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, 1, CUDNN_NON_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, 1, CUDNN_DETERMINISTIC, EMU_WORKSPACE_SCRATCH},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, 0, CUDNN_DETERMINISTIC, EMU_WORKSPACE_NONE},
};

#define ALGO_COUNT(table) ((int)(sizeof table / sizeof table[0]))
#define MAX_ALGOS CUDNN_CONVOLUTION_FWD_ALGO_COUNT

/* Time (ms) that Find reports for the algorithm it ranks at position r: increasing, fixed. */
#define FIND_TIME_MS(r) (0.01f * (float)((r) + 1))

static const struct algo_info *algo_table(enum emu_conv_direction dir, int *count)
{
    switch (dir) {
    case EMU_CONV_FORWARD: *count = ALGO_COUNT(forward_algos); return forward_algos;
    case EMU_CONV_BACKWARD_DATA: *count = ALGO_COUNT(backward_data_algos); return backward_data_algos;
    default: *count = ALGO_COUNT(backward_filter_algos); return backward_filter_algos;
    }
}

static const struct algo_info *find_algo(enum emu_conv_direction dir, int algo)
{
    int count;
    const struct algo_info *table = algo_table(dir, &count);
    for (int i = 0; i < count; i++)
        if (table[i].algo == algo)
            return &table[i];
    return NULL;
}

static size_t algo_workspace_bytes(enum emu_workspace_content content,
                                   const struct emu_conv_geometry *g)
{
    size_t element = emu_type_size(g->type);
    switch (content) {
    case EMU_WORKSPACE_FILTER: return g->w_count * element;
    case EMU_WORKSPACE_INPUT: return g->x_span * element;
    case EMU_WORKSPACE_GRADIENT: return g->y_span * element;
    case EMU_WORKSPACE_SCRATCH: return EMU_WORKSPACE_SCRATCH_BYTES;
    default: return 0;
    }
}

cudnnStatus_t emu_conv_algo_workspace(enum emu_conv_direction dir, int algo,
                                      const struct emu_conv_geometry *g,
                                      enum emu_workspace_content *content, size_t *bytes)
{
    const struct algo_info *info = find_algo(dir, algo);
    if (!info)
        return CUDNN_STATUS_BAD_PARAM;
    if (!info->implemented)
        return CUDNN_STATUS_NOT_SUPPORTED;
    *content = info->workspace;
    *bytes = algo_workspace_bytes(info->workspace, g);
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t workspace_size(cudnnHandle_t handle, enum emu_conv_direction dir,
                                    const struct cudnnConvolutionStruct *conv,
                                    const struct cudnnTensorStruct *x,
                                    const struct cudnnFilterStruct *w,
                                    const struct cudnnTensorStruct *y, int algo, size_t *size)
{
    struct emu_conv_geometry g;
    enum emu_workspace_content content;
    if (!emu_handle_valid(handle) || !size)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(conv, x, w, y, &g);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    return emu_conv_algo_workspace(dir, algo, &g, &content, size);
}

/* Stores in *sizeInBytes the workspace algo needs: 0 for IMPLICIT_GEMM, the filter's bytes
 * for IMPLICIT_PRECOMP_GEMM, the bytes spanned by x for GEMM, 1 MiB for the others. */
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle,
                                                      const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *sizeInBytes)
{
    return workspace_size(handle, EMU_CONV_FORWARD, convDesc, xDesc, wDesc, yDesc, algo,
                          sizeInBytes);
}

/* Stores in *sizeInBytes the workspace algo needs: 0 for ALGO_0, the filter's bytes for
 * ALGO_1, the bytes spanned by dy for FFT, 1 MiB for the others. */
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes)
{
    return workspace_size(handle, EMU_CONV_BACKWARD_DATA, convDesc, dxDesc, wDesc, dyDesc, algo,
                          sizeInBytes);
}

/* Stores in *sizeInBytes the workspace algo needs: 0 for ALGO_0, the bytes spanned by x for
 * ALGO_1, by dy for FFT, 1 MiB for the others; WINOGRAD gives CUDNN_STATUS_NOT_SUPPORTED. */
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t *sizeInBytes)
{
    return workspace_size(handle, EMU_CONV_BACKWARD_FILTER, convDesc, xDesc, gradDesc, dyDesc,
                          algo, sizeInBytes);
}

static cudnnStatus_t max_count(cudnnHandle_t handle, enum emu_conv_direction dir, int *count)
{
    if (!emu_handle_valid(handle) || !count)
        return CUDNN_STATUS_BAD_PARAM;
    algo_table(dir, count);
    return CUDNN_STATUS_SUCCESS;
}

/* Stores CUDNN_CONVOLUTION_FWD_ALGO_COUNT in *count. */
cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(handle, EMU_CONV_FORWARD, count);
}

/* Stores CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT in *count. */
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(handle, EMU_CONV_BACKWARD_DATA, count);
}

/* Stores CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT in *count. */
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(handle, EMU_CONV_BACKWARD_FILTER, count);
}

/* One perf result, direction-neutral; copied into the caller's perf struct type at the end. */
struct perf {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
};

/* A Find*Ex call: what running one algorithm needs. */
struct find_run {
    cudnnHandle_t handle;
    enum emu_conv_direction dir;
    cudnnConvolutionDescriptor_t conv;
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    const void *x, *w, *y;         /* the inputs of the direction (one of them unused) */
    void *out;                     /* what the direction writes: y, dx or dw */
    void *workspace;
    size_t workspace_bytes;
};

/* Runs algo once with alpha = 1, beta = 0; returns the compute function's status. */
static cudnnStatus_t run_algo(const struct find_run *run, int algo)
{
    const float one = 1.0f, zero = 0.0f;
    switch (run->dir) {
    case EMU_CONV_FORWARD:
        return cudnnConvolutionForward(run->handle, &one, run->x_desc, run->x, run->w_desc,
                                       run->w, run->conv, algo, run->workspace,
                                       run->workspace_bytes, &zero, run->y_desc, run->out);
    case EMU_CONV_BACKWARD_DATA:
        return cudnnConvolutionBackwardData(run->handle, &one, run->w_desc, run->w, run->y_desc,
                                            run->y, run->conv, algo, run->workspace,
                                            run->workspace_bytes, &zero, run->x_desc, run->out);
    default:
        return cudnnConvolutionBackwardFilter(run->handle, &one, run->x_desc, run->x,
                                              run->y_desc, run->y, run->conv, algo,
                                              run->workspace, run->workspace_bytes, &zero,
                                              run->w_desc, run->out);
    }
}

/* Status of one algorithm for a query: a Find*Ex run (when run is non-NULL) reports
 * CUDNN_STATUS_ALLOC_FAILED for a workspace that is too small, as cuDNN documents. */
static cudnnStatus_t rank_status(const struct algo_info *info, size_t memory,
                                 const struct find_run *run)
{
    if (!info->implemented)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (!run)
        return CUDNN_STATUS_SUCCESS;
    if (memory > 0 && (!run->workspace || run->workspace_bytes < memory))
        return CUDNN_STATUS_ALLOC_FAILED;
    return run_algo(run, info->algo);
}

/* Fills out[] with every algorithm of dir: those that succeed first, in table order, then
 * the others.  timed: report Find's times instead of the heuristics' -1. */
static void rank_algos(enum emu_conv_direction dir, const struct emu_conv_geometry *g,
                       const struct find_run *run, int timed, struct perf *out, int *count)
{
    int n, good = 0;
    const struct algo_info *table = algo_table(dir, &n);
    struct perf all[MAX_ALGOS];
    for (int i = 0; i < n; i++) {
        all[i].algo = table[i].algo;
        all[i].memory = table[i].implemented ? algo_workspace_bytes(table[i].workspace, g) : 0;
        all[i].status = rank_status(&table[i], all[i].memory, run);
        all[i].determinism = table[i].determinism;
        all[i].time = -1.0f;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if ((all[i].status == CUDNN_STATUS_SUCCESS) == (pass == 0))
                out[good++] = all[i];
    for (int i = 0; timed && i < n && out[i].status == CUDNN_STATUS_SUCCESS; i++)
        out[i].time = FIND_TIME_MS(i);
    *count = n;
}

/* Validates a query, ranks the algorithms and returns how many results to copy (in *count). */
static cudnnStatus_t query(cudnnHandle_t handle, const struct find_run *run,
                           enum emu_conv_direction dir, const struct cudnnConvolutionStruct *conv,
                           const struct cudnnTensorStruct *x, const struct cudnnFilterStruct *w,
                           const struct cudnnTensorStruct *y, int requested, int *returned,
                           const void *results, int timed, struct perf *ranked, int *count)
{
    struct emu_conv_geometry g;
    if (!emu_handle_valid(handle) || !returned || !results || requested <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t status = emu_conv_geometry(conv, x, w, y, &g);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    rank_algos(dir, &g, run, timed, ranked, count);
    if (*count > requested)
        *count = requested;
    *returned = *count;
    return CUDNN_STATUS_SUCCESS;
}

/* Copies ranked results into a caller's perf array of any of the three (same-layout) types. */
#define COPY_PERF(dst, src, n, math, algo_type)                  \
    do {                                                         \
        for (int i_ = 0; i_ < (n); i_++) {                       \
            memset(&(dst)[i_], 0, sizeof (dst)[i_]);             \
            (dst)[i_].algo = (algo_type)(src)[i_].algo;          \
            (dst)[i_].status = (src)[i_].status;                 \
            (dst)[i_].time = (src)[i_].time;                     \
            (dst)[i_].memory = (src)[i_].memory;                 \
            (dst)[i_].determinism = (src)[i_].determinism;       \
            (dst)[i_].mathType = (math);                         \
        }                                                        \
    } while (0)

static cudnnStatus_t forward_query(cudnnHandle_t handle, const struct find_run *run,
                                   const cudnnTensorDescriptor_t xDesc,
                                   const cudnnFilterDescriptor_t wDesc,
                                   const cudnnConvolutionDescriptor_t convDesc,
                                   const cudnnTensorDescriptor_t yDesc, int requested,
                                   int *returned, cudnnConvolutionFwdAlgoPerf_t *results,
                                   int timed)
{
    struct perf ranked[MAX_ALGOS];
    int count;
    cudnnStatus_t status = query(handle, run, EMU_CONV_FORWARD, convDesc, xDesc, wDesc, yDesc,
                                 requested, returned, results, timed, ranked, &count);
    if (status == CUDNN_STATUS_SUCCESS)
        COPY_PERF(results, ranked, count, convDesc->math_type, cudnnConvolutionFwdAlgo_t);
    return status;
}

static cudnnStatus_t backward_data_query(cudnnHandle_t handle, const struct find_run *run,
                                         const cudnnFilterDescriptor_t wDesc,
                                         const cudnnTensorDescriptor_t dyDesc,
                                         const cudnnConvolutionDescriptor_t convDesc,
                                         const cudnnTensorDescriptor_t dxDesc, int requested,
                                         int *returned, cudnnConvolutionBwdDataAlgoPerf_t *results,
                                         int timed)
{
    struct perf ranked[MAX_ALGOS];
    int count;
    cudnnStatus_t status = query(handle, run, EMU_CONV_BACKWARD_DATA, convDesc, dxDesc, wDesc,
                                 dyDesc, requested, returned, results, timed, ranked, &count);
    if (status == CUDNN_STATUS_SUCCESS)
        COPY_PERF(results, ranked, count, convDesc->math_type, cudnnConvolutionBwdDataAlgo_t);
    return status;
}

static cudnnStatus_t backward_filter_query(cudnnHandle_t handle, const struct find_run *run,
                                           const cudnnTensorDescriptor_t xDesc,
                                           const cudnnTensorDescriptor_t dyDesc,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           const cudnnFilterDescriptor_t dwDesc, int requested,
                                           int *returned,
                                           cudnnConvolutionBwdFilterAlgoPerf_t *results, int timed)
{
    struct perf ranked[MAX_ALGOS];
    int count;
    cudnnStatus_t status = query(handle, run, EMU_CONV_BACKWARD_FILTER, convDesc, xDesc, dwDesc,
                                 dyDesc, requested, returned, results, timed, ranked, &count);
    if (status == CUDNN_STATUS_SUCCESS)
        COPY_PERF(results, ranked, count, convDesc->math_type, cudnnConvolutionBwdFilterAlgo_t);
    return status;
}

/* Heuristics: stores up to requestedAlgoCount results (every algorithm, recommended first,
 * time -1, memory = workspace bytes) in perfResults and their number in *returnedAlgoCount. */
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return forward_query(handle, NULL, srcDesc, filterDesc, convDesc, destDesc,
                         requestedAlgoCount, returnedAlgoCount, perfResults, 0);
}

/* As the _v7 heuristics, with fixed increasing times; touches no tensor memory. */
cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    const int requestedAlgoCount, int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return forward_query(handle, NULL, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount,
                         returnedAlgoCount, perfResults, 1);
}

/* Runs every algorithm whose workspace fits (y ends up holding conv(x, w)); the others are
 * reported with CUDNN_STATUS_ALLOC_FAILED after the successful ones. */
cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t yDesc, void *y, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes)
{
    struct find_run run = {.handle = handle, .dir = EMU_CONV_FORWARD, .conv = convDesc,
                           .x_desc = xDesc, .y_desc = yDesc, .w_desc = wDesc, .x = x, .w = w,
                           .out = y, .workspace = workSpace,
                           .workspace_bytes = workSpaceSizeInBytes};
    if (!x || !w || !y)
        return CUDNN_STATUS_BAD_PARAM;
    return forward_query(handle, &run, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount,
                         returnedAlgoCount, perfResults, 1);
}

/* Heuristics for backward data; results as cudnnGetConvolutionForwardAlgorithm_v7. */
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return backward_data_query(handle, NULL, filterDesc, diffDesc, convDesc, gradDesc,
                               requestedAlgoCount, returnedAlgoCount, perfResults, 0);
}

/* Find for backward data without running anything; results as the forward Find. */
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return backward_data_query(handle, NULL, wDesc, dyDesc, convDesc, dxDesc, requestedAlgoCount,
                               returnedAlgoCount, perfResults, 1);
}

/* Runs every backward-data algorithm whose workspace fits, writing dx; as the forward Ex. */
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes)
{
    struct find_run run = {.handle = handle, .dir = EMU_CONV_BACKWARD_DATA, .conv = convDesc,
                           .x_desc = dxDesc, .y_desc = dyDesc, .w_desc = wDesc, .w = w, .y = dy,
                           .out = dx, .workspace = workSpace,
                           .workspace_bytes = workSpaceSizeInBytes};
    if (!w || !dy || !dx)
        return CUDNN_STATUS_BAD_PARAM;
    return backward_data_query(handle, &run, wDesc, dyDesc, convDesc, dxDesc, requestedAlgoCount,
                               returnedAlgoCount, perfResults, 1);
}

/* Heuristics for backward filter; results as cudnnGetConvolutionForwardAlgorithm_v7
 * (WINOGRAD last, with CUDNN_STATUS_NOT_SUPPORTED). */
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return backward_filter_query(handle, NULL, srcDesc, diffDesc, convDesc, gradDesc,
                                 requestedAlgoCount, returnedAlgoCount, perfResults, 0);
}

/* Find for backward filter without running anything; results as the forward Find. */
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return backward_filter_query(handle, NULL, xDesc, dyDesc, convDesc, dwDesc,
                                 requestedAlgoCount, returnedAlgoCount, perfResults, 1);
}

/* Runs every backward-filter algorithm whose workspace fits, writing dw; as the forward Ex. */
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *y, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t dwDesc, void *dw, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes)
{
    struct find_run run = {.handle = handle, .dir = EMU_CONV_BACKWARD_FILTER, .conv = convDesc,
                           .x_desc = xDesc, .y_desc = dyDesc, .w_desc = dwDesc, .x = x, .y = y,
                           .out = dw, .workspace = workSpace,
                           .workspace_bytes = workSpaceSizeInBytes};
    if (!x || !y || !dw)
        return CUDNN_STATUS_BAD_PARAM;
    return backward_filter_query(handle, &run, xDesc, dyDesc, convDesc, dwDesc,
                                 requestedAlgoCount, returnedAlgoCount, perfResults, 1);
}
