// The diffusion sampler's per-position picks on the CPU (core/denoise.h): rows in parallel, each a
// pass for the maximum and the (noisy) argmax and a pass for the softmax sum, in double.
#include <cmath>
#include <vector>

#include "core/denoise.h"
#include "core/sample.h"
#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {

void denoise_pick(const DenoiseArgs& a) {
  const bool guided = a.uncond != nullptr;
  const int64_t ld = a.ld > 0 ? a.ld : a.V;  // rows ld apart: cond may be a column slice
  parallel_for(a.n, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> mixed(guided ? static_cast<size_t>(a.V) : 0);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = a.rows[i];
      const float* c = a.cond + r * ld;
      const auto logit = [&](int64_t v) -> double { return guided ? mixed[v] : static_cast<double>(c[v]); };
      if (guided) {
        const float* u = a.uncond + r * ld;
        for (int64_t v = 0; v < a.V; ++v) mixed[v] = u[v] + (a.cfg + 1) * (static_cast<double>(c[v]) - u[v]);
      }
      double mx = -INFINITY, best_score = -INFINITY;
      int64_t best = 0;
      for (int64_t v = 0; v < a.V; ++v) {
        const double l = logit(v);
        if (l > mx) mx = l;
        double score = l;
        if (a.temperature > 0) {
          double u = sample_uniform(a.seed, a.step, static_cast<uint64_t>(r * a.V + v));
          if (u <= 0) u = 0x1p-64;
          score = l - a.temperature * std::log(-std::log(u));
        }
        if (score > best_score) best_score = score, best = v;  // first maximum
      }
      a.x0[i] = static_cast<int32_t>(best);
      if (a.random) {
        a.conf[i] = sample_uniform(a.seed, a.step ^ 0x80000000u, static_cast<uint64_t>(r));
        continue;
      }
      double sum = 0;
      for (int64_t v = 0; v < a.V; ++v) sum += std::exp(logit(v) - mx);
      a.conf[i] = std::exp(logit(best) - mx) / sum;
    }
  });
}

}  // namespace mk::cpu
