// Butterfly reductions over a full warp (every lane gets the result; called by all 32 lanes), a block
// sum built on them, and
// the argmax order shared by the argmax, sampling and router kernels.
#pragma once

namespace mk::cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
// Sum of `v` over the block, returned to every thread. blockDim.x must be a multiple of 32 (all
// lanes active for the full-mask shuffles). `sh` holds 32 floats; the leading barrier makes it safe
// to call repeatedly with the same buffer.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // previous call's readers of sh[0] are done
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < nwarps ? sh[lane] : 0.0f;
    t = warp_sum(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  return sh[0];
}

__device__ __forceinline__ int warp_min(int v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}


// Argmax order: NaN counts as larger than every number (so a row containing NaN returns the index
// of its first NaN); otherwise the larger value wins; equal values (including -0 == +0 and equal
// infinities) go to the lower index. Returns true when (v, i) beats (bv, bi). This is a strict
// total order on (value, index) pairs, so a tree reduction gives the same answer as a left-to-
// right scan, whatever the thread layout.
__device__ __forceinline__ bool argmax_beats(float v, int i, float bv, int bi) {
  const bool vn = isnan(v), bn = isnan(bv);
  if (vn != bn) return vn;
  if (!vn && v != bv) return v > bv;
  return i < bi;
}

// (v, i) becomes the warp's best pair under `beats(v, i, bv, bi)` (a strict total order), in every lane.
template <class Beats>
__device__ __forceinline__ void warp_best(float& v, int& i, Beats beats) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int oi = __shfl_xor_sync(0xffffffffu, i, off);
    if (beats(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

}  // namespace mk::cuda
