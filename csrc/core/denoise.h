// One step's per-position decisions of LLaDA's masked-diffusion sampler (lib/diffusion/sampler.ts), as
// the reference makes them (ML-GSAI/LLaDA generate.py; Fast-dLLM llada/generate.py get_transfer_index),
// shared by the CPU and CUDA kernels. For each listed row r of logits [*, V] (f32; rows ld apart, so V
// columns can be a slice of wider rows, e.g. MMaDA's image codes):
//   l_v  = guided ? un_v + (cfg + 1)(cond_v − un_v) : cond_v                        (double)
//   x0   = the first v maximizing l_v − T·log(−log u_v)   (T = 0: l_v; u_v = uniform(seed, step, r·V + v))
//          — LLaDA's Gumbel noise exp(l)/(−log u)^T compared in the log domain (same argmax, no overflow)
//   conf = random ? uniform(seed, step ^ 0x80000000, r)
//               : exp(l_x0 − max l) / Σ_v exp(l_v − max l)     (the softmax probability of x0, double)
// uniform = sample_uniform (core/sample.h), a value of 0 taken as 2^-64.
#pragma once
#include <cstdint>

namespace mk {

struct DenoiseArgs {
  const float* cond;    // [*, V]
  const float* uncond;  // [*, V] or null (no guidance)
  const int32_t* rows;  // [n] row indices into cond / uncond (distinct or not), device memory on CUDA
  int64_t n, V;
  double cfg, temperature;
  uint32_t seed, step;
  bool random;          // random remasking: conf is a uniform draw
  int32_t* x0;          // [n]
  double* conf;         // [n]
  int64_t ld = 0;       // elements between rows of cond / uncond (0: V); cond may point into a row (a column slice)
};

}  // namespace mk
