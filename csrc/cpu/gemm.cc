// CPU GEMM dispatcher and the portable baseline path. The AVX2 path lives in gemm_avx2.cc.
#include "cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/gemm_internal.h"

namespace mk::cpu {
namespace detail {
namespace {

constexpr int kRows = 4;   // W rows per block: x is loaded once per 4 outputs
constexpr int kLanes = 8;  // independent partial sums per dot product (lets the compiler vectorize)

// Widens rows [n, n + nr) of W into f32 (a no-op view for f32 weights).
const float* widen_rows(const void* w, DType wdt, int64_t n, int nr, int64_t K,
                        std::vector<float>& buf) {
  if (wdt == DType::F32) return static_cast<const float*>(w) + n * K;
  buf.resize(static_cast<size_t>(nr) * K);
  const uint16_t* src = static_cast<const uint16_t*>(w) + n * K;
  const int64_t cnt = static_cast<int64_t>(nr) * K;
  if (wdt == DType::BF16) {
    for (int64_t i = 0; i < cnt; ++i) buf[i] = bf16_to_f32(src[i]);
  } else {
    for (int64_t i = 0; i < cnt; ++i) buf[i] = f16_to_f32(src[i]);
  }
  return buf.data();
}

// out[r] = dot(W row r, xr) for nr <= kRows rows of length K.
void dot_rows(const float* wr, int nr, const float* xr, int64_t K, float* out) {
  float acc[kRows][kLanes] = {};
  const int64_t K8 = K - K % kLanes;
  for (int64_t k = 0; k < K8; k += kLanes)
    for (int r = 0; r < nr; ++r)
      for (int l = 0; l < kLanes; ++l) acc[r][l] += wr[r * K + k + l] * xr[k + l];
  for (int r = 0; r < nr; ++r) {
    float s = 0.f;
    for (int l = 0; l < kLanes; ++l) s += acc[r][l];
    for (int64_t k = K8; k < K; ++k) s += wr[r * K + k] * xr[k];
    out[r] = s;
  }
}

}  // namespace

void gemm_baseline(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias,
                   float* y, int64_t ldy, int64_t M, int64_t N, int64_t K) {
  const int64_t nblocks = (N + kRows - 1) / kRows;
  // Aim for >= ~64K multiply-adds per task so small problems stay on one thread.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, M * K * kRows));
  parallel_for(nblocks, grain, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> buf;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b * kRows;
      const int nr = static_cast<int>(std::min<int64_t>(kRows, N - n));
      const float* wr = widen_rows(w, wdt, n, nr, K, buf);
      for (int64_t m = 0; m < M; ++m) {
        float out[kRows];
        dot_rows(wr, nr, x + m * ldx, K, out);
        float* ym = y + m * ldy + n;
        for (int r = 0; r < nr; ++r) ym[r] = out[r] + (bias ? bias[n + r] : 0.f);
      }
    }
  });
}

}  // namespace detail

namespace {

bool use_avx2() { return use_avx2_kernels(); }

// At or below this many rows the AVX2 GEMV keeps bf16 on CPUs with AVX512-BF16 too: it reads W
// once and is bound by memory. Above it the GEMV becomes bound by arithmetic (measured, 130m bf16
// decode: 4 rows the same speed either way, 8 rows 250 -> 320 tokens/s on VDPBF16PS).
constexpr int64_t kGemvRows = 4;
// At or below this many rows those CPUs take the VDPBF16PS GEMV instead (gemv_bf16_avx512: same x
// rounding, fewer instructions per byte of W; measured faster at 1-2 rows, slower at 4 rows
// 2048², where the AVX2 GEMV's K blocking wins).
constexpr int64_t kGemvBf16Rows = 2;

}  // namespace

void gemm(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
          int64_t ldy, int64_t M, int64_t N, int64_t K) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  if (wdt != DType::F32 && wdt != DType::F16 && wdt != DType::BF16) return;  // checked by the op
  if (wdt == DType::BF16 && (M > kGemvRows || M <= kGemvBf16Rows) && use_avx512bf16_kernels()) {
    const auto* wb = static_cast<const uint16_t*>(w);
    if (!(M > kGemvRows ? detail::gemm_bf16_avx512(x, ldx, wb, bias, y, ldy, M, N, K)
                        : detail::gemv_bf16_avx512(x, ldx, wb, bias, y, ldy, M, N, K)))
      throw std::bad_alloc();
    return;
  }
  if (use_avx2())
    detail::gemm_avx2(x, ldx, w, wdt, bias, y, ldy, M, N, K);
  else
    detail::gemm_baseline(x, ldx, w, wdt, bias, y, ldy, M, N, K);
}

void gemv_batch(const GemvProblem* problems, int64_t count, DType wdt, int64_t N, int64_t K) {
  if (count <= 0 || N <= 0 || K <= 0) return;
  if (use_avx2()) return detail::gemv_batch_avx2(problems, count, wdt, N, K);
  for (int64_t i = 0; i < count; ++i) {
    const GemvProblem& p = problems[i];
    gemm(p.x, p.ldx, p.w, wdt, p.bias, p.y, p.ldy, p.M, N, K);
  }
}

}  // namespace mk::cpu
