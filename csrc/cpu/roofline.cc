#include "cpu/roofline.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"

namespace mk::cpu {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float out[8];
  _mm256_storeu_ps(out, s);
  float r = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
  for (; i < n; ++i) r += p[i];
  return r;
}

float sum_plain(const float* p, size_t n) {
  float r = 0;
  for (size_t i = 0; i < n; ++i) r += p[i];
  return r;
}

// 12 independent accumulators hide the FMA latency (4 cycles × 2 pipes + margin).
__attribute__((target("avx2,fma"))) float fma_loop(int64_t iters) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(0.001f * j);
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(0.0001f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  float out[8], r = 0;
  for (int j = 0; j < 12; ++j) {
    _mm256_storeu_ps(out, acc[j]);
    r += out[0];
  }
  return r;
}

// The same for VDPBF16PS (32 bf16 multiply-adds into 16 f32 lanes per instruction).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) float bf16_dot_loop(int64_t iters) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(0.001f * j);
  const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3f7f3f7f));
  const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x38d138d1));
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  alignas(64) float out[16];
  float r = 0;
  for (int j = 0; j < 12; ++j) {
    _mm512_store_ps(out, acc[j]);
    r += out[0];
  }
  return r;
}

volatile float g_sink;  // keeps the measured loops from being optimized away

}  // namespace

double stream_read_gbs(size_t bytes) {
  const size_t n = bytes / sizeof(float) / 64 * 64;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) return 0;
  // first touch on each thread; distinct values so the hypervisor cannot merge identical pages
  parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) buf[i] = static_cast<float>((static_cast<uint64_t>(i) * 2654435761ull) >> 40);
  });
  const bool avx2 = cpu_features().avx2;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<float> partial(num_threads(), 0.f);
    const double t0 = now_s();
    parallel_run([&](int t, int nt) {
      const size_t b = n * t / nt / 16 * 16, e = t == nt - 1 ? n : n * (t + 1) / nt / 16 * 16;
      partial[t] = avx2 ? sum_avx2(buf + b, e - b) : sum_plain(buf + b, e - b);
    });
    const double dt = now_s() - t0;
    for (float p : partial) g_sink = g_sink + p;
    best = std::max(best, n * sizeof(float) / dt / 1e9);
  }
  std::free(buf);
  return best;
}

// GFLOP/s of `loop(iters)` (doing flops_per_iter each) run on every pool thread; best of 6: a
// shared VM loses a core now and then.
static double peak_of(float (*loop)(int64_t), int64_t iters, double flops_per_iter) {
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const double t0 = now_s();
    parallel_run([&](int, int) { g_sink = g_sink + loop(iters); });
    const double dt = now_s() - t0;
    best = std::max(best, num_threads() * static_cast<double>(iters) * flops_per_iter / dt / 1e9);
  }
  return best;
}

double fma_peak_gflops() {
  if (!cpu_features().has_avx2_fma_f16c()) return 0;
  return peak_of(fma_loop, 20000000, 12 * 8 * 2);
}

double bf16_dot_peak_gflops() {
  if (!use_avx512bf16_kernels()) return 0;
  return peak_of(bf16_dot_loop, 10000000, 12 * 32 * 2);
}

void naive_gemm(const float* x, const float* w, float* y, int64_t M, int64_t N, int64_t K) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
}

}  // namespace mk::cpu
