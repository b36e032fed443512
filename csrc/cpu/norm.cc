#include <cmath>

#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {

void rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
             int64_t rows, int64_t D, float eps) {
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      // With a residual, the sum is written first (to sum_out) and normalized from there.
      const float* s = xr;
      if (residual) {
        float* so = sum_out + r * D;
        const float* rr = residual + r * D;
        for (int64_t i = 0; i < D; ++i) so[i] = xr[i] + rr[i];
        s = so;
      }
      double ss = 0;  // f64 sum of squares: D can be large and the cost is negligible
      for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(s[i]) * s[i];
      const float inv = static_cast<float>(1.0 / std::sqrt(ss / D + eps));
      for (int64_t i = 0; i < D; ++i) yr[i] = s[i] * inv * w[i];
    }
  });
}

void layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
               float eps) {
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      double sum = 0;
      for (int64_t i = 0; i < D; ++i) sum += xr[i];
      const double mean = sum / D;
      double var = 0;  // two-pass: no cancellation when |mean| >> std
      for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const float inv = static_cast<float>(1.0 / std::sqrt(var / D + eps));
      const float m = static_cast<float>(mean);
      for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * inv * w[i] + (b ? b[i] : 0.f);
    }
  });
}

}  // namespace mk::cpu
