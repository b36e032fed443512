// CPU GEMM: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]).
// x and y are f32 with row strides ldx and ldy (elements); W is contiguous row-major in f32, f16 or
// bf16 (half weights are widened on the fly, so a memory-bound GEMV reads half the bytes).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace mk::cpu {

void gemm(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
          int64_t ldy, int64_t M, int64_t N, int64_t K);

}  // namespace mk::cpu
