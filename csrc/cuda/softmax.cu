// Row-wise softmax and argmax over the last dimension.
//
// Design: one block per row (block-stride loop over rows beyond the launch cap), threads stride
// over the row, warp-shuffle + shared-memory block reductions. Softmax makes three passes (max,
// sum of exp(x - max), normalize), re-reading the row from L1/L2 so any D works; y may alias x
// because each element is read and written by the same thread and the reductions are barriers.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65535;

// Block-wide max / sum, result in every thread. blockDim.x is a multiple of 32; `sh` has 32 floats
// and the leading barrier makes back-to-back calls with the same buffer safe.
template <bool kMax>
__device__ float block_reduce(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < nwarps ? sh[lane] : (kMax ? -INFINITY : 0.0f);
    t = kMax ? warp_max(t) : warp_sum(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  return sh[0];
}

// fmaxf ignores NaN, so a NaN in the row does not become the max, but it does propagate through
// exp() into the sum and so the whole row becomes NaN (as in the usual frameworks). A row of all
// -inf gives NaN (exp(-inf - -inf)), also as in the usual frameworks.
__global__ void softmax_kernel(const float* x, float* y, int64_t rows, int64_t D) {
  __shared__ float sh[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) m = fmaxf(m, xr[i]);
    m = block_reduce<true>(m, sh);
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += expf(xr[i] - m);
    s = block_reduce<false>(s, sh);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = expf(xr[i] - m) / s;
  }
}

__global__ void argmax_kernel(const float* x, int32_t* y, int64_t rows, int D) {
  __shared__ float shv[32];
  __shared__ int shi[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * D;
    // INT_MAX is never a real index (D <= INT_MAX), so any real element beats the initial value.
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {  // 64-bit: no overflow near INT_MAX
      const float v = xr[j];
      const int i = static_cast<int>(j);
      if (argmax_beats(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
    warp_best(bv, bi, argmax_beats);
    __syncthreads();  // the previous row's reader of shv/shi is done
    if (lane == 0) {
      shv[warp] = bv;
      shi[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
      float v = lane < nwarps ? shv[lane] : -INFINITY;
      int i = lane < nwarps ? shi[lane] : INT_MAX;
      warp_best(v, i, argmax_beats);
      if (lane == 0) y[row] = i;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------

int threads_for(int64_t D) { return D >= 8192 ? 1024 : 256; }  // multiples of 32
unsigned blocks_for(int64_t rows) {
  return static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks);
}

}  // namespace

Status softmax(const float* x, float* y, int64_t rows, int64_t D, void* stream) {
  if (rows < 0 || D < 1)
    return make_error(Code::ARG, "softmax: bad sizes rows=" + std::to_string(rows) +
                                     " D=" + std::to_string(D));
  if (rows == 0) return Status::Ok();
  if (!x || !y) return make_error(Code::ARG, "softmax: null pointer");
  launch_kernel("softmax_kernel", softmax_kernel, blocks_for(rows), threads_for(D), 0, static_cast<cudaStream_t>(stream), x, y, rows, D);
  return check_launch("softmax");
}

Status argmax(const float* x, int32_t* y, int64_t rows, int64_t D, void* stream) {
  if (rows < 0 || D < 1 || D > INT_MAX)
    return make_error(Code::ARG, "argmax: bad sizes rows=" + std::to_string(rows) +
                                     " D=" + std::to_string(D) + " (1 <= D <= 2^31-1)");
  if (rows == 0) return Status::Ok();
  if (!x || !y) return make_error(Code::ARG, "argmax: null pointer");
  launch_kernel("argmax_kernel", argmax_kernel, blocks_for(rows), threads_for(D), 0, static_cast<cudaStream_t>(stream), x, y, rows, static_cast<int>(D));
  return check_launch("argmax");
}

}  // namespace mk::cuda
