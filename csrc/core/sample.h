// Token sampling (the `sample` op): the parameters and the scalar pieces the CPU and CUDA kernels
// must compute identically (penalty rule, exp, RNG), host and device code.
//
// Order of operations per row b (HF-like):
//   1. repetition penalty: for each token id in prev[b, :] (entries outside [0, V), e.g. -1 padding,
//      are ignored; duplicates count once), s = x > 0 ? x / penalty : x * penalty (CTRL rule);
//   2. greedy (temperature == 0): id = first maximum of s (lower id on ties, a NaN wins as in
//      argmax), logprob = log_softmax(s)[id] at temperature 1; no filtering, no RNG;
//   3. temperature: z = s / temperature, w = exp(z - max z) (unnormalized probabilities, max w = 1);
//   4. top-k: keep the top_k tokens in the order (w descending, id ascending);
//   5. top-p: of those, keep the shortest prefix of that order whose mass reaches top_p times the
//      mass kept by top-k (at least one token);
//   6. min-p: drop tokens with p < min_p * p_max, i.e. w < min_p (w_max = 1);
//   7. renormalize over the kept set K (mass M) and draw by inverse CDF in id order: with
//      u = sample_uniform(seed, step, b) in [0, 1), the first kept id whose cumulative mass exceeds
//      u * M (the last kept id if rounding leaves none); logprob = log(w_id / M).
// Sums of w are accumulated in double. The kept set is a prefix of the (w desc, id asc) order, which
// the CUDA kernel finds by bisection on the 64-bit key below.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/status.h"

#if defined(__CUDACC__)
#define MK_SAMPLE_HD __host__ __device__ __forceinline__
#else
#define MK_SAMPLE_HD inline
#endif

namespace mk {

struct SampleParams {
  float temperature = 1.f;  // 0 = greedy
  int64_t top_k = 0;        // 0 = off
  double top_p = 1.0;       // 1 = off
  float min_p = 0.f;        // 0 = off
  float penalty = 1.f;      // 1 = off
  uint32_t seed = 0;
  uint32_t step = 0;
  // Optional per-row keys [B, 2] = (seed, step) (device memory on CUDA): row b then draws with the key
  // (keys[b], 0) instead of (seed, step, b), exactly as a one-row call would — so a batch scheduler
  // can sample many requests in one call without their draws depending on their row.
  const int32_t* keys = nullptr;
};

// The uniform for `row`: from its own key when per-row keys are given.
MK_SAMPLE_HD double sample_uniform_for(const SampleParams& p, int64_t row);

MK_SAMPLE_HD float sample_penalize(float x, float pen) { return x > 0.f ? x / pen : x * pen; }

// exp(x) from fmaf / rintf / ldexpf only (Cephes expf polynomial, ~1 ulp), so that the host and the
// device compute bit-identical weights (libm expf and CUDA expf may differ by an ulp, which could move
// a near-tie across a top-k boundary or shift the CDF). Every multiply-add is an explicit fmaf so FMA
// contraction by either compiler cannot change the result.
MK_SAMPLE_HD float sample_expf(float x) {
  if (x != x) return x;
  if (x > 88.72283f) return INFINITY;
  if (x < -103.97208f) return 0.f;
  const float k = rintf(x * 1.44269504088896341f);
  float r = fmaf(-k, 0.693359375f, x);
  r = fmaf(-k, -2.12194440e-4f, r);
  const float r2 = fmaf(r, r, 0.f);
  float q = 1.9875691500e-4f;
  q = fmaf(q, r, 1.3981999507e-3f);
  q = fmaf(q, r, 8.3334519073e-3f);
  q = fmaf(q, r, 4.1665795894e-2f);
  q = fmaf(q, r, 1.6666665459e-1f);
  q = fmaf(q, r, 5.0000001201e-1f);
  const float y = fmaf(q, r2, r) + 1.f;
  return ldexpf(y, static_cast<int>(k));
}

// splitmix64 finalizer.
MK_SAMPLE_HD uint64_t sample_mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Counter-based uniform in [0, 1) (53 bits) keyed by (seed, step, row): integer-only, so the host
// and the device produce the same value whatever the thread layout.
MK_SAMPLE_HD double sample_uniform(uint32_t seed, uint32_t step, uint64_t row) {
  uint64_t h = sample_mix64((static_cast<uint64_t>(seed) << 32) | step);
  h = sample_mix64(h ^ sample_mix64(row ^ 0xD1B54A32D192ED03ull));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

MK_SAMPLE_HD double sample_uniform_for(const SampleParams& p, int64_t row) {
  if (p.keys) return sample_uniform(static_cast<uint32_t>(p.keys[2 * row]), static_cast<uint32_t>(p.keys[2 * row + 1]), 0);
  return sample_uniform(p.seed, p.step, static_cast<uint64_t>(row));
}

}  // namespace mk
