// Selective scan (Mamba-1). Each (batch row, channel) is owned by G adjacent threads of a warp
// that carry its N states in registers through the whole sequence: G = 1 for N <= 32 (one thread
// per channel), else G = bucket/32 threads with 32 states each (states n = k*G + g), their y
// summed with warp shuffles. A block holds 64 consecutive channels of one batch row.
//
// Per chunk of kChunk tokens the block stages into shared memory:
//  - B and C rows (kChunk x N each): loaded once per block, then read by all channels as
//    broadcasts (the G lanes of a channel read G consecutive words: no bank conflicts);
//  - u, softplus(dt + dt_bias) and silu(z) of the block's channels: coalesced across channels,
//    and all kChunk loads are issued before the serial part, so their latency overlaps.
// The serial part then only touches registers (states, A) and shared memory.
//
// Memory traffic per token (memory-bound estimate): per channel u, dt, z read + y written = 16 B,
// i.e. 16*E bytes per token and batch row; B and C are 8*N bytes per token, read once per block
// (E/64 times, mostly from L2). State 8*N*E bytes and A 4*N*E bytes once per call (per row).
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/ssm.cuh"

namespace mk::cuda {
namespace {

constexpr int kChannels = 64;  // channels per block
constexpr float kLog2e = 1.4426950408889634f;

using ScanParams = ScanArgs;  // passed by value to the kernel

// Accurate libm-style functions (no fast-math intrinsics), the same definitions as the CPU.
__device__ __forceinline__ float softplus_d(float x) { return x > 20.f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float silu_d(float x) { return x / (1.f + expf(-x)); }

// Tokens staged per chunk: shared use is kChunk * (2*kMaxN + 3*kChannels) floats (<= 45 KiB).
template <int kMaxN>
constexpr int chunk_for() { return kMaxN <= 64 ? 32 : 16; }

template <int kMaxN>
struct Cfg {
  static constexpr int kPer = kMaxN < 32 ? kMaxN : 32;  // states per thread (registers)
  static constexpr int G = kMaxN / kPer;                // threads per channel (divides 32)
  static constexpr int kBlock = kChannels * G;
  static constexpr int kChunk = chunk_for<kMaxN>();
};

template <int kMaxN>
__global__ void __launch_bounds__(Cfg<kMaxN>::kBlock) scan_kernel(ScanParams p) {
  using C = Cfg<kMaxN>;
  constexpr int kPer = C::kPer, G = C::G, kChunk = C::kChunk;
  static_assert(kChunk * (2 * kMaxN + 3 * kChannels) * 4 <= 48 * 1024, "static shared limit");
  static_assert(32 % G == 0, "a channel's lanes must stay within one warp");
  __shared__ float sB[kChunk][kMaxN];
  __shared__ float sC[kChunk][kMaxN];
  __shared__ float sU[kChunk][kChannels];
  __shared__ float sD[kChunk][kChannels];  // dt' = softplus(dt + dt_bias)
  __shared__ float sG[kChunk][kChannels];  // silu(z), or 1 without z

  const int tid = threadIdx.x;
  const int c = tid / G, g = tid % G;  // channel within the block, lane within the channel
  const int N = static_cast<int>(p.N);
  const int64_t b = blockIdx.y;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kChannels;
  const int64_t e = e0 + c;
  const bool active = e < p.E;
  const int64_t slot = p.slots ? static_cast<int64_t>(p.slots[b]) : b;
  float* st = (p.state && active) ? p.state + slot * N * p.E + e : nullptr;

  // This thread's states n = k*G + g (k < kPer); n >= N are inactive (guards are uniform).
  float s[kPer], a2[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int n = k * G + g;
    a2[k] = (active && n < N) ? p.A[n * p.E + e] * kLog2e : 0.f;  // exp(x) = exp2(x log2 e)
    s[k] = (st && n < N) ? st[n * p.E] : 0.f;
  }
  const float Dv = (active && p.D) ? p.D[e] : 0.f;

  for (int64_t t0 = 0; t0 < p.T; t0 += kChunk) {
    const int nt = static_cast<int>(p.T - t0 < kChunk ? p.T - t0 : kChunk);
    const int64_t row0 = b * p.T + t0;
    __syncthreads();  // the previous chunk is no longer read
    // Loads go to registers in batches before any shared store: a generic pointer might alias
    // shared memory, so the compiler would not hoist a load above an earlier shared store.
    const int nbc = nt * N;
#pragma unroll 1
    for (int i0 = tid; i0 < nbc; i0 += 4 * C::kBlock) {
      float rb[4], rc[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int i = i0 + j * C::kBlock, tt = i / N, n = i - tt * N;
        rb[j] = i < nbc ? p.Bm[(row0 + tt) * p.ldbc + n] : 0.f;
        rc[j] = i < nbc ? p.Cm[(row0 + tt) * p.ldbc + n] : 0.f;
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int i = i0 + j * C::kBlock, tt = i / N, n = i - tt * N;
        if (i < nbc) {
          sB[tt][n] = rb[j];
          sC[tt][n] = rc[j];
        }
      }
    }
    constexpr int kIter = kChunk * kChannels / C::kBlock;  // u/dt/z elements per thread
    constexpr int kBatch = kIter < 8 ? kIter : 8;
    static_assert(kIter % kBatch == 0 && kChunk * kChannels % C::kBlock == 0, "staging split");
#pragma unroll 1
    for (int j0 = 0; j0 < kIter; j0 += kBatch) {
      float ru[kBatch], rd[kBatch], rz[kBatch];
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const int i = tid + (j0 + j) * C::kBlock, tt = i / kChannels;
        const int64_t r = row0 + tt, ec = e0 + i % kChannels;
        const bool ok = tt < nt && ec < p.E;
        ru[j] = ok ? p.u[r * p.ldu + ec] : 0.f;
        rd[j] = ok ? p.dt[r * p.lddt + ec] + (p.dt_bias ? p.dt_bias[ec] : 0.f) : 0.f;
        rz[j] = (ok && p.z) ? p.z[r * p.ldz + ec] : 0.f;
      }
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const int i = tid + (j0 + j) * C::kBlock, tt = i / kChannels, cc = i % kChannels;
        const bool ok = tt < nt && e0 + cc < p.E;
        sU[tt][cc] = ru[j];
        sD[tt][cc] = ok ? softplus_d(rd[j]) : 0.f;  // dt' = 0 keeps padding lanes' states at 0
        sG[tt][cc] = p.z ? silu_d(rz[j]) : 1.f;
      }
    }
    __syncthreads();
    for (int tt = 0; tt < nt; ++tt) {
      const float uv = sU[tt][c], dv = sD[tt][c], du = dv * uv;
      const float* sb = sB[tt];
      const float* sc = sC[tt];
      float yv = 0.f;
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int n = k * G + g;
        if (n < N) {
          s[k] = exp2f(dv * a2[k]) * s[k] + du * sb[n];
          yv += sc[n] * s[k];
        }
      }
#pragma unroll
      for (int off = G / 2; off > 0; off /= 2) yv += __shfl_xor_sync(0xffffffffu, yv, off);
      if (active && g == 0) p.y[(row0 + tt) * p.ldy + e] = (yv + Dv * uv) * sG[tt][c];
    }
  }

  if (st) {
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int n = k * G + g;
      if (n < N) st[n * p.E] = s[k];
    }
  }
}

template <int kMaxN>
Status launch(const ScanParams& p, int64_t B, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((p.E + kChannels - 1) / kChannels),
                  static_cast<unsigned>(B));
  launch_kernel("scan_kernel", scan_kernel<kMaxN>, grid, Cfg<kMaxN>::kBlock, 0, s, p);
  return check_launch("selective_scan");
}

}  // namespace

Status selective_scan(const ScanArgs& a, void* stream) {
  const auto bad = [](const std::string& m) { return make_error(Code::ARG, "selective_scan: " + m); };
  const int64_t B = a.B, T = a.T, E = a.E, N = a.N;
  MK_RETURN_IF_ERROR(scan_can_run(N, B));
  if (B < 0 || T < 0 || E < 0) return bad("negative size");
  if ((E + kChannels - 1) / kChannels > 0x7fffffff) return bad("too many channels");
  if (a.ldu < E || a.lddt < E || a.ldy < E || (a.z && a.ldz < E) || a.ldbc < N)
    return bad("row stride smaller than the row width");
  if (B == 0 || T == 0 || E == 0) return Status::Ok();  // nothing to scan; state unchanged
  if (!a.u || !a.dt || !a.A || !a.Bm || !a.Cm || !a.y) return bad("null pointer");
  const ScanParams& p = a;
  auto s = static_cast<cudaStream_t>(stream);
  if (N <= 16) return launch<16>(p, B, s);
  if (N <= 32) return launch<32>(p, B, s);
  if (N <= 64) return launch<64>(p, B, s);
  if (N <= 128) return launch<128>(p, B, s);
  return launch<256>(p, B, s);
}

}  // namespace mk::cuda
