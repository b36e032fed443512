// Private to cpu/gemm*.cc: the per-ISA GEMM entry points behind mk::cpu::gemm.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "cpu/gemm.h"

namespace mk::cpu::detail {

// Same contract as mk::cpu::gemm. Only call when cpu_features().has_avx2_fma_f16c().
void gemm_avx2(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
               int64_t ldy, int64_t M, int64_t N, int64_t K);

// bf16 W, M > 4, x rounded to bf16. Only call when use_avx512bf16_kernels(). False when out of
// memory (nothing written).
bool gemm_bf16_avx512(const float* x, int64_t ldx, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t M, int64_t N, int64_t K);

// out[i] = x[i] rounded to bf16 exactly as the AVX512-BF16 GEMM rounds x (VCVTNEPS2BF16). Only call
// when use_avx512bf16_kernels(); out may equal x.
void round_bf16_avx512(const float* x, int64_t n, float* out);

void gemv_batch_avx2(const GemvProblem* problems, int64_t count, DType wdt, int64_t N, int64_t K);
// Portable path (x86-64 baseline / any CPU).
void gemm_baseline(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias,
                   float* y, int64_t ldy, int64_t M, int64_t N, int64_t K);

}  // namespace mk::cpu::detail
