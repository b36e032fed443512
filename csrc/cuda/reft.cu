// Representation editors on CUDA (definition: core/reft.h; the CPU kernel cpu/reft.cc is the oracle).
//
// Design: one block per edited row (block-stride loop beyond the launch cap), one warp for C ≤ 128,
// up to 8 warps for wide rows. Pass 1: the 2r dots W_e h and R_e h, one warp per dot at a time (warp w
// takes dots w, w + warps, …), lanes striding over C (coalesced), a butterfly warp_sum, lane 0 writes
// the dot to shared memory; every dot has the same lane split and reduction order, so W = R gives
// u = v bit for bit. Pass 2: d (r values) in shared memory. Pass 3: each thread adds Σ_j R_e[j, c] d_j
// to its channels. Weights are read in their own dtype (bf16 widened in registers); h = x + pending is
// re-read from L1/L2 per dot rather than staged (C may exceed shared memory).
#include <cuda_runtime.h>

#include "core/reft.h"
#include "cuda/check.h"
#include "cuda/half.cuh"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65535;
constexpr int kMaxThreads = 256;

template <class T>
__global__ void __launch_bounds__(kMaxThreads) reft_kernel(ReftArgs a) {
  __shared__ float s_uv[2 * kReftMaxRank];  // u = W h (before b), then v = R h
  __shared__ float s_d[kReftMaxRank];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t r = a.r, C = a.C;
  for (int64_t i = blockIdx.x; i < a.n; i += gridDim.x) {
    const int64_t row = static_cast<int64_t>(a.rows[i]) * a.ldx, e = a.editor[i];
    const float* x = a.x + row;
    const float* p = a.pending ? a.pending + row : nullptr;
    const T* W = static_cast<const T*>(a.W) + e * r * C;
    const T* R = static_cast<const T*>(a.R) + e * r * C;
    for (int64_t j = warp; j < 2 * r; j += warps) {  // warp-uniform: all 32 lanes reach warp_sum
      const T* w = j < r ? W + j * C : R + (j - r) * C;
      float s = 0.f;
      for (int64_t c = lane; c < C; c += 32) s = fmaf(to_f32(w[c]), p ? x[c] + p[c] : x[c], s);
      s = warp_sum(s);
      if (lane == 0) s_uv[j] = s;
    }
    __syncthreads();
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x)
      s_d[j] = reft_delta(a.formula, a.act, s_uv[j] + a.b[e * r + j], s_uv[r + j]);
    __syncthreads();  // every read of h is done before the row is written
    float* y = (a.pending ? a.pending : a.x) + row;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float acc = 0.f;
      for (int64_t j = 0; j < r; ++j) acc = fmaf(to_f32(R[j * C + c]), s_d[j], acc);
      y[c] += acc;
    }
    __syncthreads();  // s_uv / s_d are reused by the block's next row
  }
}

}  // namespace

Status reft(const ReftArgs& a, void* stream) {
  MK_RETURN_IF_ERROR(reft_can_run(a.E, a.r, a.C, a.wdt));
  if (a.n < 0 || a.ldx < a.C) return make_error(Code::ARG, "reft: bad sizes");
  if (a.n == 0) return Status::Ok();
  if (!a.x || !a.rows || !a.editor || !a.R || !a.W || !a.b) return make_error(Code::ARG, "reft: null pointer");
  const int threads = a.C <= 128 ? 32 : a.C <= 1024 ? 128 : kMaxThreads;
  const unsigned blocks = static_cast<unsigned>(a.n < kMaxBlocks ? a.n : kMaxBlocks);
  auto s = static_cast<cudaStream_t>(stream);
  if (a.wdt == DType::BF16) launch_kernel("reft_kernel", reft_kernel<__nv_bfloat16>, blocks, threads, 0, s, a);
  else launch_kernel("reft_kernel", reft_kernel<float>, blocks, threads, 0, s, a);
  return check_launch("reft");
}

}  // namespace mk::cuda
