#include <cmath>

#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {

void softmax(const float* x, float* y, int64_t rows, int64_t D) {
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      float m = -INFINITY;
      for (int64_t i = 0; i < D; ++i) m = std::fmax(m, xr[i]);
      double sum = 0;
      for (int64_t i = 0; i < D; ++i) {
        yr[i] = std::exp(xr[i] - m);
        sum += yr[i];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t i = 0; i < D; ++i) yr[i] *= inv;
    }
  });
}

// First index of the maximum; a NaN counts as larger than everything (the first NaN wins), the
// same rule as the CUDA kernel, so sampling never silently skips a broken row.
void argmax(const float* x, int32_t* y, int64_t rows, int64_t D) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      int64_t best = 0;
      for (int64_t i = 1; i < D; ++i) {
        if (std::isnan(xr[best])) break;
        if (std::isnan(xr[i]) || xr[i] > xr[best]) best = i;
      }
      y[r] = static_cast<int32_t>(best);
    }
  });
}

}  // namespace mk::cpu
