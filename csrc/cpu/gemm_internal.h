// Private to cpu/gemm*.cc: the per-ISA GEMM entry points behind mk::cpu::gemm.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/dtype.h"
#include "core/threadpool.h"
#include "cpu/gemm.h"

namespace mk::cpu::detail {

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Grow-only 64-byte-aligned scratch of 4-byte elements; one per thread and purpose (thread_local).
// get() returns nullptr when out of memory: pool workers must not throw.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(int64_t n) {
    const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(n, 16) * 4, 64));
    if (bytes > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      cap = p ? bytes : 0;
    }
    return p;
  }
};

// fn(g, n0, n1) over `groups` x [0, N) in row chunks of `chunk`, handed out dynamically on the pool
// (a group's chunks are consecutive, so each group's W is still streamed in order).
template <class F>
void parallel_row_chunks(int64_t groups, int64_t N, int64_t chunk, const F& fn) {
  const int64_t per = (N + chunk - 1) / chunk;
  parallel_items(groups * per, [&](int64_t c) {
    const int64_t g = c / per, n0 = (c % per) * chunk;
    fn(g, n0, std::min(N, n0 + chunk));
  });
}

// Same contract as mk::cpu::gemm. Only call when cpu_features().has_avx2_fma_f16c().
void gemm_avx2(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
               int64_t ldy, int64_t M, int64_t N, int64_t K);

// bf16 W, M > 4, x rounded to bf16. Only call when use_avx512bf16_kernels(). False when out of
// memory (nothing written).
bool gemm_bf16_avx512(const float* x, int64_t ldx, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t M, int64_t N, int64_t K);

// bf16 W, M <= 2, x rounded to bf16 as gemm_bf16_avx512 rounds it: W streamed once, VDPBF16PS.
// Only call when use_avx512bf16_kernels(). False when out of memory (nothing written).
bool gemv_bf16_avx512(const float* x, int64_t ldx, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t M, int64_t N, int64_t K);

// out[i] = x[i] rounded to bf16 exactly as the AVX512-BF16 GEMM rounds x (VCVTNEPS2BF16). Only call
// when use_avx512bf16_kernels(); out may equal x.
void round_bf16_avx512(const float* x, int64_t n, float* out);

void gemv_batch_avx2(const GemvProblem* problems, int64_t count, DType wdt, int64_t N, int64_t K);
// Portable path (x86-64 baseline / any CPU).
void gemm_baseline(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias,
                   float* y, int64_t ldy, int64_t M, int64_t N, int64_t K);

}  // namespace mk::cpu::detail
