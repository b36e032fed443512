// bf16-weight GEMM on CPUs with AVX512-BF16 (Zen 4, Sapphire Rapids and later), for M > 4 rows
// (and a GEMV for M <= 2, at the end):
// y = x · W^T (+ bias) with x rounded to bf16 (nearest even) and f32 accumulation, the contract of
// a bf16 GEMM on tensor cores and of llama.cpp's bf16 CPU path. VDPBF16PS does 32 multiply-adds
// per instruction, twice the f32 FMA rate: measured here 224 GFLOP/s per core against 128 for AVX2
// FMA. (M = 3-4 stays on the AVX2 GEMV, which is bound by reading W, not by arithmetic; on these
// CPUs it and the GEMV below round x to bf16 the same way, so a row's products do not depend on
// how many rows share the call: only the order of the f32 sums differs, as between any two f32
// GEMM paths.)
//
// Layout: W is read in place, row-major bf16: each step broadcasts one (k, k+1) weight pair of
// a W row as a 32-bit word. x is packed once per call into panels of 16 rows, [K/2][16] words of
// (x[2j], x[2j+1]) bf16 pairs, so one 64-byte load feeds 16 rows. A tile of 8 W rows x P panels
// keeps 8P accumulators in registers over all of K; no W packing, no horizontal sums.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/threadpool.h"
#include "cpu/gemm_internal.h"

#define MK_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define MK_BF16_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), always_inline)) inline

namespace mk::cpu::detail {
namespace {

constexpr int kRows = 8;          // W rows per tile
constexpr int kMaxP = 3;          // x panels (of 16 rows) per tile: 24 accumulators
constexpr int64_t kMBlock = 192;  // x rows per block: its panels stay in L2 while W tiles pass
constexpr int64_t kChunk = 48;    // W rows handed out per work item (6 tiles)

// x rows [0, mm) -> panels of 16 rows at dst + p * Kh * 16 (words), word [j][r] = bf16 pair
// (x[r][2j], x[r][2j + 1]) in (low, high) halves; rows >= mm and k >= K are zeros.
MK_BF16 void pack_x_pairs(const float* x, int64_t ldx, int64_t mm, int64_t K, int64_t Kh,
                          uint32_t* dst) {
  const int64_t P = (mm + 15) / 16;
  alignas(64) uint32_t row[16];
  for (int64_t p = 0; p < P; ++p) {
    uint32_t* d = dst + p * Kh * 16;
    for (int r = 0; r < 16; ++r) {
      const int64_t m = p * 16 + r;
      if (m >= mm) {
        for (int64_t j = 0; j < Kh; ++j) d[j * 16 + r] = 0;
        continue;
      }
      const float* xr = x + m * ldx;
      for (int64_t k = 0; k < K; k += 32) {  // 32 floats -> 16 pair words
        const int64_t left = K - k;
        const __mmask16 lo = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
        const __mmask16 hi = left >= 32 ? 0xffff : left <= 16 ? 0 : static_cast<__mmask16>((1u << (left - 16)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(lo, xr + k);
        const __m512 b = _mm512_maskz_loadu_ps(hi, xr + k + 16);
        _mm512_store_si512(row, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
        const int64_t n = std::min<int64_t>(16, Kh - k / 2);
        for (int64_t j = 0; j < n; ++j) d[(k / 2 + j) * 16 + r] = row[j];
      }
    }
  }
}

// The (k, k+1) weight pair of a bf16 row as one word; the odd tail pairs its weight with zero.
MK_BF16_INLINE uint32_t pair_at(const uint16_t* w, int64_t j) {
  uint32_t v;
  std::memcpy(&v, w + 2 * j, 4);
  return v;
}

// One (k, k+1) step: acc[i][p] += W pair word[i] . x pairs of panel p at xp + p * pstride.
template <int P>
MK_BF16_INLINE void step(__m512 (&acc)[kRows][P], const uint32_t (&word)[kRows], const uint32_t* xp,
                         int64_t pstride) {
  __m512bh xv[P];
  for (int p = 0; p < P; ++p)
    xv[p] = reinterpret_cast<__m512bh>(_mm512_load_si512(xp + p * pstride));
  for (int i = 0; i < kRows; ++i) {
    const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(word[i])));
    for (int p = 0; p < P; ++p) acc[i][p] = _mm512_dpbf16_ps(acc[i][p], b, xv[p]);
  }
}

// out[i][p * 16 + r]: W row i against row r of panel p, over all K; W rows at w[i] (a short tile
// repeats its last row), panel p at xp + p * pstride.
template <int P>
MK_BF16_INLINE void tile(const uint16_t* const (&w)[kRows], int64_t K, const uint32_t* xp,
                         int64_t pstride, float* out /* [kRows][P * 16] */) {
  __m512 acc[kRows][P];
  for (int i = 0; i < kRows; ++i)
    for (int p = 0; p < P; ++p) acc[i][p] = _mm512_setzero_ps();
  const int64_t Kfull = K / 2;
  uint32_t word[kRows];
#pragma GCC unroll 2
  for (int64_t j = 0; j < Kfull; ++j) {
    for (int i = 0; i < kRows; ++i) word[i] = pair_at(w[i], j);
    step<P>(acc, word, xp + j * 16, pstride);
  }
  if (K & 1) {
    for (int i = 0; i < kRows; ++i) word[i] = w[i][K - 1];  // high half (x's zero pad) is zero
    step<P>(acc, word, xp + Kfull * 16, pstride);
  }
  for (int i = 0; i < kRows; ++i)
    for (int p = 0; p < P; ++p) _mm512_store_ps(out + i * P * 16 + p * 16, acc[i][p]);
}

// y rows [m0, m0 + mm) x cols [n0, n1) from the packed x block xp (panels of Kh * 16 words).
MK_BF16 void block(const uint32_t* xp, int64_t Kh, int64_t mm, const uint16_t* w, int64_t K,
                   const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  alignas(64) float out[kRows * kMaxP * 16];
  const int64_t P = (mm + 15) / 16;
  for (int64_t n = n0; n < n1; n += kRows) {
    const int r = static_cast<int>(std::min<int64_t>(kRows, n1 - n));
    const uint16_t* wr[kRows];
    for (int i = 0; i < kRows; ++i) wr[i] = w + (n + std::min(i, r - 1)) * K;
    for (int64_t p0 = 0; p0 < P; p0 += kMaxP) {
      const int np = static_cast<int>(std::min<int64_t>(kMaxP, P - p0));
      const uint32_t* xq = xp + p0 * Kh * 16;
      if (np == 3) tile<3>(wr, K, xq, Kh * 16, out);
      else if (np == 2) tile<2>(wr, K, xq, Kh * 16, out);
      else tile<1>(wr, K, xq, Kh * 16, out);
      const int64_t rows = std::min<int64_t>(np * 16, mm - p0 * 16);
      for (int64_t m = 0; m < rows; ++m) {
        float* ym = y + (p0 * 16 + m) * ldy + n;
        for (int i = 0; i < r; ++i) ym[i] = out[i * np * 16 + m] + (bias ? bias[n + i] : 0.f);
      }
    }
  }
}

// ---- GEMV: M <= 2 rows (decode) ----
//
// W streamed from memory once, in place, one row at a time: one 64-byte load is 32 bf16 weights,
// and one VDPBF16PS multiplies them by 32 bf16 x values with f32 accumulation (x packed once per
// call, in order, rounded as pack_x_pairs rounds it): 2-3 instructions per cache line of W against
// ~10 for the AVX2 path's shift/mask widening. (3-4 rows stay on the AVX2 GEMV, which blocks K
// for x and measured faster there at 2048².)

constexpr int64_t kGemvThreadBytes = 1 << 20;  // below this much W, the pool wake-up costs more
constexpr int64_t kGemvChunkBytes = 256 << 10;  // W handed out per work item
constexpr int64_t kGemvPrefetch = 4096;         // software prefetch distance in a row, bytes

MK_BF16_INLINE __mmask16 mask16(int64_t left) {
  return left >= 16 ? 0xffff : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
}

// (not _mm512_reduce_add_ps, and the maskz forms: GCC 12's plain ones trip -Wmaybe-uninitialized
// inside its own header)
MK_BF16_INLINE float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xffff, v, v, 0x4e));  // + the other 256 bits
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xffff, v, v, 0xb1));  // + the next 128 bits
  __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// x rows [0, M) -> bf16 at dst + m * Kp (Kp = round_up(K, 32), dst 64-byte aligned), zero padded.
MK_BF16 void pack_x_bf16(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t Kp,
                         uint16_t* dst) {
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * ldx;
    for (int64_t k = 0; k < Kp; k += 32) {
      const __m512 a = _mm512_maskz_loadu_ps(mask16(K - k), xr + k);
      const __m512 b = _mm512_maskz_loadu_ps(mask16(K - k - 16), xr + k + 16);
      _mm512_store_si512(dst + m * Kp + k, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
    }
  }
}

// acc[u][m] += 32 W weights wv . x rows m (at xp + m * Kp).
template <int MB, int U>
MK_BF16_INLINE void gemv_step(__m512 (&acc)[U][MB], int u, __m512i wv, const uint16_t* xp,
                              int64_t Kp) {
  for (int m = 0; m < MB; ++m) {
    const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_load_si512(xp + m * Kp));
    acc[u][m] = _mm512_dpbf16_ps(acc[u][m], reinterpret_cast<__m512bh>(wv), xv);
  }
}

// y[m * ldy + n] = bias[n] + dot(W row n, x row m) for W rows [n0, n1), x rows m < MB.
template <int MB>
MK_BF16 void gemv_rows(const uint16_t* w, int64_t K, const uint16_t* xp, int64_t Kp,
                       const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int U = 4 / MB;  // 4 accumulators in flight
  const int64_t K32 = K & ~int64_t{31}, KU = K32 - K32 % (32 * U);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* wn = w + n * K;
    __m512 acc[U][MB];
    for (int i = 0; i < U * MB; ++i) (&acc[0][0])[i] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < KU; k += 32 * U)
      for (int u = 0; u < U; ++u) {
        const uint16_t* p = wn + k + 32 * u;
        _mm_prefetch(reinterpret_cast<const char*>(p) + kGemvPrefetch, _MM_HINT_T0);
        gemv_step<MB, U>(acc, u, _mm512_loadu_si512(p), xp + k + 32 * u, Kp);
      }
    for (; k < K32; k += 32) gemv_step<MB, U>(acc, 0, _mm512_loadu_si512(wn + k), xp + k, Kp);
    if (k < K) {  // masked: no lane reads past the row (or past W); x is zero padded
      const __mmask32 mk = static_cast<__mmask32>((uint64_t{1} << (K - k)) - 1);
      gemv_step<MB, U>(acc, 0, _mm512_maskz_loadu_epi16(mk, wn + k), xp + k, Kp);
    }
    for (int m = 0; m < MB; ++m) {
      __m512 v = acc[0][m];
      for (int u = 1; u < U; ++u) v = _mm512_add_ps(v, acc[u][m]);
      y[m * ldy + n] = hsum(v) + (bias ? bias[n] : 0.f);
    }
  }
}

}  // namespace

bool gemv_bf16_avx512(const float* x, int64_t ldx, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t M, int64_t N, int64_t K) {
  const int64_t Kp = round_up(K, 32);
  thread_local Scratch xbuf;  // the caller's buffer (a worker's thread_local is another one)
  uint16_t* const xp = reinterpret_cast<uint16_t*>(xbuf.get(M * Kp / 2));
  if (!xp) return false;
  pack_x_bf16(x, ldx, M, K, Kp, xp);
  auto rows = [&](int64_t n0, int64_t n1) {
    if (M == 1) gemv_rows<1>(w, K, xp, Kp, bias, y, ldy, n0, n1);
    else gemv_rows<2>(w, K, xp, Kp, bias, y, ldy, n0, n1);
  };
  if (N * K * 2 < kGemvThreadBytes) {
    rows(0, N);
    return true;
  }
  // chunks of W rows (16-row multiples: whole cache lines of y) handed out dynamically, so a
  // worker that wakes late simply takes fewer
  const int64_t chunk = std::max<int64_t>(16, round_up(kGemvChunkBytes / (2 * K), 16));
  parallel_row_chunks(1, N, chunk, [&](int64_t, int64_t n0, int64_t n1) { rows(n0, n1); });
  return true;
}

MK_BF16 void round_bf16_avx512(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
    // (the maskz forms: GCC 12's plain ones trip -Wmaybe-uninitialized inside its own header)
    const __m512i wide = _mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, h), 16);
    _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(wide));
  }
}

bool gemm_bf16_avx512(const float* x, int64_t ldx, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t M, int64_t N, int64_t K) {
  const int64_t Kh = (K + 1) / 2;
  const int64_t mb = std::min(M, kMBlock);
  // the packed x of every M block, up front on the calling thread (cheap: M x K once)
  const int64_t nblk = (M + mb - 1) / mb;
  const int64_t blk_words = round_up(mb, 16) * Kh;
  thread_local Scratch buf;
  // the caller's buffer (a worker's thread_local is another one); 4-byte pair words
  uint32_t* const xp = reinterpret_cast<uint32_t*>(buf.get(nblk * blk_words));
  if (!xp) return false;
  for (int64_t b = 0; b < nblk; ++b)
    pack_x_pairs(x + b * mb * ldx, ldx, std::min(mb, M - b * mb), K, Kh, xp + b * blk_words);
  auto run_item = [&](int64_t b, int64_t n0, int64_t n1) {
    const int64_t m0 = b * mb;
    block(xp + b * blk_words, Kh, std::min(mb, M - m0), w, K, bias, y + m0 * ldy, ldy, n0, n1);
  };
  // Below ~2 MFLOP the pool wake-up costs more than it saves.
  if (2.0 * M * N * K < 2e6) {
    for (int64_t b = 0; b < nblk; ++b) run_item(b, 0, N);
    return true;
  }
  parallel_row_chunks(nblk, N, kChunk, run_item);
  return true;
}

}  // namespace mk::cpu::detail
