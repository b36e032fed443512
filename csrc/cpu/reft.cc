// Representation editors on the CPU (definition: core/reft.h). A row costs 2r dots over C (u and v)
// and a rank-r update; rows are independent (distinct), so work is split over rows, and, when fewer
// rows than threads are edited, over blocks of kReftChunk channels too (two passes: the blocks'
// partial dots, then d and the update per block). Both ways sum the same partials in the same order,
// so the result is the same bits whatever the rows and threads. Dots and the update have an AVX2/FMA
// form (MK_AVX2, taken after use_avx2_kernels(), which MAMBAKIT_FORCE_SCALAR=1 turns off) and a
// portable one.
#include <algorithm>
#include <vector>

#include "core/cpu_features.h"
#include "core/reft.h"
#include "core/threadpool.h"
#include "cpu/avx2_exp.h"
#include "cpu/kernels.h"

namespace mk::cpu {
namespace {

constexpr int64_t kGrainMacs = 1 << 15;  // below this many multiply-adds, threading costs more than it saves

inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return bf16_to_f32(v); }

// ---- portable ----
template <class T>
float dot_base(const T* w, const float* h, int64_t len) {
  float s = 0.f;
  for (int64_t c = 0; c < len; ++c) s += widen(w[c]) * h[c];
  return s;
}
// y[c] += Σ_j R[j·C + c] d[j] for c < len
template <class T>
void update_base(const T* R, int64_t C, int64_t r, const float* d, float* y, int64_t len) {
  for (int64_t c = 0; c < len; ++c) {
    float acc = 0.f;
    for (int64_t j = 0; j < r; ++j) acc += widen(R[j * C + c]) * d[j];
    y[c] += acc;
  }
}

// ---- AVX2/FMA ----
MK_AVX2_INLINE __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
MK_AVX2_INLINE __m256 load8(const uint16_t* p) {  // a bf16 is the top half of an f32
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

template <class T>
MK_AVX2 void update_avx2(const T* R, int64_t C, int64_t r, const float* d, float* y, int64_t len) {
  int64_t c = 0;
  for (; c + 8 <= len; c += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < r; ++j) acc = _mm256_fmadd_ps(load8(R + j * C + c), _mm256_set1_ps(d[j]), acc);
    _mm256_storeu_ps(y + c, _mm256_add_ps(_mm256_loadu_ps(y + c), acc));
  }
  update_base(R + c, C, r, d, y + c, len - c);
}

// Four W rows and the four R rows with the same indices against one h, in one sweep over the channels:
// 8 accumulators, then one transposing add tree (hadd) instead of 8 horizontal sums. Every
// accumulator's lanes go through the same tree, so W = R gives u = v exactly (the identity property).
// out[0..4) = W·h, out[4..8) = R·h for rows j0 .. j0 + 3 (nw of them real; the rest read row j0).
template <class T>
MK_AVX2 void dots4_avx2(const T* W, const T* R, int64_t C, int64_t nw, const float* h, int64_t len, float* out) {
  const T* w[4];
  const T* rr[4];
  for (int q = 0; q < 4; ++q) w[q] = W + (q < nw ? q : 0) * C, rr[q] = R + (q < nw ? q : 0) * C;
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= len; c += 8) {
    const __m256 x = _mm256_loadu_ps(h + c);
    for (int q = 0; q < 4; ++q) {
      a[q] = _mm256_fmadd_ps(load8(w[q] + c), x, a[q]);
      a[4 + q] = _mm256_fmadd_ps(load8(rr[q] + c), x, a[4 + q]);
    }
  }
  // a[q] lanes -> one sum each: pairwise hadds (lanes 0+1, 2+3 per 128-bit half), then the halves
  const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 t0 = _mm256_hadd_ps(s01, s23), t1 = _mm256_hadd_ps(s45, s67);  // [q0..q3 | q0..q3] per half
  const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t0), _mm256_extractf128_ps(t0, 1));
  const __m128 v = _mm_add_ps(_mm256_castps256_ps128(t1), _mm256_extractf128_ps(t1, 1));
  _mm_storeu_ps(out, u);
  _mm_storeu_ps(out + 4, v);
  for (; c < len; ++c)  // the ragged end, the same order for W and R
    for (int q = 0; q < 4; ++q) out[q] += widen(w[q][c]) * h[c], out[4 + q] += widen(rr[q][c]) * h[c];
}

// ---- the two passes, on one row's channel block ----
template <class T>
struct Reft {
  const ReftArgs& a;
  float (*dot)(const T*, const float*, int64_t);  // the portable path, one dot at a time
  void (*dots4)(const T*, const T*, int64_t, int64_t, const float*, int64_t, float*);  // AVX2: four W and R rows a sweep
  void (*update)(const T*, int64_t, int64_t, const float*, float*, int64_t);
  int64_t K;  // channel blocks per row

  const T* weights(const void* base, int64_t i) const {
    return static_cast<const T*>(base) + static_cast<int64_t>(a.editor[i]) * a.r * a.C;
  }
  // part[0, r) = W_e h, part[r, 2r) = R_e h over channel block k of row i.
  void dots(int64_t i, int64_t k, float* part) const {
    const int64_t c0 = k * kReftChunk, len = std::min(a.C - c0, kReftChunk), row = a.rows[i] * a.ldx + c0;
    float h[kReftChunk];
    for (int64_t c = 0; c < len; ++c) h[c] = a.pending ? a.x[row + c] + a.pending[row + c] : a.x[row + c];
    const T *W = weights(a.W, i) + c0, *R = weights(a.R, i) + c0;
    if (dots4) {
      float o[8];
      for (int64_t j = 0; j < a.r; j += 4) {
        const int64_t nw = std::min<int64_t>(4, a.r - j);
        dots4(W + j * a.C, R + j * a.C, a.C, nw, h, len, o);
        for (int64_t q = 0; q < nw; ++q) part[j + q] = o[q], part[a.r + j + q] = o[4 + q];
      }
      return;
    }
    for (int64_t j = 0; j < a.r; ++j) part[j] = dot(W + j * a.C, h, len);
    for (int64_t j = 0; j < a.r; ++j) part[a.r + j] = dot(R + j * a.C, h, len);
  }
  // d[j] of row i from its K blocks' partial dots (parts: K × 2r, in block order).
  void delta(int64_t i, const float* parts, float* d) const {
    const float* b = a.b + static_cast<int64_t>(a.editor[i]) * a.r;
    for (int64_t j = 0; j < a.r; ++j) {
      float u = 0.f, v = 0.f;
      for (int64_t k = 0; k < K; ++k) u += parts[k * 2 * a.r + j], v += parts[k * 2 * a.r + a.r + j];
      d[j] = reft_delta(a.formula, a.act, u + b[j], v);
    }
  }
  void apply(int64_t i, int64_t k, const float* d) const {
    const int64_t c0 = k * kReftChunk, len = std::min(a.C - c0, kReftChunk);
    float* y = (a.pending ? a.pending : a.x) + a.rows[i] * a.ldx + c0;
    update(weights(a.R, i) + c0, a.C, a.r, d, y, len);
  }

  void run() const {
    const int64_t n = a.n, r = a.r, row_macs = 3 * r * a.C;
    if (K == 1 || n >= num_threads() || n * row_macs < kGrainMacs) {  // split over rows
      parallel_for(n, std::max<int64_t>(1, kGrainMacs / row_macs), [&](int64_t s, int64_t e) {
        std::vector<float> parts(static_cast<size_t>(K * 2 * r)), d(static_cast<size_t>(r));
        for (int64_t i = s; i < e; ++i) {
          for (int64_t k = 0; k < K; ++k) dots(i, k, parts.data() + k * 2 * r);
          delta(i, parts.data(), d.data());
          for (int64_t k = 0; k < K; ++k) apply(i, k, d.data());
        }
      });
      return;
    }
    // few rows, many channels: over (row, block) items, the partial dots first
    std::vector<float> parts(static_cast<size_t>(n * K * 2 * r));
    const int64_t grain = std::max<int64_t>(1, kGrainMacs / (3 * r * kReftChunk));
    parallel_for(n * K, grain, [&](int64_t s, int64_t e) {
      for (int64_t t = s; t < e; ++t) dots(t / K, t % K, parts.data() + t * 2 * r);
    });
    parallel_for(n * K, grain, [&](int64_t s, int64_t e) {
      std::vector<float> d(static_cast<size_t>(r));
      for (int64_t t = s; t < e; ++t) {
        delta(t / K, parts.data() + t / K * K * 2 * r, d.data());
        apply(t / K, t % K, d.data());
      }
    });
  }
};

template <class T>
void run_reft(const ReftArgs& a) {
  const bool avx2 = use_avx2_kernels();
  const Reft<T> k{a, dot_base<T>, avx2 ? dots4_avx2<T> : nullptr, avx2 ? update_avx2<T> : update_base<T>,
                  (a.C + kReftChunk - 1) / kReftChunk};
  k.run();
}

}  // namespace

void reft(const ReftArgs& a) {
  if (a.n <= 0) return;
  if (a.wdt == DType::BF16) run_reft<uint16_t>(a);
  else run_reft<float>(a);
}

}  // namespace mk::cpu
