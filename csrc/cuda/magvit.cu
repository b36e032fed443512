// MAGVIT-v2's image kernels on the GPU (definitions in core/magvit.h, cpu/magvit.h).
//
// Design, correctness first: the conv, the upsample and the quantizer run one thread per output
// element (the channel fastest, so a warp reads consecutive weights and one broadcast input value),
// with grid-stride loops over 64-bit indices; the group norm runs one block per (image, group) with
// three passes (mean, centered variance, apply) and a shared-memory reduction; the attention is two
// 16×16-tiled batched products around the existing row softmax (softmax.cu).
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "cuda/magvit.cuh"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;
constexpr int kTile = 16;

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}
cudaStream_t st(void* s) { return static_cast<cudaStream_t>(s); }
Status bad(const char* op, const std::string& what) { return make_error(Code::ARG, std::string(op) + ": " + what); }

__global__ void conv2d_kernel(Conv2dArgs a) {
  const int64_t n = a.B * a.Ho * a.Wo * a.Co;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = idx % a.Co, pix = idx / a.Co, j = pix % a.Wo, i = (pix / a.Wo) % a.Ho, b = pix / (a.Wo * a.Ho);
    float acc = a.bias ? a.bias[o] : 0.f;
    for (int64_t ky = 0; ky < a.KH; ++ky) {
      const int64_t yy = i * a.stride - a.pad_top + ky;
      if (yy < 0 || yy >= a.H) continue;
      for (int64_t kx = 0; kx < a.KW; ++kx) {
        const int64_t xx = j * a.stride - a.pad_left + kx;
        if (xx < 0 || xx >= a.W) continue;
        const float* xp = a.x + ((b * a.H + yy) * a.W + xx) * a.Ci;
        const float* wp = a.w + (ky * a.KW + kx) * a.Ci * a.Co + o;
        for (int64_t c = 0; c < a.Ci; ++c) acc = fmaf(xp[c], wp[c * a.Co], acc);
      }
    }
    if (a.residual) acc += a.residual[idx];  // read before the write: y may alias it
    a.y[idx] = acc;
  }
}

// Element e of group (b, g): pixel e / cg, channel g·cg + e % cg.
__global__ void group_norm_kernel(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P,
                                  int64_t C, int64_t G, float eps, int silu) {
  __shared__ float sh[32];
  const int64_t cg = C / G, n = P * cg;
  for (int64_t bg = blockIdx.x; bg < B * G; bg += gridDim.x) {
    const int64_t b = bg / G, g = bg % G;
    const float* xb = x + b * P * C + g * cg;
    float s = 0.f;
    for (int64_t e = threadIdx.x; e < n; e += blockDim.x) s += xb[(e / cg) * C + e % cg];
    const float mean = block_sum(s, sh) / static_cast<float>(n);
    float v = 0.f;
    for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
      const float d = xb[(e / cg) * C + e % cg] - mean;
      v += d * d;
    }
    const float rstd = rsqrtf(block_sum(v, sh) / static_cast<float>(n) + eps);
    float* yb = y + b * P * C + g * cg;
    for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
      const int64_t c = g * cg + e % cg, at = (e / cg) * C + e % cg;
      float t = (xb[at] - mean) * rstd * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f);
      if (silu) t = t / (1.f + expf(-t));
      yb[at] = t;
    }
    __syncthreads();  // (y may alias x) every read of this group is done before the next group's
  }
}

__global__ void upsample2x_kernel(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C) {
  const int64_t n = B * 4 * H * W * C;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = idx % C, pix = idx / C, j = pix % (2 * W), i = (pix / (2 * W)) % (2 * H), b = pix / (4 * H * W);
    y[idx] = x[((b * H + i / 2) * W + j / 2) * C + c];
  }
}

// out[z][i, j] = alpha · Σ_k A(i, k) · Bm(k, j), A(i, k) = A[z·a_bs + i·a_rs + k·a_cs],
// Bm(k, j) = Bm[z·b_bs + k·b_rs + j·b_cs], out at z·c_bs + i·c_rs + j; one 16×16 tile per block.
__global__ void bmm_kernel(const float* A, int64_t a_rs, int64_t a_cs, int64_t a_bs, const float* Bm, int64_t b_rs,
                           int64_t b_cs, int64_t b_bs, float* out, int64_t c_rs, int64_t c_bs, int64_t M, int64_t N,
                           int64_t K, float alpha) {
  __shared__ float As[kTile][kTile + 1];
  __shared__ float Bs[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t z = blockIdx.z, i = blockIdx.y * static_cast<int64_t>(kTile) + ty, j = blockIdx.x * static_cast<int64_t>(kTile) + tx;
  const float* Az = A + z * a_bs;
  const float* Bz = Bm + z * b_bs;
  float acc = 0.f;
  for (int64_t k0 = 0; k0 < K; k0 += kTile) {
    const int64_t ka = k0 + tx, kb = k0 + ty;
    As[ty][tx] = i < M && ka < K ? Az[i * a_rs + ka * a_cs] : 0.f;
    Bs[ty][tx] = kb < K && j < N ? Bz[kb * b_rs + j * b_cs] : 0.f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc = fmaf(As[ty][k], Bs[k][tx], acc);
    __syncthreads();
  }
  if (i < M && j < N) out[z * c_bs + i * c_rs + j] = alpha * acc;
}

__global__ void lfq_encode_kernel(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int32_t code = 0;
    for (int64_t d = 0; d < D; ++d) code = (code << 1) | (z[r * ldz + d] > 0.f ? 1 : 0);
    if (codes) codes[r] = code;
    if (codes_f) codes_f[r] = static_cast<float>(code);
  }
}

__global__ void lfq_decode_kernel(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t* bad_flag) {
  const int64_t n = rows * D, limit = int64_t{1} << D;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / D, d = idx % D, code = codes[r];
    if (code < 0 || code >= limit) {
      z[idx] = 0.f;
      if (bad_flag) *bad_flag = 1;
      continue;
    }
    z[idx] = ((code >> (D - 1 - d)) & 1) ? 1.f : -1.f;
  }
}

}  // namespace

Status conv2d(const Conv2dArgs& a, void* stream) {
  MK_RETURN_IF_ERROR(conv2d_can_run(a));
  if (!a.x || !a.w || !a.y) return bad("conv2d", "null pointer");
  const int64_t n = a.B * a.Ho * a.Wo * a.Co;
  if (n == 0) return Status::Ok();
  launch_kernel("conv2d_kernel", conv2d_kernel, grid_for(n), kThreads, 0, st(stream), a);
  return check_launch("conv2d");
}

Status group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                  int64_t G, float eps, bool silu, void* stream) {
  MK_RETURN_IF_ERROR(group_norm_can_run(B, P, C, G));
  if (B == 0) return Status::Ok();
  if (!x || !y) return bad("group_norm", "null pointer");
  const int64_t blocks = B * G < kMaxBlocks ? B * G : kMaxBlocks;
  launch_kernel("group_norm_kernel", group_norm_kernel, static_cast<unsigned>(blocks), kThreads, 0, st(stream), x, gamma,
                beta, y, B, P, C, G, eps, silu ? 1 : 0);
  return check_launch("group_norm");
}

Status upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C, void* stream) {
  if (B < 0 || H < 1 || W < 1 || C < 1) return bad("upsample2x", "bad sizes");
  const int64_t n = B * 4 * H * W * C;
  if (n == 0) return Status::Ok();
  if (!x || !y) return bad("upsample2x", "null pointer");
  launch_kernel("upsample2x_kernel", upsample2x_kernel, grid_for(n), kThreads, 0, st(stream), x, y, B, H, W, C);
  return check_launch("upsample2x");
}

Status spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                    int64_t B, int64_t P, int64_t C, float scale, void* stream) {
  if (B < 0 || P < 1 || C < 1 || ld < C || ldo < C) return bad("spatial_attn", "bad sizes or strides");
  if (B > kMaxBlocks) return bad("spatial_attn", "batch " + std::to_string(B) + " > 65535");
  if ((P + kTile - 1) / kTile > kMaxBlocks) return bad("spatial_attn", std::to_string(P) + " positions > 65535·16");
  if (B == 0) return Status::Ok();
  if (!q || !k || !v || !o || !scratch) return bad("spatial_attn", "null pointer");
  const dim3 block(kTile, kTile);
  const unsigned tiles = static_cast<unsigned>((P + kTile - 1) / kTile);
  // S[b] = scale · Q[b] K[b]^T  ([P, P]: A(i, c) = q[i·ld + c], Bm(c, j) = k[j·ld + c])
  launch_kernel("bmm_kernel", bmm_kernel, dim3(tiles, tiles, static_cast<unsigned>(B)), block, 0, st(stream), q, ld,
                int64_t{1}, P * ld, k, int64_t{1}, ld, P * ld, scratch, P, P * P, P, P, C, scale);
  MK_RETURN_IF_ERROR(check_launch("spatial_attn"));
  MK_RETURN_IF_ERROR(softmax(scratch, scratch, B * P, P, stream));
  // O[b] = S[b] V[b]  ([P, C]: A(i, j) = S[i·P + j], Bm(j, c) = v[j·ld + c])
  const unsigned ctiles = static_cast<unsigned>((C + kTile - 1) / kTile);
  if (ctiles > kMaxBlocks) return bad("spatial_attn", "too many channels");
  launch_kernel("bmm_kernel", bmm_kernel, dim3(ctiles, tiles, static_cast<unsigned>(B)), block, 0, st(stream),
                static_cast<const float*>(scratch), P, int64_t{1}, P * P, v, ld, int64_t{1}, P * ld, o, ldo, P * ldo, P, C,
                P, 1.f);
  return check_launch("spatial_attn");
}

Status lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f, void* stream) {
  MK_RETURN_IF_ERROR(lfq_can_run(D));
  if (rows < 0 || ldz < D) return bad("lfq_encode", "bad sizes or strides");
  if (rows == 0) return Status::Ok();
  if (!z || (!codes && !codes_f)) return bad("lfq_encode", "null pointer");
  launch_kernel("lfq_encode_kernel", lfq_encode_kernel, grid_for(rows), kThreads, 0, st(stream), z, ldz, rows, D, codes,
                codes_f);
  return check_launch("lfq_encode");
}

Status lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t* bad_flag, void* stream) {
  MK_RETURN_IF_ERROR(lfq_can_run(D));
  if (rows < 0) return bad("lfq_decode", "bad sizes");
  if (rows == 0) return Status::Ok();
  if (!codes || !z) return bad("lfq_decode", "null pointer");
  launch_kernel("lfq_decode_kernel", lfq_decode_kernel, grid_for(rows * D), kThreads, 0, st(stream), codes, rows, D, z,
                bad_flag);
  return check_launch("lfq_decode");
}

}  // namespace mk::cuda
