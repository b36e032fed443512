// Bidirectional multi-head attention (flash-style, SIMT f32) and LLaDA's rotary embedding on CUDA.
// Semantics and layouts: core/attn.h; the CPU twin is cpu/attention.cc.
//
// attention: one block of 4 warps per (query tile, K/V head and a chunk of its query heads, batch
// row). The block's rows are the tile's queries of every query head reading that K/V head (grouped
// K/V), so each K/V tile is staged once for all of them: 32 rows, R = 8 per warp (16 rows, R = 4,
// for hd > 128, so that shared memory stays under sm_86/89's 99 KiB). Per tile of 32 keys:
//  - K goes to shared memory transposed ([d][33]: the odd stride keeps the transposing stores free
//    of bank conflicts) and V as [key][NI*32], both in f32 (bf16/f16 converted on load), with zeros
//    for keys past Tk and head dims past hd (so odd hd and partial tiles need no guards inside);
//  - lane j computes key j's score for its warp's R rows (Q rows in shared memory, read as float4
//    broadcasts), so the online softmax costs one warp max per row and tile; the running sum stays
//    lane-partial until the end (the rescale factor is warp-uniform);
//  - p goes to the warp's slice of shared memory, and lane l accumulates head dims l + 32 i (i < NI)
//    of O += P·V in registers.
// A tile whose bias drops every key (padding) is skipped, as on the CPU: it would add nothing.
//
// rope_kv: one block per (batch row, position) row, threads striding over the (head, i) pairs of
// q and k and over v's elements; every element is read and written by one thread (q in place).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/attn.cuh"
#include "cuda/check.h"
#include "cuda/half.cuh"
#include "cuda/launch.cuh"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kKT = 32;            // keys per tile: one per lane
constexpr int kKStride = kKT + 1;  // transposed K row stride (floats)
constexpr size_t kDefaultSmem = 48 * 1024;

// NI = head dims per lane (hd <= NI * 32); R = query rows per warp.
template <int NI>
struct AttnCfg {
  static constexpr int R = NI <= 4 ? 8 : 4;
  static constexpr int kRows = R * kWarps;
  static constexpr int kHdv = NI * 32;  // V row stride (floats)
};

// Shared floats of a block: Q [rows][hdq], P [rows][kKT], K^T [hdq][kKStride], V [kKT][hdv]
// (Q and P first: both are read as float4, and their sizes keep K and V 16-byte aligned too).
constexpr int64_t attn_smem_floats(int rows, int hdq, int hdv) {
  return int64_t{rows} * hdq + int64_t{rows} * kKT + int64_t{hdq} * kKStride + int64_t{kKT} * hdv;
}

__device__ __forceinline__ void store_kv(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_kv(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store_kv(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float lane_of(const float4& v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }

// Grid: x = (K/V head, head chunk, query tile) with the tile fastest, y = batch row. gh query heads
// per chunk, qt queries per tile (qt * gh <= rows); row r = (query t0 + r / ng, head h0 + r % ng).
template <int NI, typename KT>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(AttnArgs a, int64_t tiles, int64_t hchunks, int gh, int qt) {
  using C = AttnCfg<NI>;
  constexpr int R = C::R, kRows = C::kRows, kHdv = C::kHdv;
  MK_DYNAMIC_SHARED(float, smem);
  const int hd = static_cast<int>(a.hd), hdq = (hd + 3) & ~3;
  float* const sQ = smem;
  float* const sP = sQ + kRows * hdq;
  float* const sK = sP + kRows * kKT;
  float* const sV = sK + hdq * kKStride;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t b = blockIdx.y, item = blockIdx.x;
  const int64_t tile = item % tiles, hc = (item / tiles) % hchunks, kvh = item / (tiles * hchunks);
  const int64_t g = a.H / a.KVH, t0 = tile * qt, h0 = hc * gh;
  const int nt = static_cast<int>(a.Tq - t0 < qt ? a.Tq - t0 : qt);
  const int ng = static_cast<int>(g - h0 < gh ? g - h0 : gh);
  const int rows = nt * ng;

  // Q rows (zeros for rows past the item and dims past hd), and the pads of K^T and V that the tile
  // loads never write: they stay zero, so 0 * pad never meets the 0xFF poison or a NaN.
  for (int r = warp; r < kRows; r += kWarps) {
    const float* qr = nullptr;
    if (r < rows) qr = a.q + (b * a.Tq + t0 + r / ng) * a.ldq + (kvh * g + h0 + r % ng) * hd;
    for (int d = lane; d < hdq; d += 32) sQ[r * hdq + d] = (qr && d < hd) ? qr[d] : 0.f;
  }
  for (int e = tid; e < (hdq - hd) * kKStride; e += kThreads) sK[hd * kKStride + e] = 0.f;
  for (int e = tid; e < kKT * (kHdv - hd); e += kThreads) {
    const int j = e / (kHdv - hd), d = hd + e % (kHdv - hd);
    sV[j * kHdv + d] = 0.f;
  }

  const int64_t slot = a.slots ? static_cast<int64_t>(a.slots[b]) : b;
  const int64_t ld = a.KVH * a.hd;
  const KT* const kbase = static_cast<const KT*>(a.k) + slot * a.slot_stride + kvh * hd;
  const KT* const vbase = static_cast<const KT*>(a.v) + slot * a.slot_stride + kvh * hd;
  const float* const brow = a.bias ? a.bias + b * a.ldbias : nullptr;
  const bool active = warp * R < rows;  // warp-uniform: the warp has rows to compute
  const float* const qw = sQ + warp * R * hdq;
  float* const pw = sP + warp * R * kKT;

  float acc[R][NI], m[R], l[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int i = 0; i < NI; ++i) acc[r][i] = 0.f;
  }

  for (int64_t j0 = 0; j0 < a.Tk; j0 += kKT) {
    const bool kin = j0 + lane < a.Tk;
    const float bj = !kin ? -INFINITY : brow ? brow[j0 + lane] : 0.f;
    // Every warp reads the same bias, so the skip is block-uniform and the barriers stay aligned.
    if (brow && !__any_sync(kFull, bj != -INFINITY)) continue;
    const int nk = static_cast<int>(a.Tk - j0 < kKT ? a.Tk - j0 : kKT);
    __syncthreads();  // the previous tile's K, V and P are no longer read
    for (int j = warp; j < kKT; j += kWarps) {
      const KT* kr = nullptr;
      const KT* vr = nullptr;
      if (j < nk) {
        kr = kbase + (j0 + j) * ld;
        vr = vbase + (j0 + j) * ld;
      }
#pragma unroll
      for (int i = 0; i < NI; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) {
          sK[d * kKStride + j] = kr ? to_f32(kr[d]) : 0.f;
          sV[j * kHdv + d] = vr ? to_f32(vr[d]) : 0.f;
        }
      }
    }
    __syncthreads();
    if (!active) continue;

    float s[R];
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = 0.f;
#pragma unroll 2
    for (int d = 0; d < hdq; d += 4) {  // d ascending, as the CPU sums
      const float k0 = sK[d * kKStride + lane], k1 = sK[(d + 1) * kKStride + lane];
      const float k2 = sK[(d + 2) * kKStride + lane], k3 = sK[(d + 3) * kKStride + lane];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float4 q4 = *reinterpret_cast<const float4*>(qw + r * hdq + d);
        s[r] += q4.x * k0;
        s[r] += q4.y * k1;
        s[r] += q4.z * k2;
        s[r] += q4.w * k3;
      }
    }

    // Online softmax: m is the row's running max, l its (lane-partial) sum; the accumulator is
    // rescaled by exp(m_old - m_new) (0 while m was -inf). A row that has seen only dropped keys
    // keeps m = -inf and adds nothing.
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float sc = kin ? s[r] * a.scale + bj : -INFINITY;
      const float mn = fmaxf(m[r], warp_max(sc));
      float p = 0.f;
      if (mn != -INFINITY) {
        const float corr = expf(m[r] - mn);
        p = expf(sc - mn);
        l[r] = l[r] * corr + p;
#pragma unroll
        for (int i = 0; i < NI; ++i) acc[r][i] *= corr;
        m[r] = mn;
      }
      pw[r * kKT + lane] = p;
    }
    __syncwarp();  // p of every lane is visible to the warp

#pragma unroll 1  // unrolled further, hd 128 spills (sm_80, R = 8, NI = 4)
    for (int j = 0; j < kKT; j += 4) {  // keys past Tk have p = 0 and V = 0
      float4 p4[R];
#pragma unroll
      for (int r = 0; r < R; ++r) p4[r] = *reinterpret_cast<const float4*>(pw + r * kKT + j);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        float v[NI];
#pragma unroll
        for (int i = 0; i < NI; ++i) v[i] = sV[(j + jj) * kHdv + lane + 32 * i];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float pr = lane_of(p4[r], jj);
#pragma unroll
          for (int i = 0; i < NI; ++i) acc[r][i] += pr * v[i];
        }
      }
    }
    // The next tile's P stores come after its __syncthreads, so no __syncwarp is needed here.
  }

  if (!active) return;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float lt = warp_sum(l[r]);
    const int row = warp * R + r;
    if (row >= rows) continue;
    const float inv = lt > 0.f ? 1.f / lt : 0.f;  // every key dropped: o = 0
    float* orow = a.o + (b * a.Tq + t0 + row / ng) * a.ldo + (kvh * g + h0 + row % ng) * hd;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) orow[d] = acc[r][i] * inv;
    }
  }
}

template <int NI, typename KT>
Status launch_attention(const AttnArgs& a, cudaStream_t s) {
  using C = AttnCfg<NI>;
  const int64_t g = a.H / a.KVH, gh = g < C::kRows ? g : C::kRows, hchunks = (g + gh - 1) / gh;
  const int64_t qt = C::kRows / gh, tiles = (a.Tq + qt - 1) / qt;
  const int64_t gx = tiles * hchunks * a.KVH;
  if (gx > 2147483647)
    return make_error(Code::ARG, "attention: " + std::to_string(gx) + " blocks (Tq=" + std::to_string(a.Tq) +
                                     ", KVH=" + std::to_string(a.KVH) + ") exceed the grid limit 2^31-1");
  const int hdq = static_cast<int>((a.hd + 3) & ~int64_t{3});
  const size_t smem = static_cast<size_t>(attn_smem_floats(C::kRows, hdq, C::kHdv)) * sizeof(float);
  if (smem > kDefaultSmem)  // at most 83 KiB (hd 256): within every target's opt-in limit
    MK_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(&attention_kernel<NI, KT>),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  launch_kernel("attention_kernel", attention_kernel<NI, KT>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(a.B)),
                kThreads, smem, s, a, tiles, hchunks, static_cast<int>(gh), static_cast<int>(qt));
  return check_launch("attention");
}

template <typename KT>
Status attention_for(const AttnArgs& a, cudaStream_t s) {
  if (a.hd <= 32) return launch_attention<1, KT>(a, s);
  if (a.hd <= 64) return launch_attention<2, KT>(a, s);
  if (a.hd <= 128) return launch_attention<4, KT>(a, s);
  return launch_attention<8, KT>(a, s);
}

// ---- rope_kv ------------------------------------------------------------------------------------

constexpr int kRopeThreads = 128;
constexpr int64_t kRopeMaxBlocks = 65535;  // a row-stride loop covers the rest

template <typename KT>
__global__ void __launch_bounds__(kRopeThreads) rope_kv_kernel(RopeArgs a) {
  const int hd = static_cast<int>(a.hd), half = hd / 2;
  const int H = static_cast<int>(a.H), KVH = static_cast<int>(a.KVH);
  const int64_t ld = a.KVH * a.hd;
  for (int64_t r = blockIdx.x; r < a.B * a.T; r += gridDim.x) {
    const int64_t b = r / a.T, pos = a.pos0 + r % a.T;
    const float* cs = a.table + pos * half * 2;
    float* q = a.q + r * a.ldq;
    for (int e = threadIdx.x; e < H * half; e += kRopeThreads) {
      const int h = e / half, i = e - h * half;
      const float c = cs[2 * i], sn = cs[2 * i + 1];
      float* x = q + h * hd;
      const float x1 = x[i], x2 = x[i + half];
      x[i] = x1 * c - x2 * sn;
      x[i + half] = x2 * c + x1 * sn;
    }
    const int64_t slot = a.slots ? static_cast<int64_t>(a.slots[b]) : b;
    const int64_t off = slot * a.slot_stride + pos * ld;
    KT* kc = static_cast<KT*>(a.kc) + off;
    KT* vc = static_cast<KT*>(a.vc) + off;
    const float* k = a.k + r * a.ldk;
    const float* v = a.v + r * a.ldk;
    for (int e = threadIdx.x; e < KVH * half; e += kRopeThreads) {
      const int h = e / half, i = e - h * half;
      const float c = cs[2 * i], sn = cs[2 * i + 1];
      const float x1 = k[h * hd + i], x2 = k[h * hd + i + half];
      store_kv(kc + h * hd + i, x1 * c - x2 * sn);
      store_kv(kc + h * hd + i + half, x2 * c + x1 * sn);
    }
    for (int e = threadIdx.x; e < KVH * hd; e += kRopeThreads) store_kv(vc + e, v[e]);
  }
}

template <typename KT>
Status launch_rope(const RopeArgs& a, cudaStream_t s) {
  const int64_t rows = a.B * a.T;
  const unsigned blocks = static_cast<unsigned>(rows < kRopeMaxBlocks ? rows : kRopeMaxBlocks);
  launch_kernel("rope_kv_kernel", rope_kv_kernel<KT>, blocks, kRopeThreads, 0, s, a);
  return check_launch("rope_kv");
}

std::string sz(int64_t v) { return std::to_string(v); }

}  // namespace

Status attention(const AttnArgs& a, void* stream) {
  const auto bad = [](const std::string& m) { return make_error(Code::ARG, "attention: " + m); };
  MK_RETURN_IF_ERROR(attn_can_run(a.H, a.KVH, a.hd, a.B));
  if (a.B < 0 || a.Tq < 0 || a.Tk < 0)
    return bad("negative size B=" + sz(a.B) + " Tq=" + sz(a.Tq) + " Tk=" + sz(a.Tk));
  const int64_t qw = a.H * a.hd, kvw = a.KVH * a.hd;
  if (a.ldq < qw || a.ldo < qw)
    return bad("row stride ldq=" + sz(a.ldq) + " / ldo=" + sz(a.ldo) + " smaller than H*hd=" + sz(qw));
  if (a.bias && a.ldbias < a.Tk) return bad("bias row stride " + sz(a.ldbias) + " < Tk=" + sz(a.Tk));
  if ((a.B > 1 || a.slots) && a.slot_stride < a.Tk * kvw)
    return bad("slot stride " + sz(a.slot_stride) + " < Tk*KVH*hd=" + sz(a.Tk * kvw));
  if (a.kvdt != DType::F32 && a.kvdt != DType::BF16 && a.kvdt != DType::F16) return bad("K/V must be f32, bf16 or f16");
  if (a.B == 0 || a.Tq == 0) return Status::Ok();
  if (!a.q || !a.o || (a.Tk > 0 && (!a.k || !a.v))) return bad("null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  switch (a.kvdt) {
    case DType::BF16: return attention_for<__nv_bfloat16>(a, s);
    case DType::F16: return attention_for<__half>(a, s);
    default: return attention_for<float>(a, s);
  }
}

Status rope_kv(const RopeArgs& a, void* stream) {
  const auto bad = [](const std::string& m) { return make_error(Code::ARG, "rope_kv: " + m); };
  MK_RETURN_IF_ERROR(rope_can_run(a.hd));
  if (a.H < 1 || a.KVH < 1) return bad("H=" + sz(a.H) + " and KVH=" + sz(a.KVH) + " must be >= 1");
  if (a.B < 0 || a.T < 0 || a.pos0 < 0) return bad("negative size B=" + sz(a.B) + " T=" + sz(a.T) + " pos0=" + sz(a.pos0));
  const int64_t kvw = a.KVH * a.hd;
  if (a.ldq < a.H * a.hd) return bad("q row stride " + sz(a.ldq) + " < H*hd=" + sz(a.H * a.hd));
  if (a.ldk < kvw) return bad("k/v row stride " + sz(a.ldk) + " < KVH*hd=" + sz(kvw));
  if ((a.B > 1 || a.slots) && a.slot_stride < (a.pos0 + a.T) * kvw)
    return bad("slot stride " + sz(a.slot_stride) + " < (pos0+T)*KVH*hd=" + sz((a.pos0 + a.T) * kvw));
  if (a.H * a.hd / 2 > 2147483647 || kvw > 2147483647) return bad("rows of more than 2^31-1 elements");
  if (a.kvdt != DType::F32 && a.kvdt != DType::BF16 && a.kvdt != DType::F16) return bad("the cache must be f32, bf16 or f16");
  if (a.B == 0 || a.T == 0) return Status::Ok();
  if (!a.q || !a.k || !a.v || !a.kc || !a.vc || !a.table) return bad("null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  switch (a.kvdt) {
    case DType::BF16: return launch_rope<__nv_bfloat16>(a, s);
    case DType::F16: return launch_rope<__half>(a, s);
    default: return launch_rope<float>(a, s);
  }
}

}  // namespace mk::cuda
