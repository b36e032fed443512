// Launchers of the sparse-model kernels on CUDA: the same functions as cpu/sparse.h (read it for
// the definitions) on device pointers, plus the device's stream (a cudaStream_t passed as void*).
// Each validates its sizes (E_ARG) and returns the launch status. Nothing here synchronizes with
// the host: group offsets stay on the device, and the grouped GEMM reads them there, so a whole
// MoE layer can be queued (and captured into a CUDA graph) without knowing the group sizes.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/status.h"
#include "core/sparse.h"  // Act, limits

namespace mk::cuda {

// sparse.cu — one warp per row. counts: atomically accumulated (may be null).
Status router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm,
                   int32_t* ids, float* weights, int32_t* counts, void* stream);

// sparse.cu — counting sort on the device. The order of pairs inside a group is unspecified (rows
// are independent, so results do not depend on it). An id outside [0, G) sets *bad_flag to 1
// (a device int32 the caller zeroed; the pair is left out of every group).
Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets,
                  int32_t* src, int32_t* pos, int32_t* bad_flag, void* stream);

// gemm.cu — one launch for all groups; offsets are read on the device. n: the total number of
// sorted positions (an upper bound on every group's row count, known on the host).
Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const void* w, DType wdt,
                    const float* bias, const int32_t* offsets, int64_t G, int64_t n, int64_t N,
                    int64_t K, Act act, float* y, int64_t ldy, const int32_t* dst, void* stream);

// sparse.cu
Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
               int64_t k, int64_t D, float* out, int64_t ldo, void* stream);
Status swiglu(float* x, int64_t ld, int64_t n, int64_t F, void* stream);

}  // namespace mk::cuda
