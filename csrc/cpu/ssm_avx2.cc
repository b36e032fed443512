// AVX2/FMA paths of the selective scan and the causal conv1d. Compiled for the x86-64 baseline;
// every function that uses these instructions carries MK_AVX2 and is only reached after the
// run-time check in detail::ssm_use_avx2().
//
// Both work on one (batch row, 16-channel block) item: two 8-lane vectors side by side, so each
// token touches whole 64-byte lines of the activation rows. A partial last block (E % 16 != 0)
// uses masked loads/stores; masked lanes compute on zeros (A = 0, u = 0), which stays finite.
#include <immintrin.h>

#include "cpu/avx2_exp.h"
#include "cpu/ssm.h"

namespace mk::cpu::detail {
namespace {

constexpr int BW = static_cast<int>(kSsmBlock);

MK_AVX2_INLINE __m256i lane_mask(int64_t cnt) {
  const int c = cnt < 0 ? 0 : (cnt > 8 ? 8 : static_cast<int>(cnt));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
template <bool kFull>
MK_AVX2_INLINE __m256 ld(const float* p, __m256i m) {
  return kFull ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}
template <bool kFull>
MK_AVX2_INLINE void st(float* p, __m256i m, __m256 v) {
  if (kFull)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, m, v);
}

// 2^t for t <= 127 (the scan's exponent, already in log2 units: dt' * A * log2(e) <= 0).
// Below -124 the result is clamped to ~2^-124 instead of flushing to 0: invisible next to any
// state value. The only rounding beyond the polynomial is the caller's product dt' * A2, whose
// relative error |t| 2^-24 shows up as an absolute error <= 0.37 * 2^-24 * ln2 in exp(x).
MK_AVX2_INLINE __m256 exp2_fast(__m256 t) {
  t = _mm256_max_ps(t, _mm256_set1_ps(-124.f));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return scale_pow2(exp2_poly(_mm256_sub_ps(t, n)), n);
}

// softplus(v) = v > 20 ? v : max(v, 0) + log1p(exp(-|v|)). log1p(w), w in (0, 1], is
// 2 atanh(s) with s = w / (2 + w) <= 1/3: an odd series truncated after s^15 (rel. error < 2e-9),
// accurate for tiny w where log(1 + w) would cancel.
MK_AVX2_INLINE __m256 softplus8(__m256 v) {
  const __m256 absv = _mm256_andnot_ps(_mm256_set1_ps(-0.f), v);
  const __m256 w = exp_acc(_mm256_sub_ps(_mm256_setzero_ps(), absv));
  const __m256 s = _mm256_div_ps(w, _mm256_add_ps(_mm256_set1_ps(2.f), w));
  const __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = _mm256_set1_ps(1.f / 15);
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 13));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 11));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 9));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 7));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 5));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f / 3));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.f));
  const __m256 l1p = _mm256_mul_ps(_mm256_add_ps(s, s), p);
  const __m256 r = _mm256_add_ps(_mm256_max_ps(v, _mm256_setzero_ps()), l1p);
  return _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, _mm256_set1_ps(20.f), _CMP_GT_OQ));
}

MK_AVX2_INLINE __m256 silu8(__m256 x) {
  const __m256 e = exp_acc(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// ---- selective scan ----------------------------------------------------------------------------

template <bool kFull, bool kLocal>
MK_AVX2_INLINE __m256 ld_state(const float* p, __m256i m) {
  return kLocal ? _mm256_load_ps(p) : ld<kFull>(p, m);
}

// One token r of a 16-channel block: s_n = exp2(d A2_n) s_n + d u B_n, y = (sum_n C_n s_n + D u) silu(z).
// kLocal: S and A2 are the block's aligned L1 copies [N][16] (the time loop). Otherwise S is the
// state where it lives (row stride E) and A2 is formed from A on the fly, rounded the same way:
// for one token (decode), staging both in L1 would cost more memory traffic than the step itself.
// Two y accumulators per vector (even/odd n) halve the serial FMA chain.
template <bool kFull, bool kLocal>
MK_AVX2_INLINE void scan_token(const ScanArgs& a, int64_t r, int64_t e0, __m256i m0, __m256i m1,
                               float* S, int64_t ldS, const float* A2, __m256 dtb0, __m256 dtb1,
                               __m256 D0, __m256 D1) {
  const int64_t ldA = kLocal ? BW : a.E;
  const __m256 zero = _mm256_setzero_ps(), l2e = _mm256_set1_ps(kLog2e);
  const float* ur = a.u + r * a.ldu + e0;
  const float* dr = a.dt + r * a.lddt + e0;
  const float* Br = a.Bm + r * a.ldbc;
  const float* Cr = a.Cm + r * a.ldbc;
  const __m256 u0 = ld<kFull>(ur, m0), u1 = ld<kFull>(ur + 8, m1);
  const __m256 d0 = softplus8(_mm256_add_ps(ld<kFull>(dr, m0), dtb0));
  const __m256 d1 = softplus8(_mm256_add_ps(ld<kFull>(dr + 8, m1), dtb1));
  const __m256 du0 = _mm256_mul_ps(d0, u0), du1 = _mm256_mul_ps(d1, u1);
  __m256 y0 = _mm256_mul_ps(D0, u0), y1 = _mm256_mul_ps(D1, u1);
  __m256 y0b = zero, y1b = zero;
  for (int64_t n = 0; n < a.N; ++n) {
    float* sn = S + n * ldS;
    const float* An = A2 + n * ldA;
    __m256 a0 = ld_state<kFull, kLocal>(An, m0), a1 = ld_state<kFull, kLocal>(An + 8, m1);
    if (!kLocal) a0 = _mm256_mul_ps(a0, l2e), a1 = _mm256_mul_ps(a1, l2e);
    const __m256 bA = _mm256_broadcast_ss(Br + n), cA = _mm256_broadcast_ss(Cr + n);
    const __m256 e00 = exp2_fast(_mm256_mul_ps(d0, a0));
    const __m256 e01 = exp2_fast(_mm256_mul_ps(d1, a1));
    const __m256 s00 = _mm256_fmadd_ps(e00, ld_state<kFull, kLocal>(sn, m0), _mm256_mul_ps(du0, bA));
    const __m256 s01 = _mm256_fmadd_ps(e01, ld_state<kFull, kLocal>(sn + 8, m1), _mm256_mul_ps(du1, bA));
    if (kLocal) {
      _mm256_store_ps(sn, s00);
      _mm256_store_ps(sn + 8, s01);
    } else {
      st<kFull>(sn, m0, s00);
      st<kFull>(sn + 8, m1, s01);
    }
    if (n & 1) {
      y0b = _mm256_fmadd_ps(cA, s00, y0b);
      y1b = _mm256_fmadd_ps(cA, s01, y1b);
    } else {
      y0 = _mm256_fmadd_ps(cA, s00, y0);
      y1 = _mm256_fmadd_ps(cA, s01, y1);
    }
  }
  y0 = _mm256_add_ps(y0, y0b);
  y1 = _mm256_add_ps(y1, y1b);
  if (a.z) {
    const float* zr = a.z + r * a.ldz + e0;
    y0 = _mm256_mul_ps(y0, silu8(ld<kFull>(zr, m0)));
    y1 = _mm256_mul_ps(y1, silu8(ld<kFull>(zr + 8, m1)));
  }
  float* yr = a.y + r * a.ldy + e0;
  st<kFull>(yr, m0, y0);
  st<kFull>(yr + 8, m1, y1);
}

// Per token and state n, for each 8-lane vector: one exp2_fast (~13 ops) and 3 FMAs; the [N, 16]
// state and A*log2(e) blocks live in 32-byte-aligned local arrays (L1) for the whole time loop.
// One token with a state (decode) works on the state in place instead (measured, 130m bf16
// batch-32 decode: the scan's share of the run 20% -> 17%).
template <bool kFull>
MK_AVX2 void scan_block(const ScanArgs& a, int64_t b, int64_t e0, int64_t ne) {
  const int64_t N = a.N, E = a.E;
  const __m256i m0 = lane_mask(ne), m1 = lane_mask(ne - 8);
  const int64_t slot = a.slots ? a.slots[b] : b;
  float* stp = a.state ? a.state + slot * N * E + e0 : nullptr;
  const __m256 zero = _mm256_setzero_ps();
  const __m256 dtb0 = a.dt_bias ? ld<kFull>(a.dt_bias + e0, m0) : zero;
  const __m256 dtb1 = a.dt_bias ? ld<kFull>(a.dt_bias + e0 + 8, m1) : zero;
  const __m256 D0 = a.D ? ld<kFull>(a.D + e0, m0) : zero;
  const __m256 D1 = a.D ? ld<kFull>(a.D + e0 + 8, m1) : zero;
  if (a.T == 1 && stp)
    return scan_token<kFull, false>(a, b, e0, m0, m1, stp, E, a.A + e0, dtb0, dtb1, D0, D1);

  alignas(32) float S[kSsmMaxN * BW];
  alignas(32) float A2[kSsmMaxN * BW];
  const __m256 l2e = _mm256_set1_ps(kLog2e);
  for (int64_t n = 0; n < N; ++n) {
    const float* An = a.A + n * E + e0;
    _mm256_store_ps(A2 + n * BW, _mm256_mul_ps(ld<kFull>(An, m0), l2e));
    _mm256_store_ps(A2 + n * BW + 8, _mm256_mul_ps(ld<kFull>(An + 8, m1), l2e));
    _mm256_store_ps(S + n * BW, stp ? ld<kFull>(stp + n * E, m0) : zero);
    _mm256_store_ps(S + n * BW + 8, stp ? ld<kFull>(stp + n * E + 8, m1) : zero);
  }
  for (int64_t t = 0; t < a.T; ++t)
    scan_token<kFull, true>(a, b * a.T + t, e0, m0, m1, S, BW, A2, dtb0, dtb1, D0, D1);
  if (stp)
    for (int64_t n = 0; n < N; ++n) {
      st<kFull>(stp + n * E, m0, _mm256_load_ps(S + n * BW));
      st<kFull>(stp + n * E + 8, m1, _mm256_load_ps(S + n * BW + 8));
    }
}

// ---- causal conv1d -----------------------------------------------------------------------------

// The window (K-1 previous inputs) and the K weight vectors are register arrays (K is a template
// parameter, so every index is a constant after unrolling). Batch rows [rb0, rb1) share the
// weights, which are transposed once (this matters for decode, where T = 1).
template <int K, bool kFull>
MK_AVX2 void conv_block(const ConvArgs& a, int64_t rb0, int64_t rb1, int64_t e0, int64_t ne) {
  constexpr int W = K - 1;
  const int64_t E = a.E;
  const __m256i m0 = lane_mask(ne), m1 = lane_mask(ne - 8);
  alignas(32) float wt[K][BW] = {};
  for (int64_t c = 0; c < ne; ++c)
    for (int j = 0; j < K; ++j) wt[j][c] = a.w[(e0 + c) * K + j];
  __m256 wv[K][2];
  for (int j = 0; j < K; ++j) {
    wv[j][0] = _mm256_load_ps(wt[j]);
    wv[j][1] = _mm256_load_ps(wt[j] + 8);
  }
  const __m256 zero = _mm256_setzero_ps();
  const __m256 bias0 = a.bias ? ld<kFull>(a.bias + e0, m0) : zero;
  const __m256 bias1 = a.bias ? ld<kFull>(a.bias + e0 + 8, m1) : zero;
  for (int64_t b = rb0; b < rb1; ++b) {
    const int64_t slot = a.slots ? a.slots[b] : b;
    float* stp = a.state ? a.state + slot * W * E + e0 : nullptr;
    __m256 win[W > 0 ? W : 1][2];
    for (int j = 0; j < W; ++j) {
      win[j][0] = stp ? ld<kFull>(stp + j * E, m0) : zero;
      win[j][1] = stp ? ld<kFull>(stp + j * E + 8, m1) : zero;
    }
    for (int64_t t = 0; t < a.T; ++t) {
      const int64_t r = b * a.T + t;
      const float* xr = a.x + r * a.ldx + e0;
      const __m256 x0 = ld<kFull>(xr, m0), x1 = ld<kFull>(xr + 8, m1);
      __m256 acc0 = _mm256_fmadd_ps(wv[W][0], x0, bias0);
      __m256 acc1 = _mm256_fmadd_ps(wv[W][1], x1, bias1);
      for (int j = 0; j < W; ++j) {
        acc0 = _mm256_fmadd_ps(wv[j][0], win[j][0], acc0);
        acc1 = _mm256_fmadd_ps(wv[j][1], win[j][1], acc1);
      }
      for (int j = 0; j + 1 < W; ++j) {
        win[j][0] = win[j + 1][0];
        win[j][1] = win[j + 1][1];
      }
      if (W > 0) {
        win[W > 0 ? W - 1 : 0][0] = x0;
        win[W > 0 ? W - 1 : 0][1] = x1;
      }
      if (a.silu) {
        acc0 = silu8(acc0);
        acc1 = silu8(acc1);
      }
      float* orow = a.out + r * a.ldo + e0;
      st<kFull>(orow, m0, acc0);
      st<kFull>(orow + 8, m1, acc1);
    }
    if (stp)
      for (int j = 0; j < W; ++j) {
        st<kFull>(stp + j * E, m0, win[j][0]);
        st<kFull>(stp + j * E + 8, m1, win[j][1]);
      }
  }
}

template <int K>
MK_AVX2 void conv_block_k(const ConvArgs& a, int64_t b0, int64_t b1, int64_t e0, int64_t ne) {
  if (ne == BW)
    conv_block<K, true>(a, b0, b1, e0, ne);
  else
    conv_block<K, false>(a, b0, b1, e0, ne);
}

}  // namespace

void scan_block_avx2(const ScanArgs& a, int64_t b, int64_t e0, int64_t ne) {
  if (ne == BW)
    scan_block<true>(a, b, e0, ne);
  else
    scan_block<false>(a, b, e0, ne);
}

void conv_block_avx2(const ConvArgs& a, int64_t b0, int64_t b1, int64_t e0, int64_t ne) {
  switch (a.K) {
    case 1: conv_block_k<1>(a, b0, b1, e0, ne); break;
    case 2: conv_block_k<2>(a, b0, b1, e0, ne); break;
    case 3: conv_block_k<3>(a, b0, b1, e0, ne); break;
    case 4: conv_block_k<4>(a, b0, b1, e0, ne); break;
    case 5: conv_block_k<5>(a, b0, b1, e0, ne); break;
    case 6: conv_block_k<6>(a, b0, b1, e0, ne); break;
    case 7: conv_block_k<7>(a, b0, b1, e0, ne); break;
    case 8: conv_block_k<8>(a, b0, b1, e0, ne); break;
    default: break;  // validated by the op layer
  }
}

}  // namespace mk::cpu::detail
