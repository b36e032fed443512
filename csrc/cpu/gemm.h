// CPU GEMM: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]).
// x and y are f32 with row strides ldx and ldy (elements); W is contiguous row-major in f32, f16 or
// bf16 (half weights are widened on the fly, so a memory-bound GEMV reads half the bytes). With bf16
// weights on an AVX512-BF16 CPU, x is rounded to bf16 (every row count, so results do not depend on
// the batch beyond f32 summation order) and at 1-2 or above 4 rows the products run on VDPBF16PS
// with f32 accumulation (runtime info().bf16Gemm says which).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace mk::cpu {

void gemm(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
          int64_t ldy, int64_t M, int64_t N, int64_t K);

// One small product of a batch: y[M, N] = x[M, K] · W[N, K]^T (+ bias), M <= kGemvBatchMaxM.
struct GemvProblem {
  const float* x;
  int64_t ldx;
  const void* w;
  const float* bias;
  float* y;
  int64_t ldy;
  int64_t M;
};
constexpr int64_t kGemvBatchMaxM = 8;

// Several small-M products with weights of one shape and dtype (a grouped GEMM at decode: each
// group's few rows against its own weight) as one parallel job, each W streamed once: cheaper than
// one gemm() per problem, which would wake the thread pool per problem or leave a core idle.
void gemv_batch(const GemvProblem* problems, int64_t count, DType wdt, int64_t N, int64_t K);

}  // namespace mk::cpu
