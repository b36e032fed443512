// MambaOut's image kernels on the CPU. Each loop nest keeps the channel loop innermost with no
// reduction across it (weights are stored channel-last), so the compiler vectorizes it as is. Every
// kernel body is compiled twice: for the x86-64 baseline, and with AVX2/FMA (MK_AVX2, taken after
// the run-time check use_avx2_kernels(), which MAMBAKIT_FORCE_SCALAR=1 turns off). GELU has an
// explicit AVX2 form: the libm erfc it replaces was half of a femto forward.
#include "cpu/vision.h"

#include <algorithm>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/avx2_exp.h"
#include "cpu/kernels.h"

namespace mk::cpu {
namespace {

#define MK_BODY __attribute__((always_inline)) inline

struct ConvArgs {
  const float *x, *w, *bias;
  float* y;
  int64_t B, H, W, Ci, Co, Ho, Wo;
};

// The taps of output pixel (b, i, j) that fall inside the image (zero padding = skipped taps):
// xs[t] = the input pixel's Ci values, ws[t] = the tap's [Ci, Co] weights. Returns their count (≤ 9).
struct Taps {
  const float* xs[9];
  const float* ws[9];
  int n = 0;
};
MK_BODY Taps taps_of(const ConvArgs& p, int64_t b, int64_t i, int64_t j) {
  Taps t;
  for (int64_t ky = 0; ky < 3; ++ky) {
    const int64_t yy = 2 * i - 1 + ky;
    if (yy < 0 || yy >= p.H) continue;
    for (int64_t kx = 0; kx < 3; ++kx) {
      const int64_t xx = 2 * j - 1 + kx;
      if (xx < 0 || xx >= p.W) continue;
      t.xs[t.n] = p.x + ((b * p.H + yy) * p.W + xx) * p.Ci;
      t.ws[t.n++] = p.w + (ky * 3 + kx) * p.Ci * p.Co;
    }
  }
  return t;
}

// Output rows [r0, r1) of B·Ho: Wo pixels × 9 taps × Ci × Co multiply-adds each.
MK_BODY void conv_rows(const ConvArgs& p, float* __restrict a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / p.Ho, i = r % p.Ho;
    for (int64_t j = 0; j < p.Wo; ++j) {
      for (int64_t o = 0; o < p.Co; ++o) a[o] = p.bias ? p.bias[o] : 0.f;
      const Taps tp = taps_of(p, b, i, j);
      for (int t = 0; t < tp.n; ++t)
        for (int64_t c = 0; c < p.Ci; ++c) {
          const float xv = tp.xs[t][c];
          const float* __restrict wr = tp.ws[t] + c * p.Co;
          for (int64_t o = 0; o < p.Co; ++o) a[o] += xv * wr[o];
        }
      std::copy(a, a + p.Co, p.y + (r * p.Wo + j) * p.Co);
    }
  }
}
void conv_rows_base(const ConvArgs& p, float* a, int64_t r0, int64_t r1) { conv_rows(p, a, r0, r1); }

// AVX2: NV·8 output channels of one pixel held in registers across all taps and input channels
// (one broadcast of x and NV weight loads per NV FMAs; the portable loop also loads and stores its
// accumulators every step).
template <int NV>
MK_AVX2_INLINE void conv_block_avx2(const ConvArgs& p, const Taps& tp, int64_t o0, float* out) {
  __m256 acc[NV];
  for (int k = 0; k < NV; ++k) acc[k] = p.bias ? _mm256_loadu_ps(p.bias + o0 + 8 * k) : _mm256_setzero_ps();
  for (int t = 0; t < tp.n; ++t)
    for (int64_t c = 0; c < p.Ci; ++c) {
      const __m256 xv = _mm256_set1_ps(tp.xs[t][c]);
      const float* wr = tp.ws[t] + c * p.Co + o0;
      for (int k = 0; k < NV; ++k) acc[k] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wr + 8 * k), acc[k]);
    }
  for (int k = 0; k < NV; ++k) _mm256_storeu_ps(out + o0 + 8 * k, acc[k]);
}

MK_AVX2 void conv_rows_avx2(const ConvArgs& p, float* /*scratch: unused*/, int64_t r0, int64_t r1) {
  const int64_t vec = p.Co / 8 * 8;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / p.Ho, i = r % p.Ho;
    for (int64_t j = 0; j < p.Wo; ++j) {
      float* out = p.y + (r * p.Wo + j) * p.Co;
      const Taps tp = taps_of(p, b, i, j);
      int64_t o0 = 0;
      for (; o0 + 32 <= vec; o0 += 32) conv_block_avx2<4>(p, tp, o0, out);
      switch ((vec - o0) / 8) {
        case 3: conv_block_avx2<3>(p, tp, o0, out); break;
        case 2: conv_block_avx2<2>(p, tp, o0, out); break;
        case 1: conv_block_avx2<1>(p, tp, o0, out); break;
      }
      if (vec == p.Co) continue;
      // the last Co % 8 channels, one at a time
      for (int64_t o = vec; o < p.Co; ++o) {
        float s = p.bias ? p.bias[o] : 0.f;
        for (int t = 0; t < tp.n; ++t)
          for (int64_t c = 0; c < p.Ci; ++c) s += tp.xs[t][c] * tp.ws[t][c * p.Co + o];
        out[o] = s;
      }
    }
  }
}

struct DwArgs {
  const float* x;
  int64_t ldx;
  const float *w, *bias;
  float* y;
  int64_t ldy, B, H, W, C;
};

// The ≤ 49 taps of output pixel (b, i, j) inside the image: input pixel pointers and tap indices.
struct DwTaps {
  const float* xs[49];
  int64_t ks[49];
  int n = 0;
};
MK_BODY DwTaps dw_taps(const DwArgs& p, int64_t b, int64_t i, int64_t j) {
  DwTaps t;
  for (int64_t ky = 0; ky < 7; ++ky) {
    const int64_t yy = i + ky - 3;
    if (yy < 0 || yy >= p.H) continue;
    for (int64_t kx = 0; kx < 7; ++kx) {
      const int64_t xx = j + kx - 3;
      if (xx < 0 || xx >= p.W) continue;
      t.xs[t.n] = p.x + ((b * p.H + yy) * p.W + xx) * p.ldx;
      t.ks[t.n++] = ky * 7 + kx;
    }
  }
  return t;
}

// Rows [r0, r1) of B·H: each output pixel accumulates its taps over the C channels.
MK_BODY void dw_rows(const DwArgs& p, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < p.W; ++j) {
      const DwTaps tp = dw_taps(p, r / p.H, r % p.H, j);
      float* __restrict yp = p.y + (r * p.W + j) * p.ldy;
      for (int64_t c = 0; c < p.C; ++c) yp[c] = p.bias ? p.bias[c] : 0.f;
      for (int t = 0; t < tp.n; ++t) {
        const float* __restrict xp = tp.xs[t];
        const float* __restrict wp = p.w + tp.ks[t] * p.C;
        for (int64_t c = 0; c < p.C; ++c) yp[c] += xp[c] * wp[c];
      }
    }
  }
}
void dw_rows_base(const DwArgs& p, int64_t r0, int64_t r1) { dw_rows(p, r0, r1); }

// AVX2: NV·8 channels of one pixel held in registers across its taps (two loads per FMA; the
// portable loop also loads and stores the output every tap).
template <int NV>
MK_AVX2_INLINE void dw_block_avx2(const DwArgs& p, const DwTaps& tp, int64_t c0, float* out) {
  __m256 acc[NV];
  for (int k = 0; k < NV; ++k) acc[k] = p.bias ? _mm256_loadu_ps(p.bias + c0 + 8 * k) : _mm256_setzero_ps();
  for (int t = 0; t < tp.n; ++t) {
    const float* xp = tp.xs[t] + c0;
    const float* wp = p.w + tp.ks[t] * p.C + c0;
    for (int k = 0; k < NV; ++k) acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 8 * k), _mm256_loadu_ps(wp + 8 * k), acc[k]);
  }
  for (int k = 0; k < NV; ++k) _mm256_storeu_ps(out + c0 + 8 * k, acc[k]);
}

MK_AVX2 void dw_rows_avx2(const DwArgs& p, int64_t r0, int64_t r1) {
  const int64_t vec = p.C / 8 * 8;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < p.W; ++j) {
      const DwTaps tp = dw_taps(p, r / p.H, r % p.H, j);
      float* out = p.y + (r * p.W + j) * p.ldy;
      int64_t c0 = 0;
      for (; c0 + 32 <= vec; c0 += 32) dw_block_avx2<4>(p, tp, c0, out);
      switch ((vec - c0) / 8) {
        case 3: dw_block_avx2<3>(p, tp, c0, out); break;
        case 2: dw_block_avx2<2>(p, tp, c0, out); break;
        case 1: dw_block_avx2<1>(p, tp, c0, out); break;
      }
      for (int64_t c = vec; c < p.C; ++c) {  // the last C % 8 channels
        float s = p.bias ? p.bias[c] : 0.f;
        for (int t = 0; t < tp.n; ++t) s += tp.xs[t][c] * p.w[tp.ks[t] * p.C + c];
        out[c] = s;
      }
    }
  }
}

// gelu(x) = ½x·erfc(−x/√2). erfc(z), z ≥ 0, is t·exp(−z² + P(t)) with t = 1/(1 + z/2) (the Chebyshev
// fit of Numerical Recipes' erfcc, relative error < 1.2e-7 for every z); erfc(−z) = 2 − erfc(z).
MK_AVX2_INLINE __m256 gelu8(__m256 x) {
  const __m256 u = _mm256_mul_ps(x, _mm256_set1_ps(-0.70710678118654752f));
  const __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.f), u);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.f)));
  __m256 p = _mm256_set1_ps(0.17087277f);
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                  1.00002368f, -1.26551223f})
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
  const __m256 e = _mm256_mul_ps(t, detail::exp_acc(_mm256_fnmadd_ps(z, z, p)));
  const __m256 erfc = _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.f), e), _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), erfc);
}

MK_AVX2 void gelu_row_avx2(const float* a, const float* b, float* y, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 g = gelu8(_mm256_loadu_ps(a + j));
    if (b) g = _mm256_mul_ps(g, _mm256_loadu_ps(b + j));
    _mm256_storeu_ps(y + j, g);
  }
  for (; j < n; ++j) y[j] = gelu_f(a[j]) * (b ? b[j] : 1.f);
}
void gelu_row_base(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = gelu_f(a[j]) * (b ? b[j] : 1.f);
}

}  // namespace

void conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
               int64_t Ci, int64_t Co) {
  const ConvArgs p{x, w, bias, y, B, H, W, Ci, Co, conv_s2_out(H), conv_s2_out(W)};
  const bool avx2 = use_avx2_kernels();
  parallel_for(B * p.Ho, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> acc(static_cast<size_t>(Co));
    (avx2 ? conv_rows_avx2 : conv_rows_base)(p, acc.data(), r0, r1);
  });
}

void dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
             int64_t H, int64_t W, int64_t C) {
  const DwArgs p{x, ldx, w, bias, y, ldy, B, H, W, C};
  const bool avx2 = use_avx2_kernels();
  parallel_for(B * H, 1, [&](int64_t r0, int64_t r1) { (avx2 ? dw_rows_avx2 : dw_rows_base)(p, r0, r1); });
}

void gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
               int64_t n) {
  const auto row = use_avx2_kernels() ? gelu_row_avx2 : gelu_row_base;
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(a + r * lda, b ? b + r * ldb : nullptr, y + r * ldy, n);
  });
}

void mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C) {
  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> acc(static_cast<size_t>(C));
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t p = 0; p < P; ++p) {
        const float* xp = x + (b * P + p) * C;
        for (int64_t c = 0; c < C; ++c) acc[c] += xp[c];
      }
      for (int64_t c = 0; c < C; ++c) y[b * C + c] = static_cast<float>(acc[c] / static_cast<double>(P));
    }
  });
}

}  // namespace mk::cpu
