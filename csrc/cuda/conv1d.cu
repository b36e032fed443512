// Causal depthwise conv1d (+ SiLU). One thread per (batch row, channel) slides over all T tokens
// with its K weights and K-1 previous inputs in registers (K is a template parameter), reading
// the initial window from conv_state and writing the final one back. Consecutive threads are
// consecutive channels, so every per-token load/store is coalesced across the warp.
//
// Tokens are processed in groups of kGroup: the group's inputs are loaded first (kGroup loads in
// flight per thread), then its outputs computed and stored. This also makes out == xin safe: a
// thread reads a token's input before writing that token's output, and no other thread touches
// its channel.
//
// Memory traffic: 8 bytes per (token, channel) (x read, out written), plus the window state and
// weights once per call.
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/ssm.cuh"

namespace mk::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kGroup = 8;

using ConvParams = ConvArgs;  // passed by value to the kernel

__device__ __forceinline__ float silu_d(float x) { return x / (1.f + expf(-x)); }

template <int K>
__global__ void __launch_bounds__(kThreads) conv_kernel(ConvParams p) {
  constexpr int W = K - 1;
  const int64_t b = blockIdx.y;
  const int64_t e = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= p.E) return;  // no block-level synchronization below
  float w[K];
#pragma unroll
  for (int j = 0; j < K; ++j) w[j] = p.w[e * K + j];
  const float bias = p.bias ? p.bias[e] : 0.f;
  const int64_t slot = p.slots ? static_cast<int64_t>(p.slots[b]) : b;
  float* st = p.state ? p.state + slot * W * p.E + e : nullptr;
  float win[W > 0 ? W : 1];  // win[0] is the oldest input
#pragma unroll
  for (int j = 0; j < W; ++j) win[j] = st ? st[j * p.E] : 0.f;

  const float* xp = p.x + b * p.T * p.ldx + e;
  float* op = p.out + b * p.T * p.ldo + e;
  for (int64_t t0 = 0; t0 < p.T; t0 += kGroup) {
    const int nt = static_cast<int>(p.T - t0 < kGroup ? p.T - t0 : kGroup);
    float xv[kGroup];
#pragma unroll
    for (int i = 0; i < kGroup; ++i) xv[i] = i < nt ? xp[(t0 + i) * p.ldx] : 0.f;
#pragma unroll
    for (int i = 0; i < kGroup; ++i) {
      if (i < nt) {  // uniform except in the last group, where it only skips padding
        float acc = bias + w[W] * xv[i];
#pragma unroll
        for (int j = 0; j < W; ++j) acc += w[j] * win[j];
#pragma unroll
        for (int j = 0; j + 1 < W; ++j) win[j] = win[j + 1];
        if (W > 0) win[W > 0 ? W - 1 : 0] = xv[i];
        op[(t0 + i) * p.ldo] = p.silu ? silu_d(acc) : acc;
      }
    }
  }
  if (st) {
#pragma unroll
    for (int j = 0; j < W; ++j) st[j * p.E] = win[j];
  }
}

template <int K>
Status launch(const ConvParams& p, int64_t B, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((p.E + kThreads - 1) / kThreads),
                  static_cast<unsigned>(B));
  launch_kernel("conv_kernel", conv_kernel<K>, grid, kThreads, 0, s, p);
  return check_launch("causal_conv1d");
}

}  // namespace

Status causal_conv1d(const ConvArgs& a, void* stream) {
  const auto bad = [](const std::string& m) { return make_error(Code::ARG, "causal_conv1d: " + m); };
  const int64_t B = a.B, T = a.T, E = a.E, K = a.K;
  MK_RETURN_IF_ERROR(conv_can_run(K, B));
  if (B < 0 || T < 0 || E < 0) return bad("negative size");
  if ((E + kThreads - 1) / kThreads > 0x7fffffff) return bad("too many channels");
  if (a.ldx < E || a.ldo < E) return bad("row stride smaller than the row width");
  if (B == 0 || T == 0 || E == 0) return Status::Ok();  // no tokens: the window is unchanged
  if (!a.x || !a.w || !a.out) return bad("null pointer");
  const ConvParams& p = a;
  auto s = static_cast<cudaStream_t>(stream);
  switch (K) {
    case 1: return launch<1>(p, B, s);
    case 2: return launch<2>(p, B, s);
    case 3: return launch<3>(p, B, s);
    case 4: return launch<4>(p, B, s);
    case 5: return launch<5>(p, B, s);
    case 6: return launch<6>(p, B, s);
    case 7: return launch<7>(p, B, s);
    default: return launch<8>(p, B, s);
  }
}


}  // namespace mk::cuda
