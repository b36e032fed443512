// CUDA token sampling; the definition (order of operations, RNG, tie rules) is in core/sample.h.
//
// Design: one block per row (block-stride loop over rows beyond the launch cap). The row is copied
// to a scratch row, the repetition penalty is applied in place (each prev entry rewrites its token
// from the original logit, so duplicates are harmless), then turned into unnormalized probabilities
// w = exp(z - max z). The kept set is always a prefix of the order (w desc, id asc), i.e. the tokens
// whose 64-bit key (bits(w) << 32 | ~id) is >= some threshold; keys are distinct and, for w >= 0,
// ordered like (w, -id). Each filter gives a threshold found exactly by a 64-step bit-by-bit
// bisection, each step one block reduction over the row:
//   top-k: the largest T with count(key >= T) >= k (the k-th largest key);
//   top-p: the largest T with mass(key >= T) >= top_p * mass(top-k set), i.e. the shortest prefix
//          reaching the target (the mass is a fixed-order tree sum of non-negative terms, so it is
//          monotone in T even with rounding, which makes the bisection exact);
//   min-p: bits(min_p) << 32 (w >= min_p, since max w = 1).
// The final threshold is the largest of these. The draw is an inverse CDF in id order: each thread
// owns a contiguous chunk of ids, a block exclusive scan of the chunk masses locates the chunk, and
// the lowest id whose running mass exceeds u * M wins (shared atomicMin).
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/sample.cuh"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65535;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ uint64_t key_of(float w, int i) {
  return (static_cast<uint64_t>(__float_as_uint(w)) << 32) |
         static_cast<uint64_t>(0xFFFFFFFFu - static_cast<uint32_t>(i));
}

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Block-wide reduction, result in every thread. `sh` holds 33 elements; the leading barrier makes
// back-to-back calls with the same buffer safe. blockDim.x is a multiple of 32.
template <typename T, typename Op>
__device__ T block_allreduce(T v, T* sh, T identity, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(kFull, v, off));
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T t = lane < nwarps ? sh[lane] : identity;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) t = op(t, __shfl_xor_sync(kFull, t, off));
    if (lane == 0) sh[32] = t;
  }
  __syncthreads();
  return sh[32];
}

// Exclusive prefix sum over threads (in threadIdx order). `sh` holds 33 doubles.
__device__ double block_exclusive_scan(double v, double* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  double inc = v;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const double o = __shfl_up_sync(kFull, inc, off);
    if (lane >= off) inc += o;
  }
  double ex = __shfl_up_sync(kFull, inc, 1);  // exclusive within the warp (no subtraction)
  if (lane == 0) ex = 0.0;
  __syncthreads();
  if (lane == 31) sh[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    double ti = lane < nwarps ? sh[lane] : 0.0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const double o = __shfl_up_sync(kFull, ti, off);
      if (lane >= off) ti += o;
    }
    double te = __shfl_up_sync(kFull, ti, 1);
    if (lane == 0) te = 0.0;
    __syncwarp();
    if (lane < nwarps) sh[lane] = te;  // exclusive offset of warp `lane`
  }
  __syncthreads();
  return sh[warp] + ex;
}


__global__ void sample_kernel(const float* logits, const int32_t* prev, int32_t* ids, float* logprob,
                              float* scratch, int64_t B, int V, int64_t P, SampleParams p) {
  __shared__ double shd[33];
  __shared__ unsigned shu[33];
  __shared__ float shf[33];
  __shared__ float sh_bv[32];
  __shared__ int sh_bi[32];
  __shared__ int sh_choice, sh_last;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int lane = tid & 31, warp = tid >> 5, nwarps = nt >> 5;
  const bool use_k = p.top_k > 0 && p.top_k < V, use_p = p.top_p < 1.0, use_min = p.min_p > 0.f;

  for (int64_t row = blockIdx.x; row < B; row += gridDim.x) {
    const float* x = logits + row * V;
    float* s = scratch + row * V;
    for (int i = tid; i < V; i += nt) s[i] = x[i];
    __syncthreads();
    if (prev) {
      const int32_t* pr = prev + row * P;
      for (int64_t j = tid; j < P; j += nt) {
        const int32_t t = pr[j];
        if (t >= 0 && t < V) s[t] = sample_penalize(x[t], p.penalty);  // same value for duplicates
      }
    }
    __syncthreads();  // global writes above are visible to the block after the barrier

    if (p.temperature == 0.f) {  // greedy
      float bv = -INFINITY;
      int bi = INT_MAX;
      for (int i = tid; i < V; i += nt)
        if (argmax_beats(s[i], i, bv, bi)) {
          bv = s[i];
          bi = i;
        }
      warp_best(bv, bi, argmax_beats);
      __syncthreads();
      if (lane == 0) {
        sh_bv[warp] = bv;
        sh_bi[warp] = bi;
      }
      __syncthreads();
      bv = sh_bv[0];
      bi = sh_bi[0];
      for (int w = 1; w < nwarps; ++w)
        if (argmax_beats(sh_bv[w], sh_bi[w], bv, bi)) {
          bv = sh_bv[w];
          bi = sh_bi[w];
        }
      double sum = 0.0;
      for (int i = tid; i < V; i += nt) sum += static_cast<double>(sample_expf(s[i] - bv));
      sum = block_allreduce(sum, shd, 0.0, SumOp());
      if (tid == 0) {
        ids[row] = bi;
        logprob[row] = static_cast<float>(-log(sum));
      }
      continue;  // uniform across the block
    }

    // temperature, w = exp(z - max z)
    float m = -INFINITY;
    for (int i = tid; i < V; i += nt) {
      const float z = s[i] / p.temperature;
      s[i] = z;
      m = fmaxf(m, z);
    }
    m = block_allreduce(m, shf, -INFINITY, MaxOp());
    for (int i = tid; i < V; i += nt) s[i] = sample_expf(s[i] - m);  // each thread rereads its own elements
    __syncthreads();

    uint64_t thr = 0;  // keep key >= thr; 0 keeps everything
    double mass_k = 0.0;
    if (use_k) {
      const unsigned k = static_cast<unsigned>(p.top_k);
      uint64_t prefix = 0;
      for (int bit = 63; bit >= 0; --bit) {
        const uint64_t cand = prefix | (1ull << bit);
        unsigned cnt = 0;
        for (int i = tid; i < V; i += nt) cnt += key_of(s[i], i) >= cand ? 1u : 0u;
        cnt = block_allreduce(cnt, shu, 0u, SumOp());
        if (cnt >= k) prefix = cand;
      }
      thr = prefix;
    }
    if (use_p) {
      double mk = 0.0;
      for (int i = tid; i < V; i += nt) {
        const float w = s[i];
        if (key_of(w, i) >= thr) mk += static_cast<double>(w);
      }
      mass_k = block_allreduce(mk, shd, 0.0, SumOp());
      const double target = p.top_p * mass_k;
      uint64_t prefix = 0;
      for (int bit = 63; bit >= 0; --bit) {
        const uint64_t cand = prefix | (1ull << bit);
        double ms = 0.0;
        for (int i = tid; i < V; i += nt) {
          const float w = s[i];
          if (key_of(w, i) >= cand) ms += static_cast<double>(w);
        }
        ms = block_allreduce(ms, shd, 0.0, SumOp());
        if (ms >= target) prefix = cand;
      }
      if (prefix > thr) thr = prefix;
    }
    if (use_min) {
      const uint64_t tm = static_cast<uint64_t>(__float_as_uint(p.min_p)) << 32;
      if (tm > thr) thr = tm;
    }

    // inverse CDF in id order over the kept set
    const int chunk = (V + nt - 1) / nt;
    const int lo = min(V, tid * chunk), hi = min(V, lo + chunk);
    double local = 0.0;
    int last = -1;
    for (int i = lo; i < hi; ++i) {
      const float w = s[i];
      if (key_of(w, i) >= thr) {
        local += static_cast<double>(w);
        last = i;
      }
    }
    const double total = block_allreduce(local, shd, 0.0, SumOp());
    const double excl = block_exclusive_scan(local, shd);
    if (tid == 0) {
      sh_choice = INT_MAX;
      sh_last = -1;
    }
    __syncthreads();
    if (last >= 0) atomicMax(&sh_last, last);
    const double target = sample_uniform_for(p, row) * total;
    {  // every chunk walks (no early skip), so a crossing lost to rounding falls to the next chunk
      double acc = excl;
      for (int i = lo; i < hi; ++i) {
        const float w = s[i];
        if (key_of(w, i) >= thr) {
          acc += static_cast<double>(w);
          if (target < acc) {
            atomicMin(&sh_choice, i);
            break;
          }
        }
      }
    }
    __syncthreads();
    if (tid == 0) {
      const int c = sh_choice != INT_MAX ? sh_choice : (sh_last >= 0 ? sh_last : 0);
      ids[row] = c;
      logprob[row] = static_cast<float>(log(static_cast<double>(s[c])) - log(total));
    }
    __syncthreads();  // sh_choice / sh_last are reset for the next row only after tid 0 read them
  }
}

}  // namespace

Status sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, float* scratch,
              int64_t B, int64_t V, int64_t P, const SampleParams& p, void* stream) {
  if (B < 0 || V < 1 || V > INT_MAX || P < 0)
    return make_error(Code::ARG, "sample: bad sizes B=" + std::to_string(B) + " V=" + std::to_string(V) +
                                     " P=" + std::to_string(P));
  if (B == 0) return Status::Ok();
  if (!logits || !ids || !logprob || !scratch) return make_error(Code::ARG, "sample: null pointer");
  const int threads = V >= 8192 ? 1024 : 256;
  const unsigned blocks = static_cast<unsigned>(B < kMaxBlocks ? B : kMaxBlocks);
  launch_kernel("sample_kernel", sample_kernel, blocks, threads, 0, static_cast<cudaStream_t>(stream), logits, P > 0 ? prev : nullptr, ids, logprob, scratch, B, static_cast<int>(V), P, p);
  return check_launch("sample");
}

}  // namespace mk::cuda
