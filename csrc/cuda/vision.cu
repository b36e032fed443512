// MambaOut's image kernels on the GPU (definitions in cpu/vision.h).
//
// Design: one thread per output element with the channel index fastest, so a warp reads and writes
// consecutive channels (coalesced) and, in the dense conv, all lanes read the same input value (a
// broadcast). Grid-stride loops over 64-bit indices cover any size. These layers are a small share of
// the FLOPs next to the fc1/fc2 GEMMs, so plain kernels that are clearly correct are the right trade.
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/vision.cuh"

namespace mk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

__global__ void conv3x3s2_kernel(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H,
                                 int64_t W, int64_t Ci, int64_t Co, int64_t Ho, int64_t Wo) {
  const int64_t n = B * Ho * Wo * Co;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = idx % Co, pix = idx / Co, j = pix % Wo, i = (pix / Wo) % Ho, b = pix / (Wo * Ho);
    float acc = bias ? bias[o] : 0.f;
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t yy = 2 * i - 1 + ky;
      if (yy < 0 || yy >= H) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int64_t xx = 2 * j - 1 + kx;
        if (xx < 0 || xx >= W) continue;
        const float* xp = x + ((b * H + yy) * W + xx) * Ci;
        const float* wp = w + (ky * 3 + kx) * Ci * Co + o;
        for (int64_t c = 0; c < Ci; ++c) acc = fmaf(xp[c], wp[c * Co], acc);
      }
    }
    y[idx] = acc;
  }
}

__global__ void dwconv7_kernel(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy,
                               int64_t B, int64_t H, int64_t W, int64_t C) {
  const int64_t n = B * H * W * C;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = idx % C, pix = idx / C, j = pix % W, i = (pix / W) % H, b = pix / (W * H);
    float acc = bias ? bias[c] : 0.f;
    for (int ky = 0; ky < 7; ++ky) {
      const int64_t yy = i + ky - 3;
      if (yy < 0 || yy >= H) continue;
      for (int kx = 0; kx < 7; ++kx) {
        const int64_t xx = j + kx - 3;
        if (xx < 0 || xx >= W) continue;
        acc = fmaf(x[((b * H + yy) * W + xx) * ldx + c], w[(ky * 7 + kx) * C + c], acc);
      }
    }
    y[pix * ldy + c] = acc;
  }
}

// Exact GELU in the erfc form (as the CPU's gelu_f and the elementwise gelu op).
__global__ void gelu_gate_kernel(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy,
                                 int64_t rows, int64_t n) {
  const int64_t total = rows * n;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / n, j = idx % n;
    const float av = a[r * lda + j];
    const float g = 0.5f * av * erfcf(-av * 0.70710678118654752f);
    y[r * ldy + j] = b ? g * b[r * ldb + j] : g;
  }
}

__global__ void mean_pool_kernel(const float* x, float* y, int64_t B, int64_t P, int64_t C) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < B * C;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = idx / C, c = idx % C;
    float acc = 0.f;
    for (int64_t p = 0; p < P; ++p) acc += x[(b * P + p) * C + c];
    y[idx] = acc / static_cast<float>(P);
  }
}

Status bad(const char* op, const std::string& what) { return make_error(Code::ARG, std::string(op) + ": " + what); }
cudaStream_t st(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
                 int64_t Ci, int64_t Co, void* stream) {
  if (B < 0 || H < 1 || W < 1 || Ci < 1 || Co < 1) return bad("conv3x3s2", "bad sizes");
  if (!x || !w || !y) return bad("conv3x3s2", "null pointer");
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2, n = B * Ho * Wo * Co;
  if (n == 0) return Status::Ok();
  launch_kernel("conv3x3s2_kernel", conv3x3s2_kernel, grid_for(n), kThreads, 0, st(stream), x, w, bias, y, B, H, W, Ci, Co, Ho, Wo);
  return check_launch("conv3x3s2");
}

Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
               int64_t H, int64_t W, int64_t C, void* stream) {
  if (B < 0 || H < 1 || W < 1 || C < 1 || ldx < C || ldy < C) return bad("dwconv7", "bad sizes or strides");
  if (!x || !w || !y) return bad("dwconv7", "null pointer");
  const int64_t n = B * H * W * C;
  if (n == 0) return Status::Ok();
  launch_kernel("dwconv7_kernel", dwconv7_kernel, grid_for(n), kThreads, 0, st(stream), x, ldx, w, bias, y, ldy, B, H, W, C);
  return check_launch("dwconv7");
}

Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
                 int64_t n, void* stream) {
  if (rows < 0 || n < 0 || lda < n || ldy < n || (b && ldb < n)) return bad("gelu_gate", "bad sizes or strides");
  if (rows * n == 0) return Status::Ok();
  if (!a || !y) return bad("gelu_gate", "null pointer");
  launch_kernel("gelu_gate_kernel", gelu_gate_kernel, grid_for(rows * n), kThreads, 0, st(stream), a, lda, b, ldb, y, ldy, rows, n);
  return check_launch("gelu_gate");
}

Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C, void* stream) {
  if (B < 0 || P < 1 || C < 1) return bad("mean_pool", "bad sizes");
  if (B == 0) return Status::Ok();
  if (!x || !y) return bad("mean_pool", "null pointer");
  launch_kernel("mean_pool_kernel", mean_pool_kernel, grid_for(B * C), kThreads, 0, st(stream), x, y, B, P, C);
  return check_launch("mean_pool");
}

}  // namespace mk::cuda
