// MambaOut's image kernels on the CPU. Each loop nest keeps the channel loop innermost with no
// reduction across it (weights are stored channel-last), so the compiler vectorizes it as is.
#include "cpu/vision.h"

#include <algorithm>
#include <vector>

#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {

void conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
               int64_t Ci, int64_t Co) {
  const int64_t Ho = conv_s2_out(H), Wo = conv_s2_out(W);
  // one task per output row: Wo pixels × 9 taps × Ci × Co multiply-adds
  parallel_for(B * Ho, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> acc(static_cast<size_t>(Co));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / Ho, i = r % Ho;
      for (int64_t j = 0; j < Wo; ++j) {
        float* __restrict a = acc.data();
        for (int64_t o = 0; o < Co; ++o) a[o] = bias ? bias[o] : 0.f;
        for (int64_t ky = 0; ky < 3; ++ky) {
          const int64_t yy = 2 * i - 1 + ky;
          if (yy < 0 || yy >= H) continue;
          for (int64_t kx = 0; kx < 3; ++kx) {
            const int64_t xx = 2 * j - 1 + kx;
            if (xx < 0 || xx >= W) continue;
            const float* xp = x + ((b * H + yy) * W + xx) * Ci;
            const float* wp = w + (ky * 3 + kx) * Ci * Co;
            for (int64_t c = 0; c < Ci; ++c) {
              const float xv = xp[c];
              const float* __restrict wr = wp + c * Co;
              for (int64_t o = 0; o < Co; ++o) a[o] += xv * wr[o];
            }
          }
        }
        std::copy(a, a + Co, y + (r * Wo + j) * Co);
      }
    }
  });
}

void dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
             int64_t H, int64_t W, int64_t C) {
  parallel_for(B * H, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / H, i = r % H;
      for (int64_t j = 0; j < W; ++j) {
        float* __restrict yp = y + (r * W + j) * ldy;
        for (int64_t c = 0; c < C; ++c) yp[c] = bias ? bias[c] : 0.f;
        for (int64_t ky = 0; ky < 7; ++ky) {
          const int64_t yy = i + ky - 3;
          if (yy < 0 || yy >= H) continue;
          for (int64_t kx = 0; kx < 7; ++kx) {
            const int64_t xx = j + kx - 3;
            if (xx < 0 || xx >= W) continue;
            const float* __restrict xp = x + ((b * H + yy) * W + xx) * ldx;
            const float* __restrict wp = w + (ky * 7 + kx) * C;
            for (int64_t c = 0; c < C; ++c) yp[c] += xp[c] * wp[c];
          }
        }
      }
    }
  });
}

void gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
               int64_t n) {
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* ar = a + r * lda;
      const float* br = b ? b + r * ldb : nullptr;
      float* yr = y + r * ldy;
      for (int64_t j = 0; j < n; ++j) yr[j] = gelu_f(ar[j]) * (br ? br[j] : 1.f);
    }
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
