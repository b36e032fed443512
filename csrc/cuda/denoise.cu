// The diffusion sampler's per-position picks on CUDA; the definition is in core/denoise.h and the
// CPU kernel (cpu/denoise.cc) is the oracle it must match.
//
// Design: one block per listed row (block-stride loop over rows beyond the launch cap), threads
// stride over the vocabulary. Pass 1 keeps each thread's max l and its first best (score, v); a
// warp-shuffle + shared-memory reduction combines them, ties to the lower v, which equals the
// CPU's left-to-right "first maximum" scan whatever the thread layout. Pass 2 (skipped for random
// remasking) sums exp(l - max l) in double, block-reduced. l and the score are recomputed per pass
// rather than staged: a row is re-read from L2, and V may be far larger than shared memory.
//
// Bit-exactness with the CPU: every product is rounded on its own (__dmul_rn), because nvcc would
// otherwise fuse `u + g * d` and `l - T * log(...)` into FMAs that the CPU (x86-64, no FMA) does
// not form. log() is CUDA's double log (≤ 1 ulp) against glibc's on the CPU: an argmax can differ
// only where two noisy scores are within an ulp of each other.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "core/sample.h"
#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65535;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxThreads = 512;  // large V; ~40 registers each (sm_80), so 3 blocks fit an SM

__device__ __forceinline__ double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);  // never contracted into an FMA
#else
  return a * b;  // the emulator build: g++ for x86-64 does not contract
#endif
}

// l_v of row `c` / `u` (u null: no guidance), as cpu/denoise.cc computes it.
__device__ __forceinline__ double logit(const float* c, const float* u, double g, int64_t v) {
  if (!u) return static_cast<double>(c[v]);
  const double un = u[v];
  return un + mul_rn(g, static_cast<double>(c[v]) - un);
}

// (s, v) beats (bs, bv): the larger score, then the lower index. Scores here are never NaN (a
// thread's best only moves to a score > its current one), so this is a strict total order.
__device__ __forceinline__ bool beats(double s, int v, double bs, int bv) {
  return s > bs || (s == bs && v < bv);
}

__global__ void __launch_bounds__(kMaxThreads) denoise_pick_kernel(DenoiseArgs a) {
  __shared__ double sh_mx[32], sh_s[32], sh_sum[32];
  __shared__ int sh_v[32];
  const int tid = threadIdx.x, nt = blockDim.x;
  const int lane = tid & 31, warp = tid >> 5, nwarps = nt >> 5;
  const double g = a.cfg + 1, T = a.temperature;

  for (int64_t i = blockIdx.x; i < a.n; i += gridDim.x) {
    const int64_t r = a.rows[i];
    const float* c = a.cond + r * (a.ld > 0 ? a.ld : a.V);  // rows ld apart (a column slice)
    const float* u = a.uncond ? a.uncond + r * (a.ld > 0 ? a.ld : a.V) : nullptr;

    // pass 1: max l (NaN never becomes it: strict >, as on the CPU) and the first best score.
    // INT_MAX marks "no candidate": a row of -inf / NaN scores gives x0 = 0 like the CPU.
    double mx = -INFINITY, bs = -INFINITY;
    int bv = INT_MAX;
    for (int64_t v = tid; v < a.V; v += nt) {  // 64-bit: no overflow near V = INT_MAX
      const double l = logit(c, u, g, v);
      if (l > mx) mx = l;
      double s = l;
      if (T > 0) {
        double uv = sample_uniform(a.seed, a.step, static_cast<uint64_t>(r * a.V + v));
        if (uv <= 0) uv = 0x1p-64;
        s = l - mul_rn(T, log(-log(uv)));
      }
      if (s > bs) bs = s, bv = static_cast<int>(v);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const double omx = __shfl_xor_sync(kFull, mx, off), os = __shfl_xor_sync(kFull, bs, off);
      const int ov = __shfl_xor_sync(kFull, bv, off);
      if (omx > mx) mx = omx;
      if (beats(os, ov, bs, bv)) bs = os, bv = ov;
    }
    __syncthreads();  // the previous row's readers of the shared slots are done
    if (lane == 0) sh_mx[warp] = mx, sh_s[warp] = bs, sh_v[warp] = bv;
    __syncthreads();
    if (warp == 0) {
      mx = lane < nwarps ? sh_mx[lane] : -INFINITY;
      bs = lane < nwarps ? sh_s[lane] : -INFINITY;
      bv = lane < nwarps ? sh_v[lane] : INT_MAX;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        const double omx = __shfl_xor_sync(kFull, mx, off), os = __shfl_xor_sync(kFull, bs, off);
        const int ov = __shfl_xor_sync(kFull, bv, off);
        if (omx > mx) mx = omx;
        if (beats(os, ov, bs, bv)) bs = os, bv = ov;
      }
      if (lane == 0) sh_mx[0] = mx, sh_v[0] = bv == INT_MAX ? 0 : bv;
    }
    __syncthreads();
    mx = sh_mx[0];
    const int x0 = sh_v[0];

    if (a.random) {  // uniform across the block
      if (tid == 0) {
        a.x0[i] = x0;
        a.conf[i] = sample_uniform(a.seed, a.step ^ 0x80000000u, static_cast<uint64_t>(r));
      }
      continue;
    }

    // pass 2: the softmax denominator in double
    double sum = 0;
    for (int64_t v = tid; v < a.V; v += nt) sum += exp(logit(c, u, g, v) - mx);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off);
    if (lane == 0) sh_sum[warp] = sum;  // sh_sum is read below by warp 0 only, after this barrier
    __syncthreads();
    if (warp == 0) {
      sum = lane < nwarps ? sh_sum[lane] : 0.0;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off);
      if (lane == 0) {
        a.x0[i] = x0;
        a.conf[i] = exp(logit(c, u, g, x0) - mx) / sum;
      }
    }
  }
}

}  // namespace

Status denoise_pick(const DenoiseArgs& a, void* stream) {
  if (a.n < 0 || a.V < 1 || a.V > INT_MAX)
    return make_error(Code::ARG, "denoise_pick: bad sizes n=" + std::to_string(a.n) + " V=" + std::to_string(a.V) +
                                     " (n >= 0, 1 <= V <= 2^31-1)");
  if (a.n == 0) return Status::Ok();
  if (!a.cond || !a.rows || !a.x0 || !a.conf) return make_error(Code::ARG, "denoise_pick: null pointer");
  const int threads = a.V >= 8192 ? kMaxThreads : 256;  // multiples of 32
  const unsigned blocks = static_cast<unsigned>(a.n < kMaxBlocks ? a.n : kMaxBlocks);
  launch_kernel("denoise_pick_kernel", denoise_pick_kernel, blocks, threads, 0, static_cast<cudaStream_t>(stream), a);
  return check_launch("denoise_pick");
}

}  // namespace mk::cuda
