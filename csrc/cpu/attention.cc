// Bidirectional multi-head attention and LLaDA's rotary embedding on the CPU (core/attn.h).
//
// Attention is tiled like flash attention: one work item is (batch row, K/V head, query tile); its
// rows are the tile's queries of every query head sharing that K/V head (grouped K/V), so each K/V
// tile is loaded and converted once for all of them. Per key tile of kKT keys: K is transposed
// into a local [hd][kKT] block (so the score loop runs along keys, 8 per vector), scores and the
// online softmax (running max m, sum l, the accumulator rescaled when m grows) stay in f32, and
// O += P·V runs along head dims. AVX2/FMA with 6-row register blocks when the CPU has it (the
// same arithmetic order as the portable path, up to FMA contraction).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/threadpool.h"
#include "cpu/attn.h"
#include "cpu/avx2_exp.h"

namespace mk::cpu {
namespace {

constexpr int64_t kKT = 64;        // keys per tile
constexpr int64_t kMaxRows = 64;   // rows (queries × grouped heads) per work item
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float load_kv(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

// Per-thread tiles of one work item.
struct Scratch {
  std::vector<float> kt, vt, s, o, m, l, junk;
  Scratch() : kt(kAttnMaxHeadDim * kKT), vt(kKT * kAttnMaxHeadDim), s(kMaxRows * kKT), o(kMaxRows * kAttnMaxHeadDim),
              m(kMaxRows), l(kMaxRows), junk(kKT) {}
};

// One work item: queries [t0, t0 + nt) of batch row b, query heads kvh*g + h0 + [0, gh) (all
// reading K/V head kvh); row r = (query t0 + r / gh, head h0 + r % gh), R = nt * gh <= kMaxRows.
struct Item {
  const AttnArgs& a;
  int64_t b, kvh, g, h0, gh, t0, nt, R;
  int64_t head(int64_t r) const { return kvh * g + h0 + r % gh; }
  const float* qrow(int64_t r) const { return a.q + (b * a.Tq + t0 + r / gh) * a.ldq + head(r) * a.hd; }
  float* orow(int64_t r) const { return a.o + (b * a.Tq + t0 + r / gh) * a.ldo + head(r) * a.hd; }
};

// Loads keys [j0, j0 + nk) of the item's K/V head: K transposed into kt [hd][kKT], V into vt
// [kKT][hd]; the tile's missing keys are zeros.
void load_tile(const Item& it, int64_t j0, int64_t nk, Scratch& sc) {
  const AttnArgs& a = it.a;
  const int64_t slot = a.slots ? a.slots[it.b] : it.b, ld = a.KVH * a.hd, hd = a.hd;
  const int64_t base = slot * a.slot_stride + it.kvh * hd;
  if (nk < kKT) {
    std::fill(sc.kt.begin(), sc.kt.begin() + hd * kKT, 0.f);
    std::fill(sc.vt.begin(), sc.vt.begin() + kKT * hd, 0.f);
  }
  for (int64_t j = 0; j < nk; ++j) {
    const int64_t off = base + (j0 + j) * ld;
    if (a.kvdt == DType::F32) {
      const float* kp = static_cast<const float*>(a.k) + off;
      for (int64_t d = 0; d < hd; ++d) sc.kt[d * kKT + j] = kp[d];
      std::memcpy(&sc.vt[j * hd], static_cast<const float*>(a.v) + off, hd * sizeof(float));
    } else {
      for (int64_t d = 0; d < hd; ++d) sc.kt[d * kKT + j] = load_kv(a.k, a.kvdt, off + d);
      for (int64_t d = 0; d < hd; ++d) sc.vt[j * hd + d] = load_kv(a.v, a.kvdt, off + d);
    }
  }
}

// ---- portable path --------------------------------------------------------------------------

void scores_scalar(const Item& it, const float* bias, int64_t nk, Scratch& sc) {
  const int64_t hd = it.a.hd;
  for (int64_t r = 0; r < it.R; ++r) {
    const float* q = it.qrow(r);
    float* s = &sc.s[r * kKT];
    for (int64_t j = 0; j < kKT; ++j) s[j] = 0.f;
    for (int64_t d = 0; d < hd; ++d) {
      const float qd = q[d];
      const float* k = &sc.kt[d * kKT];
      for (int64_t j = 0; j < kKT; ++j) s[j] += qd * k[j];
    }
    for (int64_t j = 0; j < kKT; ++j) s[j] = j < nk ? s[j] * it.a.scale + (bias ? bias[j] : 0.f) : kNegInf;
  }
}

// Online softmax of one tile: updates m, l, rescales the accumulators, turns s into p. Returns
// whether any row has a finite maximum (else the tile adds nothing).
void softmax_tile_scalar(const Item& it, Scratch& sc) {
  const int64_t hd = it.a.hd;
  for (int64_t r = 0; r < it.R; ++r) {
    float* s = &sc.s[r * kKT];
    float mx = sc.m[r];
    for (int64_t j = 0; j < kKT; ++j) mx = std::max(mx, s[j]);
    if (mx == kNegInf) {  // every key so far dropped: nothing to add
      for (int64_t j = 0; j < kKT; ++j) s[j] = 0.f;
      continue;
    }
    const float corr = std::exp(sc.m[r] - mx);  // 0 when m was -inf
    float sum = 0.f;
    for (int64_t j = 0; j < kKT; ++j) {
      s[j] = s[j] == kNegInf ? 0.f : std::exp(s[j] - mx);
      sum += s[j];
    }
    sc.l[r] = sc.l[r] * corr + sum;
    sc.m[r] = mx;
    if (corr != 1.f)
      for (int64_t d = 0; d < hd; ++d) sc.o[r * hd + d] *= corr;
  }
}

void pv_scalar(const Item& it, int64_t nk, Scratch& sc) {
  const int64_t hd = it.a.hd;
  for (int64_t r = 0; r < it.R; ++r) {
    float* o = &sc.o[r * hd];
    const float* p = &sc.s[r * kKT];
    for (int64_t j = 0; j < nk; ++j) {
      const float pj = p[j];
      const float* v = &sc.vt[j * hd];
      for (int64_t d = 0; d < hd; ++d) o[d] += pj * v[d];
    }
  }
}

// ---- AVX2/FMA path --------------------------------------------------------------------------

constexpr int kRB = 6;    // score rows per register block (12 accumulators of 8 lanes)
constexpr int kPvRB = 6;  // P·V rows per register block (12 accumulators)

MK_AVX2 void scores_avx2(const Item& it, const float* bias, int64_t nk, Scratch& sc) {
  const int64_t hd = it.a.hd;
  const __m256 scale = _mm256_set1_ps(it.a.scale);
  const float* q[kRB];
  for (int64_t r0 = 0; r0 < it.R; r0 += kRB) {
    const int nr = static_cast<int>(std::min<int64_t>(kRB, it.R - r0));
    for (int i = 0; i < kRB; ++i) q[i] = it.qrow(r0 + std::min(i, nr - 1));
    for (int64_t j = 0; j < kKT; j += 16) {
      __m256 acc[kRB][2];
#pragma GCC unroll 6
      for (int i = 0; i < kRB; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      const float* kp = &sc.kt[j];
      for (int64_t d = 0; d < hd; ++d, kp += kKT) {
        const __m256 k0 = _mm256_loadu_ps(kp), k1 = _mm256_loadu_ps(kp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < kRB; ++i) {
          const __m256 qd = _mm256_broadcast_ss(q[i] + d);
          acc[i][0] = _mm256_fmadd_ps(qd, k0, acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps(qd, k1, acc[i][1]);
        }
      }
      // constant bounds (and a guard) rather than i < nr: a runtime bound on acc's index would
      // make the compiler keep acc in memory, storing every accumulator each iteration
#pragma GCC unroll 6
      for (int i = 0; i < kRB; ++i)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          if (i >= nr) continue;
          float* s = &sc.s[(r0 + i) * kKT + j + 8 * h];
          __m256 v = _mm256_mul_ps(acc[i][h], scale);
          if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j + 8 * h));
          _mm256_storeu_ps(s, v);
        }
    }
  }
  if (nk < kKT)
    for (int64_t r = 0; r < it.R; ++r)
      for (int64_t j = nk; j < kKT; ++j) sc.s[r * kKT + j] = kNegInf;
}

MK_AVX2 void softmax_tile_avx2(const Item& it, Scratch& sc) {
  const int64_t hd = it.a.hd;
  const __m256 ninf = _mm256_set1_ps(kNegInf);
  for (int64_t r = 0; r < it.R; ++r) {
    float* s = &sc.s[r * kKT];
    __m256 vm = _mm256_set1_ps(sc.m[r]);
    for (int64_t j = 0; j < kKT; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(s + j));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float mx = _mm_cvtss_f32(m4);
    if (mx == kNegInf) {
      for (int64_t j = 0; j < kKT; j += 8) _mm256_storeu_ps(s + j, _mm256_setzero_ps());
      continue;
    }
    const float corr = std::exp(sc.m[r] - mx);
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < kKT; j += 8) {
      const __m256 x = _mm256_loadu_ps(s + j);
      __m256 p = detail::exp_acc(_mm256_sub_ps(x, vmx));
      p = _mm256_blendv_ps(p, _mm256_setzero_ps(), _mm256_cmp_ps(x, ninf, _CMP_EQ_OQ));
      _mm256_storeu_ps(s + j, p);
      vsum = _mm256_add_ps(vsum, p);
    }
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(vsum), _mm256_extractf128_ps(vsum, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
    sc.l[r] = sc.l[r] * corr + _mm_cvtss_f32(s4);
    sc.m[r] = mx;
    if (corr != 1.f)
      for (int64_t d = 0; d < hd; ++d) sc.o[r * hd + d] *= corr;
  }
}

MK_AVX2 void pv_avx2(const Item& it, int64_t nk, Scratch& sc) {
  const int64_t hd = it.a.hd, hd16 = hd / 16 * 16;
  for (int64_t r0 = 0; r0 < it.R; r0 += kPvRB) {
    const int nr = static_cast<int>(std::min<int64_t>(kPvRB, it.R - r0));
    const float* p[kPvRB];
    for (int i = 0; i < kPvRB; ++i) p[i] = &sc.s[(r0 + std::min(i, nr - 1)) * kKT];
    for (int64_t d = 0; d < hd16; d += 16) {
      __m256 acc0[kPvRB], acc1[kPvRB];  // two 1-D arrays: GCC keeps a 2-D one in memory
#pragma GCC unroll 6
      for (int i = 0; i < kPvRB; ++i) {
        const float* o = &sc.o[(r0 + std::min(i, nr - 1)) * hd + d];
        acc0[i] = _mm256_loadu_ps(o);
        acc1[i] = _mm256_loadu_ps(o + 8);
      }
      const float* vp = &sc.vt[d];
      for (int64_t j = 0; j < nk; ++j, vp += hd) {
        const __m256 v0 = _mm256_loadu_ps(vp), v1 = _mm256_loadu_ps(vp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < kPvRB; ++i) {
          const __m256 pj = _mm256_broadcast_ss(p[i] + j);
          acc0[i] = _mm256_fmadd_ps(pj, v0, acc0[i]);
          acc1[i] = _mm256_fmadd_ps(pj, v1, acc1[i]);
        }
      }
      // unconditional stores (rows past nr into a junk row): with a guard GCC keeps acc in memory
#pragma GCC unroll 6
      for (int i = 0; i < kPvRB; ++i) {
        float* o = i < nr ? &sc.o[(r0 + i) * hd + d] : sc.junk.data();
        _mm256_storeu_ps(o, acc0[i]);
        _mm256_storeu_ps(o + 8, acc1[i]);
      }
    }
    for (int i = 0; i < nr; ++i) {  // head dims past the last multiple of 16
      float* o = &sc.o[(r0 + i) * hd];
      for (int64_t j = 0; j < nk; ++j) {
        const float pj = p[i][j];
        const float* v = &sc.vt[j * hd];
        for (int64_t d = hd16; d < hd; ++d) o[d] += pj * v[d];
      }
    }
  }
}

void run_item(const Item& it, bool avx2, Scratch& sc) {
  const AttnArgs& a = it.a;
  const int64_t hd = a.hd;
  std::fill(sc.o.begin(), sc.o.begin() + it.R * hd, 0.f);
  std::fill(sc.m.begin(), sc.m.begin() + it.R, kNegInf);
  std::fill(sc.l.begin(), sc.l.begin() + it.R, 0.f);
  float bias_tile[kKT];
  for (int64_t j0 = 0; j0 < a.Tk; j0 += kKT) {
    const int64_t nk = std::min(kKT, a.Tk - j0);
    const float* bias = nullptr;
    if (a.bias) {
      const float* brow = a.bias + it.b * a.ldbias + j0;
      bool any_finite = false;
      for (int64_t j = 0; j < kKT; ++j) {
        bias_tile[j] = j < nk ? brow[j] : kNegInf;
        any_finite |= bias_tile[j] != kNegInf;
      }
      if (!any_finite) continue;  // a tile of dropped keys (padding) adds nothing
      bias = bias_tile;
    }
    load_tile(it, j0, nk, sc);
    if (avx2) {
      scores_avx2(it, bias, nk, sc);
      softmax_tile_avx2(it, sc);
      pv_avx2(it, nk, sc);
    } else {
      scores_scalar(it, bias, nk, sc);
      softmax_tile_scalar(it, sc);
      pv_scalar(it, nk, sc);
    }
  }
  for (int64_t r = 0; r < it.R; ++r) {
    float* o = it.orow(r);
    const float inv = sc.l[r] > 0.f ? 1.f / sc.l[r] : 0.f;
    for (int64_t d = 0; d < hd; ++d) o[d] = sc.o[r * hd + d] * inv;
  }
}

}  // namespace

void attention(const AttnArgs& a) {
  const int64_t g = a.H / a.KVH, gh = std::min(g, kMaxRows), hchunks = (g + gh - 1) / gh;
  const int64_t qt = kMaxRows / gh;  // queries per item
  const int64_t tiles = (a.Tq + qt - 1) / qt;
  const bool avx2 = use_avx2_kernels();
  parallel_items(a.B * a.KVH * hchunks * tiles, [&](int64_t i) {
    thread_local Scratch sc;
    const int64_t tile = i % tiles, hc = (i / tiles) % hchunks, kvh = (i / (tiles * hchunks)) % a.KVH;
    const int64_t b = i / (tiles * hchunks * a.KVH);
    const int64_t t0 = tile * qt, nt = std::min(qt, a.Tq - t0), h0 = hc * gh, ng = std::min(gh, g - h0);
    run_item(Item{a, b, kvh, g, h0, ng, t0, nt, nt * ng}, avx2, sc);
  });
}

void rope_kv(const RopeArgs& a) {
  const int64_t half = a.hd / 2, ld = a.KVH * a.hd;
  const size_t esz = static_cast<size_t>(dtype_size(a.kvdt));
  parallel_for(a.B * a.T, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> kr(a.hd);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / a.T, t = r % a.T, pos = a.pos0 + t;
      const float* cs = a.table + pos * half * 2;
      const auto rotate = [&](const float* x, float* y) {
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1], x1 = x[i], x2 = x[i + half];
          y[i] = x1 * c - x2 * s;
          y[i + half] = x2 * c + x1 * s;
        }
      };
      float* q = a.q + r * a.ldq;
      for (int64_t h = 0; h < a.H; ++h) rotate(q + h * a.hd, q + h * a.hd);
      const int64_t slot = a.slots ? a.slots[b] : b;
      const int64_t off = slot * a.slot_stride + pos * ld;
      const float* k = a.k + r * a.ldk;
      const float* v = a.v + r * a.ldk;
      char* kc = static_cast<char*>(a.kc) + off * esz;
      char* vc = static_cast<char*>(a.vc) + off * esz;
      for (int64_t h = 0; h < a.KVH; ++h) {
        rotate(k + h * a.hd, kr.data());
        convert_host(kr.data(), DType::F32, kc + h * a.hd * esz, a.kvdt, a.hd);
        convert_host(v + h * a.hd, DType::F32, vc + h * a.hd * esz, a.kvdt, a.hd);
      }
    }
  });
}

}  // namespace mk::cpu
