// Row normalizations: RMSNorm (with an optional fused residual add) and LayerNorm.
//
// Design: one thread block per row (a block-stride loop over rows covers grids larger than the
// launch cap); threads stride over the row, accumulate in f32 and combine with a warp-shuffle +
// shared-memory block reduction. Rows are re-read from global memory instead of being cached in
// shared memory: any D works without a shared-memory limit, and the re-reads hit L1/L2.
//
// Aliasing: y may alias x, and sum_out may alias x or residual (in-place residual streams). Every
// element index is handled by the same thread in every pass, the final pass reads the row sum from
// sum_out (which that same thread wrote), and all reads of a pass complete before the block
// reduction barrier, so in-place use is safe. Pointers are therefore not __restrict__.
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxBlocks = 65535;

// s = x + residual; y = s / sqrt(mean(s^2) + eps) * w. Pass 1 forms s (storing it to sum_out when
// there is a residual) and its sum of squares; pass 2 normalizes.
__global__ void rmsnorm_kernel(const float* x, const float* residual, const float* w, float* y,
                               float* sum_out, int64_t rows, int64_t D, float eps) {
  __shared__ float sh[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float ss = 0.0f;
    if (residual != nullptr) {
      const float* rr = residual + row * D;
      float* sr = sum_out + row * D;
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        const float s = xr[i] + rr[i];
        sr[i] = s;
        ss += s * s;
      }
    } else {
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    }
    ss = block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
    const float* src = residual != nullptr ? sum_out + row * D : xr;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const float wv = w != nullptr ? w[i] : 1.0f;
      yr[i] = src[i] * inv * wv;
    }
  }
}

// Two-pass LayerNorm: the mean first, then the biased variance as mean((x - mean)^2), which avoids
// the cancellation of E[x^2] - E[x]^2 when |mean| >> std.
__global__ void layernorm_kernel(const float* x, const float* w, const float* b, float* y,
                                 int64_t rows, int64_t D, float eps) {
  __shared__ float sh[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) sum += xr[i];
    const float mean = block_sum(sum, sh) / static_cast<float>(D);
    float sq = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const float d = xr[i] - mean;
      sq += d * d;
    }
    const float var = block_sum(sq, sh) / static_cast<float>(D);
    const float inv = 1.0f / sqrtf(var + eps);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      const float bv = b != nullptr ? b[i] : 0.0f;
      yr[i] = (xr[i] - mean) * inv * w[i] + bv;
    }
    // The next row's first block_sum starts with a barrier, so no thread races ahead into sh.
  }
}

// ---- launchers ----------------------------------------------------------------------------------

int threads_for(int64_t D) { return D >= 8192 ? 1024 : 256; }  // multiples of 32
unsigned blocks_for(int64_t rows) {
  return static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks);
}

Status check_rows(const char* op, int64_t rows, int64_t D) {
  if (rows < 0 || D < 1)
    return make_error(Code::ARG, std::string(op) + ": bad sizes rows=" + std::to_string(rows) +
                                     " D=" + std::to_string(D));
  return Status::Ok();
}

}  // namespace

Status rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
               int64_t rows, int64_t D, float eps, void* stream) {
  MK_RETURN_IF_ERROR(check_rows("rmsnorm", rows, D));
  if (rows == 0) return Status::Ok();
  if (!x || !y || (residual && !sum_out))
    return make_error(Code::ARG, "rmsnorm: null pointer (sum_out is required with a residual)");
  launch_kernel("rmsnorm_kernel", rmsnorm_kernel, blocks_for(rows), threads_for(D), 0, static_cast<cudaStream_t>(stream), x, residual, w, y, sum_out, rows, D, eps);
  return check_launch("rmsnorm");
}

Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                 float eps, void* stream) {
  MK_RETURN_IF_ERROR(check_rows("layernorm", rows, D));
  if (rows == 0) return Status::Ok();
  if (!x || !w || !y) return make_error(Code::ARG, "layernorm: null pointer (w is required)");
  launch_kernel("layernorm_kernel", layernorm_kernel, blocks_for(rows), threads_for(D), 0, static_cast<cudaStream_t>(stream), x, w, b, y, rows, D, eps);
  return check_launch("layernorm");
}

}  // namespace mk::cuda
