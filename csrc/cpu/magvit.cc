// MAGVIT-v2's image kernels on the CPU (core/magvit.h). As in cpu/vision.cc, loop nests keep the
// output-channel loop innermost over channel-last weights, so the portable bodies vectorize as
// written; the dense conv and the SiLU of the group norm have AVX2/FMA forms taken after
// use_avx2_kernels() (MAMBAKIT_FORCE_SCALAR=1 turns them off). Work is split with parallel_for over
// output rows (conv, upsample, norm apply), pixel chunks (norm statistics) or query rows (attention).
#include "cpu/magvit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/avx2_exp.h"
#include "cpu/kernels.h"

namespace mk::cpu {
namespace {

#define MK_BODY __attribute__((always_inline)) inline

// ---- conv2d -------------------------------------------------------------------------------------

// The taps of output pixel (b, i, j) that fall inside the image (padding taps are skipped).
struct Taps {
  const float* xs[kConvMaxKernel * kConvMaxKernel];
  const float* ws[kConvMaxKernel * kConvMaxKernel];
  int n = 0;
};
MK_BODY void taps_of(const Conv2dArgs& p, int64_t b, int64_t i, int64_t j, Taps& t) {
  t.n = 0;
  for (int64_t ky = 0; ky < p.KH; ++ky) {
    const int64_t yy = i * p.stride - p.pad_top + ky;
    if (yy < 0 || yy >= p.H) continue;
    for (int64_t kx = 0; kx < p.KW; ++kx) {
      const int64_t xx = j * p.stride - p.pad_left + kx;
      if (xx < 0 || xx >= p.W) continue;
      t.xs[t.n] = p.x + ((b * p.H + yy) * p.W + xx) * p.Ci;
      t.ws[t.n++] = p.w + (ky * p.KW + kx) * p.Ci * p.Co;
    }
  }
}

MK_BODY void conv_rows(const Conv2dArgs& p, float* __restrict a, int64_t r0, int64_t r1) {
  Taps tp;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / p.Ho, i = r % p.Ho;
    for (int64_t j = 0; j < p.Wo; ++j) {
      const int64_t off = (r * p.Wo + j) * p.Co;
      for (int64_t o = 0; o < p.Co; ++o) a[o] = p.bias ? p.bias[o] : 0.f;
      taps_of(p, b, i, j, tp);
      for (int t = 0; t < tp.n; ++t)
        for (int64_t c = 0; c < p.Ci; ++c) {
          const float xv = tp.xs[t][c];
          const float* __restrict wr = tp.ws[t] + c * p.Co;
          for (int64_t o = 0; o < p.Co; ++o) a[o] += xv * wr[o];
        }
      if (p.residual)
        for (int64_t o = 0; o < p.Co; ++o) a[o] += p.residual[off + o];
      std::copy(a, a + p.Co, p.y + off);
    }
  }
}
void conv_rows_base(const Conv2dArgs& p, float* a, int64_t r0, int64_t r1) { conv_rows(p, a, r0, r1); }

// AVX2: NV·8 output channels of one pixel in registers across all taps and input channels.
template <int NV>
MK_AVX2_INLINE void conv_block_avx2(const Conv2dArgs& p, const Taps& tp, int64_t o0, int64_t off) {
  __m256 acc[NV];
  for (int k = 0; k < NV; ++k) acc[k] = p.bias ? _mm256_loadu_ps(p.bias + o0 + 8 * k) : _mm256_setzero_ps();
  for (int t = 0; t < tp.n; ++t) {
    const float* xs = tp.xs[t];
    const float* wt = tp.ws[t] + o0;
    for (int64_t c = 0; c < p.Ci; ++c) {
      const __m256 xv = _mm256_set1_ps(xs[c]);
      const float* wr = wt + c * p.Co;
      for (int k = 0; k < NV; ++k) acc[k] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wr + 8 * k), acc[k]);
    }
  }
  if (p.residual)
    for (int k = 0; k < NV; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(p.residual + off + o0 + 8 * k));
  for (int k = 0; k < NV; ++k) _mm256_storeu_ps(p.y + off + o0 + 8 * k, acc[k]);
}

// Two output pixels whose taps use the same weights (interior pixels of a row): 2 × NV·8
// accumulators share each weight load (NV = 4: 8 accumulators, 4 weight and 2 broadcast registers).
template <int NV>
MK_AVX2_INLINE void conv_pair_avx2(const Conv2dArgs& p, const Taps& ta, const Taps& tb, int64_t o0, int64_t offa,
                                   int64_t offb) {
  __m256 acc[2][NV];
  for (int k = 0; k < NV; ++k) acc[0][k] = acc[1][k] = p.bias ? _mm256_loadu_ps(p.bias + o0 + 8 * k) : _mm256_setzero_ps();
  for (int t = 0; t < ta.n; ++t) {
    const float *xa = ta.xs[t], *xb = tb.xs[t];
    const float* wt = ta.ws[t] + o0;
    for (int64_t c = 0; c < p.Ci; ++c) {
      const __m256 va = _mm256_set1_ps(xa[c]), vb = _mm256_set1_ps(xb[c]);
      const float* wr = wt + c * p.Co;
      for (int k = 0; k < NV; ++k) {
        const __m256 wv = _mm256_loadu_ps(wr + 8 * k);
        acc[0][k] = _mm256_fmadd_ps(va, wv, acc[0][k]);
        acc[1][k] = _mm256_fmadd_ps(vb, wv, acc[1][k]);
      }
    }
  }
  const int64_t offs[2] = {offa, offb};
  for (int q = 0; q < 2; ++q) {
    if (p.residual)
      for (int k = 0; k < NV; ++k) acc[q][k] = _mm256_add_ps(acc[q][k], _mm256_loadu_ps(p.residual + offs[q] + o0 + 8 * k));
    for (int k = 0; k < NV; ++k) _mm256_storeu_ps(p.y + offs[q] + o0 + 8 * k, acc[q][k]);
  }
}

MK_AVX2 void conv_pixel_avx2(const Conv2dArgs& p, const Taps& tp, int64_t off, int64_t vec) {
  int64_t o0 = 0;
  for (; o0 + 32 <= vec; o0 += 32) conv_block_avx2<4>(p, tp, o0, off);
  switch ((vec - o0) / 8) {
    case 3: conv_block_avx2<3>(p, tp, o0, off); break;
    case 2: conv_block_avx2<2>(p, tp, o0, off); break;
    case 1: conv_block_avx2<1>(p, tp, o0, off); break;
  }
}

MK_BODY void conv_tail(const Conv2dArgs& p, const Taps& tp, int64_t off, int64_t vec) {  // the last Co % 8 channels
  for (int64_t o = vec; o < p.Co; ++o) {
    float s = p.bias ? p.bias[o] : 0.f;
    for (int t = 0; t < tp.n; ++t)
      for (int64_t c = 0; c < p.Ci; ++c) s += tp.xs[t][c] * tp.ws[t][c * p.Co + o];
    if (p.residual) s += p.residual[off + o];
    p.y[off + o] = s;
  }
}

bool same_weights(const Taps& a, const Taps& b) {
  if (a.n != b.n) return false;
  for (int t = 0; t < a.n; ++t)
    if (a.ws[t] != b.ws[t]) return false;
  return true;
}

MK_AVX2 void conv_rows_avx2(const Conv2dArgs& p, float* /*unused*/, int64_t r0, int64_t r1) {
  const int64_t vec = p.Co / 8 * 8;
  Taps ta, tb;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / p.Ho, i = r % p.Ho;
    for (int64_t j = 0; j < p.Wo;) {
      const int64_t off = (r * p.Wo + j) * p.Co;
      taps_of(p, b, i, j, ta);
      if (j + 1 < p.Wo) {
        taps_of(p, b, i, j + 1, tb);
        if (same_weights(ta, tb)) {
          int64_t o0 = 0;
          for (; o0 + 32 <= vec; o0 += 32) conv_pair_avx2<4>(p, ta, tb, o0, off, off + p.Co);
          switch ((vec - o0) / 8) {
            case 3: conv_pair_avx2<3>(p, ta, tb, o0, off, off + p.Co); break;
            case 2: conv_pair_avx2<2>(p, ta, tb, o0, off, off + p.Co); break;
            case 1: conv_pair_avx2<1>(p, ta, tb, o0, off, off + p.Co); break;
          }
          conv_tail(p, ta, off, vec);
          conv_tail(p, tb, off + p.Co, vec);
          j += 2;
          continue;
        }
      }
      conv_pixel_avx2(p, ta, off, vec);
      conv_tail(p, ta, off, vec);
      ++j;
    }
  }
}

// ---- group norm ---------------------------------------------------------------------------------

// y = x·a + b per channel, then SiLU.
MK_BODY void affine_row_base(const float* x, const float* a, const float* b, float* y, int64_t C, bool silu) {
  for (int64_t c = 0; c < C; ++c) y[c] = x[c] * a[c] + b[c];
  if (silu)
    for (int64_t c = 0; c < C; ++c) y[c] = silu_f(y[c]);
}
MK_AVX2 void affine_row_avx2(const float* x, const float* a, const float* b, float* y, int64_t C, bool silu) {
  int64_t c = 0;
  const __m256 one = _mm256_set1_ps(1.f);
  for (; c + 8 <= C; c += 8) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c));
    // x / (1 + e^-x): exp_acc clamps its argument, so large |x| give x or -0
    if (silu) v = _mm256_div_ps(v, _mm256_add_ps(one, detail::exp_acc(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    _mm256_storeu_ps(y + c, v);
  }
  for (; c < C; ++c) {
    const float v = x[c] * a[c] + b[c];
    y[c] = silu ? silu_f(v) : v;
  }
}

// ---- spatial attention --------------------------------------------------------------------------

MK_BODY void attn_rows(const float* q, const float* kt, const float* v, int64_t ld, float* o, int64_t ldo, int64_t P,
                       int64_t C, float scale, float* __restrict s, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    const float* qi = q + i * ld;
    std::fill(s, s + P, 0.f);
    for (int64_t c = 0; c < C; ++c) {
      const float qc = qi[c] * scale;
      const float* __restrict kr = kt + c * P;
      for (int64_t j = 0; j < P; ++j) s[j] += qc * kr[j];
    }
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < P; ++j) m = std::max(m, s[j]);
    double sum = 0;
    for (int64_t j = 0; j < P; ++j) {
      s[j] = std::exp(s[j] - m);
      sum += s[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* __restrict oi = o + i * ldo;
    std::fill(oi, oi + C, 0.f);
    for (int64_t j = 0; j < P; ++j) {
      const float pj = s[j] * inv;
      const float* __restrict vj = v + j * ld;
      for (int64_t c = 0; c < C; ++c) oi[c] += pj * vj[c];
    }
  }
}

}  // namespace

void conv2d(const Conv2dArgs& a) {
  const bool avx2 = use_avx2_kernels();
  parallel_for(a.B * a.Ho, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> acc(static_cast<size_t>(a.Co));
    (avx2 ? conv_rows_avx2 : conv_rows_base)(a, acc.data(), r0, r1);
  });
}

void group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                int64_t G, float eps, bool silu) {
  const int64_t cg = C / G;
  // Per image: per-channel sums over pixel chunks (in double), reduced to the group mean, then the
  // same for the squared deviations from it (two passes: no cancellation), then y = x·a + b.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(P, 1 + 65536 / C));
  const int64_t nchunks = (P + chunk - 1) / chunk;
  std::vector<double> part(static_cast<size_t>(B * nchunks * C));
  std::vector<double> mean(static_cast<size_t>(B * G)), rstd(static_cast<size_t>(B * G));
  auto reduce = [&](bool centered) {
    parallel_for(B * nchunks, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t b = k / nchunks, p0 = (k % nchunks) * chunk, p1 = std::min(P, p0 + chunk);
        double* acc = part.data() + k * C;
        std::fill(acc, acc + C, 0.0);
        for (int64_t p = p0; p < p1; ++p) {
          const float* xp = x + (b * P + p) * C;
          if (!centered) {
            for (int64_t c = 0; c < C; ++c) acc[c] += xp[c];
          } else {
            const double* mb = mean.data() + b * G;
            for (int64_t c = 0; c < C; ++c) {
              const double d = xp[c] - mb[c / cg];
              acc[c] += d * d;
            }
          }
        }
      }
    });
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < G; ++g) {
        double s = 0;
        for (int64_t k = 0; k < nchunks; ++k)
          for (int64_t c = g * cg; c < (g + 1) * cg; ++c) s += part[(b * nchunks + k) * C + c];
        const double v = s / static_cast<double>(P * cg);
        if (!centered) mean[b * G + g] = v;
        else rstd[b * G + g] = 1.0 / std::sqrt(v + static_cast<double>(eps));
      }
  };
  reduce(false);
  reduce(true);
  std::vector<float> ab(static_cast<size_t>(2 * B * C));  // per image: a [C], b [C]
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const double r = rstd[b * G + c / cg], m = mean[b * G + c / cg];
      const double g = gamma ? gamma[c] : 1.0, be = beta ? beta[c] : 0.0;
      ab[b * 2 * C + c] = static_cast<float>(r * g);
      ab[b * 2 * C + C + c] = static_cast<float>(be - m * r * g);
    }
  const auto row = use_avx2_kernels() ? affine_row_avx2 : affine_row_base;
  parallel_for(B * P, std::max<int64_t>(1, 4096 / C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* a = ab.data() + (r / P) * 2 * C;
      row(x + r * C, a, a + C, y + r * C, C, silu);
    }
  });
}

void upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C) {
  parallel_for(B * 2 * H, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {  // output row r = b·2H + i
      const int64_t b = r / (2 * H), i = r % (2 * H);
      const float* src = x + (b * H + i / 2) * W * C;
      float* dst = y + r * 2 * W * C;
      for (int64_t j = 0; j < 2 * W; ++j) std::copy(src + (j / 2) * C, src + (j / 2 + 1) * C, dst + j * C);
    }
  });
}

void spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                  int64_t B, int64_t P, int64_t C, float scale) {
  // K transposed per image ([C, P]), so the scores of a query run along the keys (vectorized).
  parallel_for(B * P, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / P, j = r % P;
      float* kt = scratch + b * C * P;
      for (int64_t c = 0; c < C; ++c) kt[c * P + j] = k[r * ld + c];
    }
  });
  parallel_for(B * P, 4, [&](int64_t r0, int64_t r1) {
    std::vector<float> s(static_cast<size_t>(P));
    for (int64_t r = r0; r < r1;) {
      const int64_t b = r / P, end = std::min(r1, (b + 1) * P);
      attn_rows(q + b * P * ld, scratch + b * C * P, v + b * P * ld, ld, o + b * P * ldo, ldo, P, C, scale, s.data(),
                r - b * P, end - b * P);
      r = end;
    }
  });
}

void lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f) {
  parallel_for(rows, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int32_t code = 0;
      for (int64_t d = 0; d < D; ++d) code = (code << 1) | (z[r * ldz + d] > 0.f ? 1 : 0);
      if (codes) codes[r] = code;
      if (codes_f) codes_f[r] = static_cast<float>(code);
    }
  });
}

int64_t lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z) {
  int64_t bad = -1;
  const int64_t n = int64_t{1} << D;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t code = codes[r];
    if (code < 0 || code >= n) {
      if (bad < 0) bad = r;
      std::fill(z + r * D, z + (r + 1) * D, 0.f);
      continue;
    }
    for (int64_t d = 0; d < D; ++d) z[r * D + d] = ((code >> (D - 1 - d)) & 1) ? 1.f : -1.f;
  }
  return bad;
}

}  // namespace mk::cpu
