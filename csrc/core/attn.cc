#include "core/attn.h"

#include <cmath>
#include <vector>

#include "core/tensor.h"

namespace mk {

void rope_table(double theta, int64_t hd, int64_t P, float* out) {
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
    for (int64_t p = 0; p < P; ++p) {
      const double ang = static_cast<double>(p) * inv_freq;
      out[(p * half + i) * 2] = static_cast<float>(std::cos(ang));
      out[(p * half + i) * 2 + 1] = static_cast<float>(std::sin(ang));
    }
  }
}

Status make_rope_table(Device dev, double theta, int64_t hd, int64_t P, Tensor* out) {
  MK_RETURN_IF_ERROR(Tensor::create(dev, DType::F32, {P, hd / 2, 2}, out));
  if (!dev.is_cuda()) {
    rope_table(theta, hd, P, out->ptr<float>());
    return Status::Ok();
  }
  std::vector<float> host(static_cast<size_t>(P * (hd / 2) * 2));
  rope_table(theta, hd, P, host.data());
  return gpu::copy_h2d(dev.index, out->raw(), host.data(), host.size() * sizeof(float));
}

}  // namespace mk
