// CPU token sampling; the definition (order of operations, RNG, tie rules) is in cpu/sample.h.
// Rows run in parallel; per row, top-k uses nth_element (no full sort of V), top-p sorts only the
// candidates left by top-k (all V when top-k is off).
#include "cpu/sample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threadpool.h"

namespace mk::cpu {
namespace {

void sample_row(const float* x, const int32_t* prev, int64_t V, int64_t P, const SampleParams& p,
                uint64_t row, int32_t* id_out, float* lp_out, std::vector<float>& s,
                std::vector<int32_t>& idx, std::vector<uint8_t>& keep) {
  s.assign(x, x + V);
  for (int64_t j = 0; j < P; ++j) {
    const int32_t t = prev[j];
    if (t >= 0 && t < V) s[t] = sample_penalize(x[t], p.penalty);  // idempotent: duplicates count once
  }

  if (p.temperature == 0.f) {  // greedy: first maximum, NaN wins (as argmax)
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i) {
      if (std::isnan(s[best])) break;
      if (std::isnan(s[i]) || s[i] > s[best]) best = i;
    }
    const float m = s[best];
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += static_cast<double>(sample_expf(s[i] - m));
    *id_out = static_cast<int32_t>(best);
    *lp_out = static_cast<float>(-std::log(sum));
    return;
  }

  float m = -INFINITY;
  for (int64_t i = 0; i < V; ++i) {
    s[i] = s[i] / p.temperature;
    m = s[i] > m ? s[i] : m;  // fmax's NaN rule (NaN never wins), without its libm call
  }
  for (int64_t i = 0; i < V; ++i) s[i] = sample_expf(s[i] - m);  // w, max 1

  // (w desc, id asc); keys are distinct, so this is a strict total order.
  auto before = [&](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
  const bool use_k = p.top_k > 0 && p.top_k < V, use_p = p.top_p < 1.0, use_min = p.min_p > 0.f;
  keep.assign(V, 1);
  if (use_k || use_p) {
    idx.resize(V);
    for (int64_t i = 0; i < V; ++i) idx[i] = static_cast<int32_t>(i);
    int64_t n = V;
    if (use_k) {
      n = p.top_k;
      std::nth_element(idx.begin(), idx.begin() + (n - 1), idx.end(), before);  // first n = top n
    }
    if (use_p) {
      std::sort(idx.begin(), idx.begin() + n, before);
      double mass = 0;
      for (int64_t r = 0; r < n; ++r) mass += s[idx[r]];
      const double target = p.top_p * mass;
      double cum = 0;
      int64_t np = n;
      for (int64_t r = 0; r < n; ++r) {
        cum += s[idx[r]];
        if (cum >= target) {
          np = r + 1;
          break;
        }
      }
      n = np;
    }
    std::fill(keep.begin(), keep.end(), 0);
    for (int64_t r = 0; r < n; ++r) keep[idx[r]] = 1;
  }
  if (use_min)
    for (int64_t i = 0; i < V; ++i)
      if (!(s[i] >= p.min_p)) keep[i] = 0;  // the max (w = 1) always stays

  double total = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < V; ++i)
    if (keep[i]) {
      total += s[i];
      last = i;
    }
  const double target = sample_uniform_for(p, row) * total;
  int64_t chosen = last < 0 ? 0 : last;
  double acc = 0;
  for (int64_t i = 0; i < V; ++i)
    if (keep[i]) {
      acc += s[i];
      if (target < acc) {
        chosen = i;
        break;
      }
    }
  *id_out = static_cast<int32_t>(chosen);
  *lp_out = static_cast<float>(std::log(static_cast<double>(s[chosen])) - std::log(total));
}

}  // namespace

void sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, int64_t B,
            int64_t V, int64_t P, const SampleParams& p) {
  parallel_for(B, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> s;
    std::vector<int32_t> idx;
    std::vector<uint8_t> keep;
    for (int64_t r = r0; r < r1; ++r)
      sample_row(logits + r * V, prev ? prev + r * P : nullptr, V, prev ? P : 0, p,
                 static_cast<uint64_t>(r), ids + r, logprob + r, s, idx, keep);
  });
}

}  // namespace mk::cpu
