// GEMM: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]).
// x and y are f32 with row strides ldx / ldy (elements); W is row-major contiguous (row stride K)
// in f32, f16 or bf16.
//
// Three kernels, chosen by the launcher:
//  * gemv_kernel (M <= 8, any W dtype): decode. One warp per output column n reads W[n, :] once
//    (16-byte vector loads when aligned) and keeps M f32 accumulators; x (M*K floats) stays hot
//    in L1/L2. Memory-bound on W: the only goal is streaming W at full bandwidth. Exact f32 math.
//  * gemm_wmma (M > 8, f16/bf16 W): prefill. Tensor cores through nvcuda::wmma 16x16x16 with f32
//    accumulation. 128x128 block tile, 8 warps (2x4, each 64x32), K step 32, x converted to the
//    weight's half type while being staged into shared memory, register-staged double buffering.
//  * gemm_f32 (M > 8, f32 W): SIMT f32 (no TF32, so results match an f32 reference). 128x128
//    block tile, 256 threads with 8x8 micro-tiles, K step 8, register-staged double buffering.
// Partial tiles are zero-padded in shared memory and every global access is bounds-checked, so any
// M, N, K >= 1 works; vector loads are used only when the pointer and the row stride are aligned.
//
// Grouped GEMM (MoE experts, per-modality weights) runs the same kernels with kSeg = true and a
// Segs descriptor: rows are sorted positions split into G groups by device offsets, each group with
// its own W[g] (and bias[g]); x rows are gathered through src while staging, y rows scattered
// through dst in the epilogue, and an activation is applied after the bias. The dense gemm() is
// the kSeg = false instantiation: its code paths and launch shapes are the ones above. The offsets
// never go to the host: each block finds its (group, row tile) by scanning them (find_tile).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda/check.h"
#include "cuda/half.cuh"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"
#include "cuda/sparse.cuh"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

// ---- small helpers ------------------------------------------------------------------------------

// f32 -> raw 16-bit pattern of the half type T (round to nearest even).
template <typename T> __device__ __forceinline__ uint16_t to_bits(float v);
template <> __device__ __forceinline__ uint16_t to_bits<__half>(float v) {
  return __half_as_ushort(__float2half_rn(v));
}
template <> __device__ __forceinline__ uint16_t to_bits<__nv_bfloat16>(float v) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

// The 16 bytes of a uint4 as floats: 4 f32 or 8 f16/bf16 values (element 0 in the low bits).
__device__ __forceinline__ void unpack(const uint4& q, float* out, float) {
  out[0] = __uint_as_float(q.x);
  out[1] = __uint_as_float(q.y);
  out[2] = __uint_as_float(q.z);
  out[3] = __uint_as_float(q.w);
}
__device__ __forceinline__ void unpack(const uint4& q, float* out, __half) {
  const unsigned u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] & 0xffffu)));
    out[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] >> 16)));
  }
}
__device__ __forceinline__ void unpack(const uint4& q, float* out, __nv_bfloat16) {
  const unsigned u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // bf16 is the top half of an f32: widening is a shift
    out[2 * i] = __uint_as_float(u[i] << 16);
    out[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}


// src[0..4) of a row whose first element is at column gk: zeros past column K; one float4 load when
// vec (row start and stride 16-B aligned) and all four are in range.
__device__ __forceinline__ void load4(const float* src, int64_t gk, int64_t K, bool vec, float* out) {
  if (vec && gk + 4 <= K) {
    const float4 t = *reinterpret_cast<const float4*>(src);
    out[0] = t.x; out[1] = t.y; out[2] = t.z; out[3] = t.w;
    return;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) out[j] = gk + j < K ? src[j] : 0.0f;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- row segments (grouped GEMM) ----------------------------------------------------------------

// Sorted positions [offsets[g], offsets[g+1]) of n use W[g] = w + g * w_stride and bias + g * N.
// in_row(p) = src ? src[p] : p, out_row(p) = dst ? dst[p] : p. Unused by the dense path.
struct Segs {
  const int32_t* offsets;
  const int32_t* src;
  const int32_t* dst;
  int64_t G, n, w_stride;
  int act;  // Act
};

// offsets[g] clamped to [0, n]: a corrupt offset can empty a group but never index out of bounds.
__device__ __forceinline__ int64_t seg_off(const Segs& s, int64_t g) {
  const int64_t o = s.offsets[g];
  return o < 0 ? 0 : (o > s.n ? s.n : o);
}
__device__ __forceinline__ int64_t in_row(const Segs& s, int64_t p) {
  return s.src != nullptr ? static_cast<int64_t>(s.src[p]) : p;
}
__device__ __forceinline__ int64_t out_row(const Segs& s, int64_t p) {
  return s.dst != nullptr ? static_cast<int64_t>(s.dst[p]) : p;
}
// The epilogue activation, after the bias (the same scalar functions as cpu/kernels.h).
__device__ __forceinline__ float act_f(int act, float v) {
  switch (act) {
    case static_cast<int>(Act::RELU): return v > 0.0f ? v : 0.0f;
    case static_cast<int>(Act::GELU): return 0.5f * v * erfcf(-v * 0.70710678118654752f);
    case static_cast<int>(Act::SILU): return v / (1.0f + expf(-v));
    default: return v;
  }
}

// Row tiles are numbered group by group (ceil(rows_g / bm) tiles for group g). Sets this tile's
// group and its position range [r0, r1) (r1: the group's end; the tile covers [r0, min(r1, r0+bm))).
// Every thread of a block gets the same answer, so a block past the last tile returns as a whole,
// before any barrier. The launch uses floor(n / bm) + min(G, n) blocks on x: since the clamped
// offsets are non-decreasing, sum_g ceil(c_g / bm) <= sum_g floor(c_g / bm) + #(c_g > 0)
// <= floor(n / bm) + min(G, n), so every tile gets a block.
__device__ bool find_tile(const Segs& s, int64_t tile, int bm, int64_t& g, int64_t& r0,
                          int64_t& r1) {
  int64_t lo = seg_off(s, 0);
  for (int64_t q = 0; q < s.G; ++q) {
    int64_t hi = seg_off(s, q + 1);
    if (hi < lo) hi = lo;  // decreasing offsets: treat the group as empty
    const int64_t nt = (hi - lo + bm - 1) / bm;
    if (tile < nt) {
      g = q;
      r0 = lo + tile * bm;
      r1 = hi;
      return true;
    }
    tile -= nt;
    lo = hi;
  }
  return false;
}

// A tiled kernel's segment setup: m0 / M become the block's row tile start and its group's end,
// W and bias move to the group's. False: no tile for this block (return before any barrier).
template <class PW, class PB>
__device__ __forceinline__ bool seg_tile(const Segs& s, int bm, int64_t N, int64_t& m0, int64_t& M,
                                         PW& w, PB& bias) {
  int64_t g, r1;
  if (!find_tile(s, blockIdx.x, bm, g, m0, r1)) return false;
  M = r1;
  w += g * s.w_stride;
  if (bias != nullptr) bias += g * N;
  return true;
}

// ---- GEMV (M <= 8) ------------------------------------------------------------------------------

// x as the tensor-core GEMM sees it: rounded to the weights' half type (f32 weights: as is). The GEMV
// rounds x the same way, so a row's result does not depend on whether its batch took the GEMV
// (M <= 8) or the wmma kernel (found by running the batching test under the SIMT emulator).
__device__ __forceinline__ float as_input(float v, float) { return v; }
__device__ __forceinline__ float as_input(float v, __half) { return __half2float(__float2half_rn(v)); }
__device__ __forceinline__ float as_input(float v, __nv_bfloat16) { return __bfloat162float(__float2bfloat16_rn(v)); }

constexpr int kGemvWarps = 4;   // warps (= output columns) per block
constexpr int kGemvUnroll = 4;  // 16-byte W loads in flight per lane

// kVec: W rows and x rows are 16-byte aligned and K is a multiple of the vector width, so each row
// is read as whole uint4 vectors with no tail. Otherwise lanes stride over k with scalar loads.
// kSeg (grouped GEMV): blockIdx.y is the group g; the warp walks g's rows in chunks of MR, so W[g]
// row n is streamed from memory once per chunk (a decode group rarely has more than MR rows, and
// later chunks hit L2); an empty group reads no weight. Rows past the group's end in the last
// chunk re-read its last row (valid memory, no branches in the inner loop) and are not written.
template <typename T, int MR, bool kVec, bool kSeg>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(const float* __restrict__ x, int64_t ldx, const T* __restrict__ w,
                const float* __restrict__ bias, float* __restrict__ y, int64_t ldy, int64_t N,
                int64_t K, Segs seg) {
  const int lane = threadIdx.x & 31;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (n >= N) return;  // uniform per warp: the shuffles below see full warps
  int64_t p = 0, p1 = MR;  // dense: the M == MR rows, one pass
  if constexpr (kSeg) {
    const int64_t g = blockIdx.y;
    p = seg_off(seg, g);
    p1 = seg_off(seg, g + 1);
    w += g * seg.w_stride;
    if (bias != nullptr) bias += g * N;
  }
  const T* wrow = w + n * K;
  for (; p < p1; p += MR) {  // uniform per block
    [[maybe_unused]] const int64_t mr = p1 - p < MR ? p1 - p : MR;  // rows of this chunk (dense: MR)
    [[maybe_unused]] const float* xp[kSeg ? MR : 1];
    if constexpr (kSeg) {
#pragma unroll
      for (int m = 0; m < MR; ++m) xp[m] = x + in_row(seg, p + (m < mr ? m : mr - 1)) * ldx;
    }
    auto xrow = [&](int m) -> const float* {
      if constexpr (kSeg) return xp[m];
      else return x + m * ldx;
    };
    float acc[MR];
#pragma unroll
    for (int m = 0; m < MR; ++m) acc[m] = 0.0f;

    if constexpr (kVec) {
      constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements per uint4: 4 or 8
      const uint4* wv = reinterpret_cast<const uint4*>(wrow);
      const int64_t nv = K / V;
      for (int64_t base = lane; base < nv; base += 32 * kGemvUnroll) {
        uint4 q[kGemvUnroll];
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {  // issue all loads first
          const int64_t v = base + u * 32;
          q[u] = v < nv ? __ldg(wv + v) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {
          const int64_t v = base + u * 32;
          if (v >= nv) break;
          float wf[V];
          unpack(q[u], wf, T());
          const int64_t k = v * V;
#pragma unroll
          for (int m = 0; m < MR; ++m) {
            const float4* xv = reinterpret_cast<const float4*>(xrow(m) + k);
#pragma unroll
            for (int h = 0; h < V / 4; ++h) {
              const float4 t = xv[h];
              acc[m] += wf[4 * h] * as_input(t.x, T()) + wf[4 * h + 1] * as_input(t.y, T()) +
                        wf[4 * h + 2] * as_input(t.z, T()) + wf[4 * h + 3] * as_input(t.w, T());
            }
          }
        }
      }
    } else {
      for (int64_t k = lane; k < K; k += 32) {
        const float wf = to_f32(wrow[k]);
#pragma unroll
        for (int m = 0; m < MR; ++m) acc[m] += wf * as_input(xrow(m)[k], T());
      }
    }

#pragma unroll
    for (int m = 0; m < MR; ++m) acc[m] = warp_sum(acc[m]);
    if (lane == 0) {
      const float b = bias != nullptr ? bias[n] : 0.0f;
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        if constexpr (kSeg) {
          if (m < mr) y[out_row(seg, p + m) * ldy + n] = act_f(seg.act, acc[m] + b);
        } else {
          y[m * ldy + n] = acc[m] + b;
        }
      }
    }
  }  // chunk loop
}

// ---- tensor-core GEMM (f16/bf16 W) --------------------------------------------------------------

namespace wm {
constexpr int BM = 128, BN = 128, BK = 32;
constexpr int LDS = BK + 8;  // smem row pitch in halves (80 B): keeps fragments 32-B aligned and
                             // staggers rows across banks
constexpr int WARPS_M = 2, WARPS_N = 4, THREADS = WARPS_M * WARPS_N * 32;
constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;  // 64 x 32 per warp
constexpr int FM = WTM / 16, FN = WTN / 16;            // 4 x 2 accumulator fragments
constexpr int TILE = BM * LDS;                         // halves per operand tile (BM == BN)
constexpr int X_CHUNKS = BM * BK / 4 / THREADS;        // float4 chunks of x per thread: 4
constexpr int W_CHUNKS = BN * BK / 8 / THREADS;        // uint4 chunks of W per thread: 2
constexpr int SMEM_BYTES = 2 * 2 * TILE * 2;           // [buffer][x|W] tiles: 40960 B
static_assert(BM == BN, "one tile size for both operands");
static_assert(X_CHUNKS * THREADS * 4 == BM * BK && W_CHUNKS * THREADS * 8 == BN * BK, "tiling");
static_assert((16 * LDS * 2) % 32 == 0 && (TILE * 2) % 32 == 0, "wmma pointers: 32-B aligned");
static_assert(SMEM_BYTES >= (THREADS / 32) * 256 * 4, "epilogue scratch fits in the tile buffers");
}  // namespace wm

// x_vec: x is 16-B aligned and ldx % 4 == 0; w_vec: W is 16-B aligned and K % 8 == 0.
// kSeg: blockIdx.x is a row tile of some group (find_tile); m0/M become the tile's start and its
// group's end position, x rows are gathered through src (row indices resolved once, before the K
// loop) and y rows scattered through dst with the activation.
template <typename T, bool kSeg>
__global__ void __launch_bounds__(wm::THREADS)
    gemm_wmma(const float* __restrict__ x, int64_t ldx, const uint16_t* __restrict__ w,
              const float* __restrict__ bias, float* __restrict__ y, int64_t ldy, int64_t M,
              int64_t N, int64_t K, bool x_vec, bool w_vec, Segs seg) {
  using namespace nvcuda;
  using namespace wm;
  __shared__ __align__(128) unsigned char smem[SMEM_BYTES];
  uint16_t* tiles = reinterpret_cast<uint16_t*>(smem);  // raw bits of T

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int warp_m = warp / WARPS_N, warp_n = warp % WARPS_N;
  int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * BN;
  [[maybe_unused]] int64_t xin[kSeg ? X_CHUNKS : 1];  // gathered x row of each chunk, -1: none
  if constexpr (kSeg) {
    if (!seg_tile(seg, BM, N, m0, M, w, bias)) return;  // whole block, before any barrier
#pragma unroll
    for (int c = 0; c < X_CHUNKS; ++c) {
      const int64_t gm = m0 + (tid + c * THREADS) / (BK / 4);
      xin[c] = gm < M ? in_row(seg, gm) : -1;
    }
  }

  uint2 xr[X_CHUNKS];  // next x tile: 4 converted halves per chunk
  uint4 wr[W_CHUNKS];  // next W tile: 8 halves per chunk

  // Global -> registers (converting x to T), zero outside [0,M) x [0,K) and [0,N) x [0,K).
  auto load_tile = [&](int64_t k0) {
#pragma unroll
    for (int c = 0; c < X_CHUNKS; ++c) {
      const int idx = tid + c * THREADS;
      const int r = idx / (BK / 4), kc = (idx % (BK / 4)) * 4;
      const int64_t gm = m0 + r, gk = k0 + kc;
      float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (gm < M) {
        int64_t row = gm;
        if constexpr (kSeg) row = xin[c];
        load4(x + row * ldx + gk, gk, K, x_vec, v);
      }
      unsigned h[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) h[j] = to_bits<T>(v[j]);
      xr[c] = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
    }
#pragma unroll
    for (int c = 0; c < W_CHUNKS; ++c) {
      const int idx = tid + c * THREADS;
      const int r = idx / (BK / 8), kc = (idx % (BK / 8)) * 8;
      const int64_t gn = n0 + r, gk = k0 + kc;
      wr[c] = make_uint4(0u, 0u, 0u, 0u);
      if (gn < N) {
        const uint16_t* src = w + gn * K + gk;
        if (w_vec && gk + 8 <= K) {
          wr[c] = __ldg(reinterpret_cast<const uint4*>(src));
        } else {
          unsigned h[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) h[j] = gk + j < K ? static_cast<unsigned>(src[j]) : 0u;
          wr[c] = make_uint4(h[0] | (h[1] << 16), h[2] | (h[3] << 16), h[4] | (h[5] << 16),
                             h[6] | (h[7] << 16));
        }
      }
    }
  };
  // Registers -> shared buffer `buf` (x tile as [m][k], W tile as [n][k], pitch LDS).
  auto store_tile = [&](int buf) {
    uint16_t* xs = tiles + buf * 2 * TILE;
    uint16_t* ws = xs + TILE;
#pragma unroll
    for (int c = 0; c < X_CHUNKS; ++c) {
      const int idx = tid + c * THREADS;
      const int r = idx / (BK / 4), kc = (idx % (BK / 4)) * 4;
      *reinterpret_cast<uint2*>(xs + r * LDS + kc) = xr[c];  // 8-B aligned: LDS*2 = 80, kc % 4 == 0
    }
#pragma unroll
    for (int c = 0; c < W_CHUNKS; ++c) {
      const int idx = tid + c * THREADS;
      const int r = idx / (BK / 8), kc = (idx % (BK / 8)) * 8;
      *reinterpret_cast<uint4*>(ws + r * LDS + kc) = wr[c];  // 16-B aligned: kc % 8 == 0
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const int64_t ktiles = (K + BK - 1) / BK;
  load_tile(0);
  store_tile(0);
  __syncthreads();
  for (int64_t t = 0; t < ktiles; ++t) {
    const int buf = static_cast<int>(t & 1);
    if (t + 1 < ktiles) load_tile((t + 1) * BK);  // global loads overlap the MMAs below
    const T* xs = reinterpret_cast<const T*>(tiles + buf * 2 * TILE);
    const T* ws = xs + TILE;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      // B(k, n) = W[n][k]: the [n][k] tile is B in column-major order with leading dim LDS.
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf[FN];
#pragma unroll
      for (int j = 0; j < FN; ++j)
        wmma::load_matrix_sync(bf[j], ws + (warp_n * WTN + j * 16) * LDS + kk, LDS);
#pragma unroll
      for (int i = 0; i < FM; ++i) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af;
        wmma::load_matrix_sync(af, xs + (warp_m * WTM + i * 16) * LDS + kk, LDS);
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], af, bf[j], acc[i][j]);
      }
    }
    // Buffer buf^1 was last read in iteration t-1, and every warp passed the barrier since.
    if (t + 1 < ktiles) store_tile(buf ^ 1);
    __syncthreads();
  }

  // Epilogue: each warp spills one fragment at a time to its own 16x16 f32 scratch (reusing the
  // tile buffers: the loop's final barrier ended all reads of them), then writes the in-bounds
  // elements with the bias.
  float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
#pragma unroll
  for (int i = 0; i < FM; ++i) {
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t rm = m0 + warp_m * WTM + i * 16, cn = n0 + warp_n * WTN + j * 16;
      for (int e = lane; e < 256; e += 32) {
        const int64_t gm = rm + e / 16, gn = cn + e % 16;
        if (gm < M && gn < N) {
          const float v = scratch[e] + (bias != nullptr ? bias[gn] : 0.0f);
          if constexpr (kSeg) y[out_row(seg, gm) * ldy + gn] = act_f(seg.act, v);
          else y[gm * ldy + gn] = v;
        }
      }
      __syncwarp();  // reads done before the next fragment overwrites scratch
    }
  }
}

// ---- SIMT f32 GEMM (f32 W) ----------------------------------------------------------------------

namespace sg {
constexpr int BM = 128, BN = 128, BK = 8, THREADS = 256;
constexpr int LDS = BM + 4;  // pitch of the k-major tiles; +4 staggers the transposed stores
static_assert(BM == BN && BM * BK / 4 == THREADS, "one float4 chunk of x and of W per thread");
}  // namespace sg

// Tiles are stored k-major (xs[k][m], ws[k][n]) so each thread reads its 8 rows and 8 columns as
// float4s. A thread owns rows {ty*4..+3, 64+ty*4..+3} x cols {tx*4..+3, 64+tx*4..+3}: the split
// keeps the float4 reads of a warp contiguous (conflict-free). x_vec / w_vec / y_vec: pointer
// 16-B aligned and row stride % 4 == 0.
// kSeg: as gemm_wmma (one x chunk per thread, so one gathered row index).
template <bool kSeg>
__global__ void __launch_bounds__(sg::THREADS, 2)
    gemm_f32(const float* __restrict__ x, int64_t ldx, const float* __restrict__ w,
             const float* __restrict__ bias, float* __restrict__ y, int64_t ldy, int64_t M,
             int64_t N, int64_t K, bool x_vec, bool w_vec, bool y_vec, Segs seg) {
  using namespace sg;
  __shared__ __align__(16) float xs[2][BK][LDS];
  __shared__ __align__(16) float ws[2][BK][LDS];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const int lr = tid / 2, lk = (tid % 2) * 4;  // this thread's load chunk: row lr, k lk..lk+3
  [[maybe_unused]] int64_t xin = -1;           // kSeg: gathered x row of the chunk, -1: none
  if constexpr (kSeg) {
    if (!seg_tile(seg, BM, N, m0, M, w, bias)) return;  // whole block, before any barrier
    if (m0 + lr < M) xin = in_row(seg, m0 + lr);
  }

  // This thread's rows of the x and W tiles (-1: past the end, zeros). kSeg: x's is the gathered row.
  int64_t xrow = m0 + lr < M ? m0 + lr : -1;
  if constexpr (kSeg) xrow = xin;
  const int64_t wrow = n0 + lr < N ? n0 + lr : -1;
  float xr[4], wr[4];
  auto load_row = [&](const float* base, int64_t ld, int64_t row, bool vec, int64_t k0, float* out) {
    out[0] = out[1] = out[2] = out[3] = 0.0f;
    if (row >= 0) load4(base + row * ld + k0 + lk, k0 + lk, K, vec, out);
  };
  auto load_tile = [&](int64_t k0) {
    load_row(x, ldx, xrow, x_vec, k0, xr);
    load_row(w, K, wrow, w_vec, k0, wr);
  };
  auto store_tile = [&](int buf) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      xs[buf][lk + j][lr] = xr[j];
      ws[buf][lk + j][lr] = wr[j];
    }
  };

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  const int64_t ktiles = (K + BK - 1) / BK;
  load_tile(0);
  store_tile(0);
  __syncthreads();
  for (int64_t t = 0; t < ktiles; ++t) {
    const int buf = static_cast<int>(t & 1);
    if (t + 1 < ktiles) load_tile((t + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&xs[buf][kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&xs[buf][kk][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&ws[buf][kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&ws[buf][kk][64 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (t + 1 < ktiles) store_tile(buf ^ 1);  // buf^1 was last read before the previous barrier
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t gm = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    if (gm >= M) continue;
    int64_t orow = gm;
    if constexpr (kSeg) orow = out_row(seg, gm);
    float* yr = y + orow * ldy;
#pragma unroll
    for (int hc = 0; hc < 2; ++hc) {  // column group: tx*4 or 64 + tx*4
      const int64_t gn = n0 + hc * 64 + tx * 4;
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool in = gn + j < N;
        v[j] = acc[i][hc * 4 + j] + (in && bias != nullptr ? bias[gn + j] : 0.0f);
        if constexpr (kSeg) v[j] = act_f(seg.act, v[j]);
      }
      if (y_vec && gn + 4 <= N) {
        *reinterpret_cast<float4*>(yr + gn) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (gn + j < N) yr[gn + j] = v[j];
      }
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------

template <typename T, int MR>
void launch_gemv_m(const float* x, int64_t ldx, const void* w, const float* bias, float* y,
                   int64_t ldy, int64_t N, int64_t K, cudaStream_t s) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  const bool vec = aligned16(w) && K % V == 0 && aligned16(x) && ldx % 4 == 0;
  const unsigned blocks = static_cast<unsigned>((N + kGemvWarps - 1) / kGemvWarps);
  const T* wt = static_cast<const T*>(w);
  if (vec)
    launch_kernel("gemv_kernel", gemv_kernel<T, MR, true, false>, blocks, kGemvWarps * 32, 0, s, x, ldx, wt, bias, y, ldy, N, K, Segs{});
  else
    launch_kernel("gemv_kernel", gemv_kernel<T, MR, false, false>, blocks, kGemvWarps * 32, 0, s, x, ldx, wt, bias, y, ldy, N, K, Segs{});
}

// Grouped GEMV: grid (N / kGemvWarps column blocks, G groups); rows in chunks of MR = 8 (the
// dense GEMV's largest M), so each chunk keeps 8 accumulators per lane as the dense kernel does.
template <typename T>
void launch_grouped_gemv(const float* x, int64_t ldx, const void* w, const float* bias, float* y,
                         int64_t ldy, int64_t N, int64_t K, const Segs& seg, cudaStream_t s) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  // W[g] = w + g*N*K stays 16-B aligned when w is and K % V == 0.
  const bool vec = aligned16(w) && K % V == 0 && aligned16(x) && ldx % 4 == 0;
  const dim3 grid(static_cast<unsigned>((N + kGemvWarps - 1) / kGemvWarps),
                  static_cast<unsigned>(seg.G));
  const T* wt = static_cast<const T*>(w);
  if (vec)
    launch_kernel("gemv_kernel", gemv_kernel<T, 8, true, true>, grid, kGemvWarps * 32, 0, s, x, ldx, wt, bias, y, ldy, N, K,
                                                                   seg);
  else
    launch_kernel("gemv_kernel", gemv_kernel<T, 8, false, true>, grid, kGemvWarps * 32, 0, s, x, ldx, wt, bias, y, ldy, N,
                                                                    K, seg);
}

constexpr int64_t kGemvMaxM = 8;

// Calls f(std::integral_constant<int, MR>) with MR == m, for m in [1, kGemvMaxM].
template <int MR = 1, typename F>
void with_rows(int64_t m, F&& f) {
  if constexpr (MR < kGemvMaxM) {
    if (m != MR) return with_rows<MR + 1>(m, std::forward<F>(f));
  }
  f(std::integral_constant<int, MR>{});
}

template <typename T>
void launch_gemv(const float* x, int64_t ldx, const void* w, const float* bias, float* y,
                 int64_t ldy, int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  with_rows(M, [&](auto mr) {
    launch_gemv_m<T, decltype(mr)::value>(x, ldx, w, bias, y, ldy, N, K, s);
  });
}

constexpr int64_t kMaxGridX = 2147483647, kMaxGridY = 65535;

// The tiled kernels on `grid`: SIMT f32 for f32 weights, tensor cores for f16/bf16. The dense GEMM
// is the kSeg = false case; `what` names the op in a launch error.
template <bool kSeg>
Status launch_tiled(dim3 grid, const float* x, int64_t ldx, const void* w, DType wdt, const float* bias,
                    float* y, int64_t ldy, int64_t M, int64_t N, int64_t K, const Segs& seg,
                    cudaStream_t s, const char* what) {
  const bool x_vec = aligned16(x) && ldx % 4 == 0;
  if (wdt == DType::F32) {
    const bool w_vec = aligned16(w) && K % 4 == 0;
    const bool y_vec = aligned16(y) && ldy % 4 == 0;
    launch_kernel("gemm_f32", gemm_f32<kSeg>, grid, sg::THREADS, 0, s, x, ldx, static_cast<const float*>(w), bias, y, ldy,
                                                M, N, K, x_vec, w_vec, y_vec, seg);
    return check_launch((std::string(what) + " (f32)").c_str());
  }
  const bool w_vec = aligned16(w) && K % 8 == 0;
  const auto* wbits = static_cast<const uint16_t*>(w);
  if (wdt == DType::F16)
    launch_kernel("gemm_wmma", gemm_wmma<__half, kSeg>, grid, wm::THREADS, 0, s, x, ldx, wbits, bias, y, ldy, M, N, K,
                                                         x_vec, w_vec, seg);
  else
    launch_kernel("gemm_wmma", gemm_wmma<__nv_bfloat16, kSeg>, grid, wm::THREADS, 0, s, x, ldx, wbits, bias, y, ldy, M, N,
                                                                K, x_vec, w_vec, seg);
  return check_launch((std::string(what) + " (tensor core)").c_str());
}


// Grouped GEMMs with at most this many sorted rows (decode: tokens x k) take the grouped GEMV.
// There each group's weight is streamed once per 8-row chunk (its tail chunks hit L2) and only the
// groups in use are read; the 128-row tiles would instead pad every small group to 128 rows of
// tensor-core work and launch few blocks (one row tile per used group and 128 columns). 64 rows
// bound the worst case (all rows in one group) to 8 passes over one weight, mostly from L2.
constexpr int64_t kGroupedGemvMaxN = 64;

}  // namespace

Status gemm(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
            int64_t ldy, int64_t M, int64_t N, int64_t K, void* stream) {
  if (M < 1 || N < 1 || K < 1 || ldx < K || ldy < N)
    return make_error(Code::ARG, "gemm: bad sizes M=" + std::to_string(M) + " N=" +
                                     std::to_string(N) + " K=" + std::to_string(K) + " ldx=" +
                                     std::to_string(ldx) + " ldy=" + std::to_string(ldy));
  if (!x || !w || !y) return make_error(Code::ARG, "gemm: null pointer");
  if (!is_float(wdt))
    return make_error(Code::DTYPE, std::string("gemm: weights must be f32/f16/bf16, got ") +
                                       dtype_name(wdt));
  auto s = static_cast<cudaStream_t>(stream);

  if (M <= kGemvMaxM) {
    if ((N + kGemvWarps - 1) / kGemvWarps > kMaxGridX)
      return make_error(Code::ARG, "gemm: N=" + std::to_string(N) + " too large");
    switch (wdt) {
      case DType::F32: launch_gemv<float>(x, ldx, w, bias, y, ldy, M, N, K, s); break;
      case DType::F16: launch_gemv<__half>(x, ldx, w, bias, y, ldy, M, N, K, s); break;
      default: launch_gemv<__nv_bfloat16>(x, ldx, w, bias, y, ldy, M, N, K, s); break;
    }
    return check_launch("gemm (gemv)");
  }

  // Tiled kernels: M tiles on grid x, N tiles on grid y (limit 65535, i.e. N <= 8,388,480).
  const int64_t tiles_m = (M + 127) / 128, tiles_n = (N + 127) / 128;
  if (tiles_m > kMaxGridX || tiles_n > kMaxGridY)
    return make_error(Code::ARG, "gemm: M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                     " exceed the grid limits");
  const dim3 grid(static_cast<unsigned>(tiles_m), static_cast<unsigned>(tiles_n));
  return launch_tiled<false>(grid, x, ldx, w, wdt, bias, y, ldy, M, N, K, Segs{}, s, "gemm");
}

Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const void* w, DType wdt,
                    const float* bias, const int32_t* offsets, int64_t G, int64_t n, int64_t N,
                    int64_t K, Act act, float* y, int64_t ldy, const int32_t* dst, void* stream) {
  if (n < 0 || n > INT32_MAX || G < 1 || N < 1 || K < 1 || ldx < K || ldy < N)
    return make_error(Code::ARG, "grouped_gemm: bad sizes n=" + std::to_string(n) + " G=" +
                                     std::to_string(G) + " N=" + std::to_string(N) + " K=" +
                                     std::to_string(K) + " ldx=" + std::to_string(ldx) +
                                     " ldy=" + std::to_string(ldy) +
                                     " (n in [0, 2^31-1], G, N, K >= 1, ldx >= K, ldy >= N)");
  const int a = static_cast<int>(act);
  if (a < static_cast<int>(Act::NONE) || a > static_cast<int>(Act::SILU))
    return make_error(Code::ARG, "grouped_gemm: bad activation " + std::to_string(a));
  if (!is_float(wdt))
    return make_error(Code::DTYPE, std::string("grouped_gemm: weights must be f32/f16/bf16, got ") +
                                       dtype_name(wdt));
  if (n == 0) return Status::Ok();
  if (!x || !w || !y || !offsets) return make_error(Code::ARG, "grouped_gemm: null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  const Segs seg{offsets, src, dst, G, n, N * K, a};

  if (n <= kGroupedGemvMaxN) {
    if ((N + kGemvWarps - 1) / kGemvWarps > kMaxGridX || G > kMaxGridY)
      return make_error(Code::ARG, "grouped_gemm: N=" + std::to_string(N) + " G=" +
                                       std::to_string(G) + " exceed the grid limits (G <= 65535)");
    switch (wdt) {
      case DType::F32: launch_grouped_gemv<float>(x, ldx, w, bias, y, ldy, N, K, seg, s); break;
      case DType::F16: launch_grouped_gemv<__half>(x, ldx, w, bias, y, ldy, N, K, seg, s); break;
      default: launch_grouped_gemv<__nv_bfloat16>(x, ldx, w, bias, y, ldy, N, K, seg, s); break;
    }
    return check_launch("grouped_gemm (gemv)");
  }

  // Row tiles on grid x: an upper bound on the tiles of all groups (see find_tile); the blocks
  // past the last tile exit at once. N tiles on grid y, as the dense GEMM.
  const int64_t tiles_m = n / 128 + (G < n ? G : n), tiles_n = (N + 127) / 128;
  if (tiles_m > kMaxGridX || tiles_n > kMaxGridY)
    return make_error(Code::ARG, "grouped_gemm: n=" + std::to_string(n) + " G=" +
                                     std::to_string(G) + " N=" + std::to_string(N) +
                                     " exceed the grid limits");
  const dim3 grid(static_cast<unsigned>(tiles_m), static_cast<unsigned>(tiles_n));
  // M is replaced by each tile's group end on the device; n is a valid placeholder.
  return launch_tiled<true>(grid, x, ldx, w, wdt, bias, y, ldy, n, N, K, seg, s, "grouped_gemm");
}

}  // namespace mk::cuda
