// AVX2/FMA/F16C GEMM: y = x · W^T (+ bias). Compiled for the x86-64 baseline; every function that
// uses these instructions carries MK_AVX2 and is only reached after the run-time CPU check.
//
// Three paths:
//  - M <= 8 (decode): GEMV-like. W is streamed from memory exactly once, one or two rows at a
//    time, and every x row is applied to a W row while it is in L1. x is pre-packed (zero-padded
//    to 16; for bf16 split into even/odd halves so 16 bf16 weights widen with one shift and one
//    mask). Threads take ~64 KiB chunks of W rows dynamically.
//  - 8 < M <= 48 (batched decode, expert groups): 4x3 dot-product tiles read straight from W, no
//    packing (measured 1.2-1.5x the packed path there, bf16 weights, 130m shapes).
//  - larger M (prefill): packed, cache-blocked GEMM with a 6x16 register micro-kernel. W panels are
//    widened to f32 while being packed, so the micro-kernel is dtype-agnostic. Threads split N.
// bf16 weights on CPUs with AVX512-BF16 skip this file except at 3-4 rows: gemm_avx512bf16.cc.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/gemm_internal.h"

#define MK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MK_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

namespace mk::cpu::detail {
namespace {

constexpr int64_t kGemvMaxM = 8;            // at or below: GEMV path
constexpr int64_t kMidMaxM = 48;            // at or below (and above kGemvMaxM): dot-product tiles
constexpr int64_t kGemvPrefetch = 2048;     // bytes ahead in a GEMV weight stream
constexpr int64_t kGemvThreadBytes = 2 << 20;  // below this much W, the pool wake-up costs more
constexpr int64_t kGemvXBytes = 16 << 10;   // x block (all M rows) kept in L1 when M > 2
constexpr int MR = 6, NR = 16;              // micro-tile: 6 rows of x by 16 rows of W
constexpr int64_t KC = 256;                 // K block: a 16 x KC W micro-panel (16 KiB) in L1
constexpr int64_t MC = 144;                 // M block: an MC x KC x panel (144 KiB) in L2
constexpr int64_t NC = 512;                 // N block: a KC x NC W panel (512 KiB) in L2


// ---- weight loaders: one struct per dtype ----

// load8: 8 consecutive weights as f32. load16: 16 weights as two f32 vectors, in the order the
// packed x of the GEMV path expects.
struct LdF32 {
  using T = float;
  static constexpr bool kSplitEvenOdd = false;
  static float scalar(T v) { return v; }
  MK_AVX2_INLINE static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
  MK_AVX2_INLINE static void load16(const T* p, __m256& a, __m256& b) {
    a = load8(p), b = load8(p + 8);
  }
};

struct LdF16 {
  using T = uint16_t;
  static constexpr bool kSplitEvenOdd = false;
  static float scalar(T v) { return f16_to_f32(v); }
  MK_AVX2_INLINE static __m256 load8(const T* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  MK_AVX2_INLINE static void load16(const T* p, __m256& a, __m256& b) {
    a = load8(p), b = load8(p + 8);
  }
};

struct LdBF16 {
  using T = uint16_t;
  static constexpr bool kSplitEvenOdd = true;  // load16 yields (even, odd) elements
  static float scalar(T v) { return bf16_to_f32(v); }
  MK_AVX2_INLINE static __m256 load8(const T* p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  // A bf16 is the top half of an f32: in each 32-bit lane the even element needs a shift and the
  // odd one a mask, cheaper than widening 8 at a time.
  MK_AVX2_INLINE static void load16(const T* p, __m256& a, __m256& b) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
};

MK_AVX2_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- GEMV path ----

// x rows packed to stride Kp = round_up(K, 16), zero-padded; bf16 order is even/odd per 16. With
// bf16 W on a CPU whose bf16 GEMM rounds x (use_avx512bf16_kernels), x is rounded here too, so
// every bf16 GEMM on that CPU multiplies the same values whatever the row count (batch invariance).
template <class L>
void pack_x_gemv(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, float* xp) {
  const bool round = L::kSplitEvenOdd && use_avx512bf16_kernels();
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * ldx;
    float* d = xp + m * Kp;
    if (!L::kSplitEvenOdd) {
      std::memcpy(d, xr, static_cast<size_t>(K) * 4);
      std::fill(d + K, d + Kp, 0.f);
      continue;
    }
    for (int64_t k0 = 0; k0 < Kp; k0 += 16)
      for (int i = 0; i < 16; ++i) {
        const int64_t k = k0 + i;
        d[k0 + (i & 1) * 8 + i / 2] = k < K ? xr[k] : 0.f;
      }
    if (round) round_bf16_avx512(d, Kp, d);  // a permutation of x, zero padded: round in place
  }
}

// One 16-wide step of R W rows (stride ldw) against MB packed x rows into accumulator set u.
// S = 2 gives each half its own accumulator (more independent FMA chains when MB * R is small).
template <class L, int MB, int R, int S, int U>
MK_AVX2_INLINE void gemv_step(const typename L::T* w, int64_t ldw, const float* xp, int64_t Kp,
                              __m256 (&acc)[U][MB][R][S], int u) {
  __m256 wa[R], wb[R];
  for (int r = 0; r < R; ++r) L::load16(w + r * ldw, wa[r], wb[r]);
  for (int m = 0; m < MB; ++m) {
    __m256 xa = _mm256_loadu_ps(xp + m * Kp), xb = _mm256_loadu_ps(xp + m * Kp + 8);
    // Pin x in registers: GCC would otherwise fold the load into each of the R FMAs.
    if (R > 1) asm("" : "+x"(xa), "+x"(xb));
    for (int r = 0; r < R; ++r) {
      acc[u][m][r][0] = _mm256_fmadd_ps(wa[r], xa, acc[u][m][r][0]);
      acc[u][m][r][S - 1] = _mm256_fmadd_ps(wb[r], xb, acc[u][m][r][S - 1]);
    }
  }
}

// y[m * ldy + r] (+)= dot(W row r [0, len), x row m) for m < MB, r < R; W rows at w + r * ldw.
// pf_off: software prefetch distance in bytes (0: none). accum: add to y, else overwrite with
// bias + dot.
template <class L, int MB, int R, int S, int U>
MK_AVX2 void gemv_tile(const typename L::T* w, int64_t ldw, int64_t len, const float* xp,
                       int64_t Kp, int64_t pf_off, bool accum, const float* bias, float* y,
                       int64_t ldy) {
  using T = typename L::T;
  __m256 acc[U][MB][R][S];
  for (int i = 0; i < U * MB * R * S; ++i) (&acc[0][0][0][0])[i] = _mm256_setzero_ps();
  const int64_t L16 = len & ~int64_t{15}, LU = L16 - L16 % (16 * U);
  int64_t k = 0;
  for (; k < LU; k += 16 * U) {
    for (int r = 0; r < R && pf_off; ++r) {
      const char* pf = reinterpret_cast<const char*>(w + r * ldw + k) + pf_off;
      _mm_prefetch(pf, _MM_HINT_T0);
      if (U * 16 * sizeof(T) > 64) _mm_prefetch(pf + 64, _MM_HINT_T0);
    }
    for (int u = 0; u < U; ++u)
      gemv_step<L, MB, R, S, U>(w + k + 16 * u, ldw, xp + k + 16 * u, Kp, acc, u);
  }
  for (; k < L16; k += 16) gemv_step<L, MB, R, S, U>(w + k, ldw, xp + k, Kp, acc, 0);
  if (L16 < len) {  // copy the ragged ends so no lane reads past a row (or past W)
    alignas(32) T tail[R][16] = {};
    for (int r = 0; r < R; ++r) std::memcpy(tail[r], w + r * ldw + L16, (len - L16) * sizeof(T));
    gemv_step<L, MB, R, S, U>(&tail[0][0], 16, xp + L16, Kp, acc, 0);
  }
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) {
      __m256 v = acc[0][m][r][0];
      for (int u = 0; u < U; ++u)
        for (int h = 0; h < S; ++h)
          if (u + h > 0) v = _mm256_add_ps(v, acc[u][m][r][h]);
      float& out = y[m * ldy + r];
      out = hsum(v) + (accum ? out : bias ? bias[r] : 0.f);
    }
}

// MB x rows against R W rows; the tile shapes keep 4-8 accumulators in flight.
template <class L, int R>
MK_AVX2_INLINE void gemv_mchunk(int mb, const typename L::T* w, int64_t K, int64_t len,
                                const float* xp, int64_t Kp, int64_t pf_off, bool accum,
                                const float* bias, float* y, int64_t ldy) {
  switch (mb) {
    case 1: gemv_tile<L, 1, R, 2, 3 - R>(w, K, len, xp, Kp, pf_off, accum, bias, y, ldy); break;
    case 2: gemv_tile<L, 2, R, 2, 1>(w, K, len, xp, Kp, pf_off, accum, bias, y, ldy); break;
    case 3: gemv_tile<L, 3, R, 1, 1>(w, K, len, xp, Kp, pf_off, accum, bias, y, ldy); break;
    default: gemv_tile<L, 4, R, 1, 1>(w, K, len, xp, Kp, pf_off, accum, bias, y, ldy);
  }
}

// Rows [n0, n1) of y for all M (M <= kGemvMaxM); each W row is read from memory once. M <= 2:
// one W row at a time, a single sequential stream (measured clearly faster from DRAM than two
// interleaved rows). M > 2: two rows at a time so each x load feeds two FMAs, and K cut into
// blocks so the x block stays in L1 across a run of rows; chunks of 4 x rows re-read the W
// segment from L1.
template <class L>
MK_AVX2 void gemv_rows(const typename L::T* w, int64_t K, const float* xp, int64_t Kp, int64_t M,
                       const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t kRowRun = 32;
  const int R = M <= 2 ? 1 : 2;
  const int64_t kb = M <= 2 ? K : std::max<int64_t>(256, (kGemvXBytes / (4 * M)) & ~int64_t{15});
  // Software prefetch (measured): M = 1 streams fastest on the hardware prefetcher alone; with
  // the heavier M > 1 loops it falls well short without help. One K block: W is one stream,
  // prefetch a fixed distance ahead; several: the next segment read is R rows further on.
  const int64_t pf_off = M == 1     ? 0
                         : kb >= K ? kGemvPrefetch
                                   : R * K * static_cast<int64_t>(sizeof(*w));
  for (int64_t r0 = n0; r0 < n1; r0 += kRowRun) {
    const int64_t r1 = std::min(n1, r0 + kRowRun);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t len = std::min(kb, K - k0);
      for (int64_t n = r0; n < r1; n += R) {
        const auto* wn = w + n * K + k0;
        const float* bn = bias ? bias + n : nullptr;
        for (int64_t m = 0; m < M; m += 4) {
          const int mb = static_cast<int>(std::min<int64_t>(4, M - m));
          const float* xm = xp + m * Kp + k0;
          float* ym = y + m * ldy + n;
          if (R == 2 && n + 1 < r1)
            gemv_mchunk<L, 2>(mb, wn, K, len, xm, Kp, pf_off, k0 > 0, bn, ym, ldy);
          else
            gemv_mchunk<L, 1>(mb, wn, K, len, xm, Kp, pf_off, k0 > 0, bn, ym, ldy);
        }
      }
    }
  }
}

template <class L>
void run_gemv(const float* x, int64_t ldx, const typename L::T* w, const float* bias, float* y,
              int64_t ldy, int64_t M, int64_t N, int64_t K) {
  thread_local Scratch xbuf;
  const int64_t Kp = round_up(K, 16);
  float* xp = xbuf.get(M * Kp);
  if (!xp) throw std::bad_alloc();  // still on the calling thread
  pack_x_gemv<L>(x, ldx, M, K, Kp, xp);
  const int64_t row_bytes = K * static_cast<int64_t>(sizeof(typename L::T));
  // Waking the pool costs tens of microseconds on this class of machine (and one thread already
  // gets most of the DRAM bandwidth): only worth it for a few MiB of weights.
  if (N * row_bytes * (1 + M / 4) < kGemvThreadBytes) {
    gemv_rows<L>(w, K, xp, Kp, M, bias, y, ldy, 0, N);
    return;
  }
  // ~64 KiB chunks of W (16-row multiples: whole cache lines of y) handed out dynamically, so a
  // worker that wakes late simply takes fewer chunks.
  const int64_t chunk = std::max<int64_t>(16, round_up((64 << 10) / row_bytes, 16));
  parallel_row_chunks(1, N, chunk, [&](int64_t, int64_t n0, int64_t n1) {
    gemv_rows<L>(w, K, xp, Kp, M, bias, y, ldy, n0, n1);
  });
}

// The batch: every problem's x packed up front on the calling thread, then chunks of W rows of
// all problems handed out dynamically (a problem's chunks are contiguous in its W stream).
template <class L>
void run_gemv_batch(const GemvProblem* probs, int64_t count, int64_t N, int64_t K) {
  thread_local Scratch xbuf;
  const int64_t Kp = round_up(K, 16);
  int64_t rows = 0, bytes = 0;
  const int64_t row_bytes = K * static_cast<int64_t>(sizeof(typename L::T));
  for (int64_t i = 0; i < count; ++i) rows += probs[i].M, bytes += N * row_bytes * (1 + probs[i].M / 4);
  float* xp = xbuf.get(rows * Kp);
  if (!xp) throw std::bad_alloc();
  std::vector<float*> xps(static_cast<size_t>(count));
  for (int64_t i = 0, r = 0; i < count; r += probs[i].M, ++i) {
    xps[i] = xp + r * Kp;
    pack_x_gemv<L>(probs[i].x, probs[i].ldx, probs[i].M, K, Kp, xps[i]);
  }
  auto rows_of = [&](int64_t i, int64_t n0, int64_t n1) {
    const GemvProblem& p = probs[i];
    gemv_rows<L>(static_cast<const typename L::T*>(p.w), K, xps[i], Kp, p.M, p.bias, p.y, p.ldy, n0, n1);
  };
  if (bytes < kGemvThreadBytes) {
    for (int64_t i = 0; i < count; ++i) rows_of(i, 0, N);
    return;
  }
  parallel_row_chunks(count, N, std::max<int64_t>(16, round_up((64 << 10) / row_bytes, 16)), rows_of);
}

// ---- mid-size M: dot-product tiles straight from W ----
//
// For a few dozen rows (batched decode, small expert groups) packing and widening W into panels
// costs about as much as the multiply itself (measured: ~30% of a 32-row step in the packed path).
// Here an MB x R tile keeps MB x R accumulators and reads R rows of W (widened 8 at a time in
// registers) and MB rows of x along K, then reduces each accumulator once. The loop order streams W
// once: an R-row slab stays in L1 while every MB-row chunk of x (all of x in L2) passes over it.

template <class L, int MB, int R>
MK_AVX2_INLINE void dot_tile(const typename L::T* w, int64_t K, const float* x, int64_t ldx,
                             const float* bias, float* y, int64_t ldy) {
  __m256 acc[MB][R];
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 wr[R];
    for (int r = 0; r < R; ++r) wr[r] = L::load8(w + r * K + k);
    for (int m = 0; m < MB; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * ldx + k);
      for (int r = 0; r < R; ++r) acc[m][r] = _mm256_fmadd_ps(wr[r], xv, acc[m][r]);
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) {
      float v = hsum(acc[m][r]);
      for (int64_t k = K8; k < K; ++k) v += L::scalar(w[r * K + k]) * x[m * ldx + k];
      y[m * ldy + r] = v + (bias ? bias[r] : 0.f);
    }
}

template <class L, int R>
MK_AVX2_INLINE void dot_rows(int mb, const typename L::T* w, int64_t K, const float* x, int64_t ldx,
                             const float* bias, float* y, int64_t ldy) {
  switch (mb) {
    case 1: dot_tile<L, 1, R>(w, K, x, ldx, bias, y, ldy); break;
    case 2: dot_tile<L, 2, R>(w, K, x, ldx, bias, y, ldy); break;
    case 3: dot_tile<L, 3, R>(w, K, x, ldx, bias, y, ldy); break;
    default: dot_tile<L, 4, R>(w, K, x, ldx, bias, y, ldy);
  }
}

// y rows [0, M) x cols [n0, n1).
template <class L>
MK_AVX2 void mid_cols(const float* x, int64_t ldx, const typename L::T* w, const float* bias,
                      float* y, int64_t ldy, int64_t M, int64_t K, int64_t n0, int64_t n1) {
  constexpr int R = 3;
  for (int64_t n = n0; n < n1; n += R) {
    const int r = static_cast<int>(std::min<int64_t>(R, n1 - n));
    const auto* wn = w + n * K;
    const float* bn = bias ? bias + n : nullptr;
    for (int64_t m = 0; m < M; m += 4) {
      const int mb = static_cast<int>(std::min<int64_t>(4, M - m));
      if (r == 3) dot_rows<L, 3>(mb, wn, K, x + m * ldx, ldx, bn, y + m * ldy + n, ldy);
      else if (r == 2) dot_rows<L, 2>(mb, wn, K, x + m * ldx, ldx, bn, y + m * ldy + n, ldy);
      else dot_rows<L, 1>(mb, wn, K, x + m * ldx, ldx, bn, y + m * ldy + n, ldy);
    }
  }
}

template <class L>
void run_mid(const float* x, int64_t ldx, const typename L::T* w, const float* bias, float* y,
             int64_t ldy, int64_t M, int64_t N, int64_t K) {
  if (2.0 * M * N * K < 2e6) return mid_cols<L>(x, ldx, w, bias, y, ldy, M, K, 0, N);
  // chunks of 48 W rows (a multiple of the tile's 3), handed out dynamically
  parallel_row_chunks(1, N, 48, [&](int64_t, int64_t n0, int64_t n1) {
    mid_cols<L>(x, ldx, w, bias, y, ldy, M, K, n0, n1);
  });
}

// ---- packed GEMM path ----

MK_AVX2_INLINE void transpose8(__m256 (&r)[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
    __m256 *tt = t + 4 * h, *ss = s + 4 * h;
    ss[0] = _mm256_shuffle_ps(tt[0], tt[2], 0x44);
    ss[1] = _mm256_shuffle_ps(tt[0], tt[2], 0xee);
    ss[2] = _mm256_shuffle_ps(tt[1], tt[3], 0x44);
    ss[3] = _mm256_shuffle_ps(tt[1], tt[3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

// Transposes kc columns of up to 8 rows (src[i] for i < nrow; missing rows are zeros) into
// dst[k * ld + i], widening to f32. Columns are stored 8 wide: with ld < 8 the extra lanes spill
// into the next column's slots, which are written afterwards (dst needs 8 - ld floats of slack).
template <class L>
MK_AVX2_INLINE void pack_rows8(const typename L::T* const* src, int nrow, int64_t kc, float* dst,
                               int64_t ld) {
  const int64_t kc8 = kc & ~int64_t{7};
  for (int64_t k = 0; k < kc8; k += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = i < nrow ? L::load8(src[i] + k) : _mm256_setzero_ps();
    transpose8(r);
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (k + i) * ld, r[i]);
  }
  for (int64_t k = kc8; k < kc; ++k)
    for (int i = 0; i < std::min<int64_t>(ld, 8); ++i)
      dst[k * ld + i] = i < nrow ? L::scalar(src[i][k]) : 0.f;
}

// W rows [n0, n0 + nn) x cols [k0, k0 + kc) -> f32 panels of [kc][NR]; rows past nn are zero.
template <class L>
MK_AVX2 void pack_w(const typename L::T* w, int64_t K, int64_t n0, int64_t nn, int64_t k0,
                    int64_t kc, float* dst) {
  for (int64_t p = 0; p < nn; p += NR, dst += NR * kc)
    for (int h = 0; h < NR / 8; ++h) {  // two 8-row halves
      const int64_t rb = p + 8 * h;
      const int nrow = static_cast<int>(std::clamp<int64_t>(nn - rb, 0, 8));
      const typename L::T* src[8];
      for (int i = 0; i < 8; ++i) src[i] = i < nrow ? w + (n0 + rb + i) * K + k0 : nullptr;
      pack_rows8<L>(src, nrow, kc, dst + 8 * h, NR);
    }
}

// x rows [m0, m0 + mm) x cols [k0, k0 + kc) -> panels of [kc][MR]; rows past mm are zero.
MK_AVX2 void pack_x(const float* x, int64_t ldx, int64_t m0, int64_t mm, int64_t k0, int64_t kc,
                    float* dst) {
  static_assert(MR <= 8, "pack_rows8 packs up to 8 rows");
  for (int64_t p = 0; p < mm; p += MR, dst += MR * kc) {
    const int nrow = static_cast<int>(std::min<int64_t>(MR, mm - p));
    const float* src[8];
    for (int i = 0; i < 8; ++i) src[i] = i < nrow ? x + (m0 + p + i) * ldx + k0 : nullptr;
    pack_rows8<LdF32>(src, nrow, kc, dst, MR);
  }
}

// c[mr, nr] (+)= a[kc][MR]^T · b[kc][NR]. accum: add to c; else add bias (if any) and overwrite.
MK_AVX2 void kernel_6x16(int64_t kc, const float* __restrict a, const float* __restrict b,
                         float* c, int64_t ldc, int mr, int nr, const float* bias, bool accum) {
  for (int i = 0; i < mr; ++i) {  // the C tile is usually out of L2 by now: fetch it early
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + nr - 1), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av;
#define MK_ROW(i)                            \
  av = _mm256_broadcast_ss(a + i);           \
  c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); \
  c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);
    MK_ROW(0) MK_ROW(1) MK_ROW(2) MK_ROW(3) MK_ROW(4) MK_ROW(5)
#undef MK_ROW
    a += MR;
    b += NR;
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                             {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      const float* add = accum ? ci : bias;
      __m256 v0 = acc[i][0], v1 = acc[i][1];
      if (add) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(add));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(add + 8));
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  alignas(32) float t[MR][NR];  // edge tile: only the valid part of c is touched
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(t[i], acc[i][0]);
    _mm256_store_ps(t[i] + 8, acc[i][1]);
  }
  for (int i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    const float* add = accum ? ci : bias;
    for (int j = 0; j < nr; ++j) ci[j] = t[i][j] + (add ? add[j] : 0.f);
  }
}

// One thread's share: y rows [m0, m1) x cols [n0, n1). False when out of memory.
template <class L>
MK_AVX2 bool gemm_rect(const float* x, int64_t ldx, const typename L::T* w, const float* bias,
                       float* y, int64_t ldy, int64_t K, int64_t m0, int64_t m1, int64_t n0,
                       int64_t n1) {
  thread_local Scratch wbuf, xbuf;
  // Even K blocks (multiple of 8) so a ragged K does not leave a tiny last block.
  const int64_t nkb = (K + KC - 1) / KC;
  const int64_t kcb = std::min(K, round_up((K + nkb - 1) / nkb, 8));
  const int64_t nmb = (m1 - m0 + MC - 1) / MC;
  const int64_t mcb = round_up((m1 - m0 + nmb - 1) / nmb, MR);
  float* bw = wbuf.get(round_up(std::min(NC, n1 - n0), NR) * kcb);
  float* bx = xbuf.get(round_up(std::min(mcb, m1 - m0), MR) * kcb + 8);
  if (!bw || !bx) return false;
  for (int64_t nc0 = n0; nc0 < n1; nc0 += NC) {
    const int64_t nc = std::min(NC, n1 - nc0);
    for (int64_t k0 = 0; k0 < K; k0 += kcb) {
      const int64_t kc = std::min(kcb, K - k0);
      pack_w<L>(w, K, nc0, nc, k0, kc, bw);
      for (int64_t mc0 = m0; mc0 < m1; mc0 += mcb) {
        const int64_t mc = std::min(mcb, m1 - mc0);
        pack_x(x, ldx, mc0, mc, k0, kc, bx);
        for (int64_t j = 0; j < nc; j += NR) {
          const int nr = static_cast<int>(std::min<int64_t>(NR, nc - j));
          const float* bj = bias && k0 == 0 ? bias + nc0 + j : nullptr;
          for (int64_t i = 0; i < mc; i += MR) {
            const int mr = static_cast<int>(std::min<int64_t>(MR, mc - i));
            kernel_6x16(kc, bx + i * kc, bw + j * kc, y + (mc0 + i) * ldy + nc0 + j, ldy, mr, nr,
                        bj, k0 > 0);
          }
        }
      }
    }
  }
  return true;
}

template <class L>
void run_gemm(const float* x, int64_t ldx, const typename L::T* w, const float* bias, float* y,
              int64_t ldy, int64_t M, int64_t N, int64_t K) {
  // Below ~2 MFLOP the pool wake-up costs more than it saves.
  if (2.0 * M * N * K < 2e6) {
    if (!gemm_rect<L>(x, ldx, w, bias, y, ldy, K, 0, M, 0, N)) throw std::bad_alloc();
    return;
  }
  const int64_t ntn = (N + NR - 1) / NR, ntm = (M + MR - 1) / MR;
  std::atomic<bool> oom{false};
  parallel_run([&](int t, int nt) {
    // Split over N (each thread packs only its W) unless N is too narrow to share.
    bool ok = true;
    if (ntn >= 2 * nt || ntn >= ntm) {
      const int64_t a = ntn * t / nt * NR, b = std::min(N, ntn * (t + 1) / nt * NR);
      if (a < b) ok = gemm_rect<L>(x, ldx, w, bias, y, ldy, K, 0, M, a, b);
    } else {
      const int64_t a = ntm * t / nt * MR, b = std::min(M, ntm * (t + 1) / nt * MR);
      if (a < b) ok = gemm_rect<L>(x, ldx, w, bias, y, ldy, K, a, b, 0, N);
    }
    if (!ok) oom = true;
  });
  if (oom) throw std::bad_alloc();
}

template <class L>
void run(const float* x, int64_t ldx, const void* w, const float* bias, float* y, int64_t ldy,
         int64_t M, int64_t N, int64_t K) {
  const auto* wt = static_cast<const typename L::T*>(w);
  if (M <= kGemvMaxM)
    run_gemv<L>(x, ldx, wt, bias, y, ldy, M, N, K);
  else if (M <= kMidMaxM)
    run_mid<L>(x, ldx, wt, bias, y, ldy, M, N, K);
  else
    run_gemm<L>(x, ldx, wt, bias, y, ldy, M, N, K);
}

}  // namespace

void gemv_batch_avx2(const GemvProblem* probs, int64_t count, DType wdt, int64_t N, int64_t K) {
  switch (wdt) {
    case DType::F32: run_gemv_batch<LdF32>(probs, count, N, K); break;
    case DType::F16: run_gemv_batch<LdF16>(probs, count, N, K); break;
    case DType::BF16: run_gemv_batch<LdBF16>(probs, count, N, K); break;
    default: break;
  }
}

void gemm_avx2(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
               int64_t ldy, int64_t M, int64_t N, int64_t K) {
  switch (wdt) {
    case DType::F32: run<LdF32>(x, ldx, w, bias, y, ldy, M, N, K); break;
    case DType::F16: run<LdF16>(x, ldx, w, bias, y, ldy, M, N, K); break;
    case DType::BF16: run<LdBF16>(x, ldx, w, bias, y, ldy, M, N, K); break;
    default: break;
  }
}

}  // namespace mk::cpu::detail
