// Selective scan driver and its portable path. Work is split over (batch row, 16-channel block)
// items; each item runs the whole time loop with its [N, 16] state block in a local array (L1),
// so the state is read and written once per call, not once per token.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/kernels.h"
#include "cpu/ssm.h"

namespace mk::cpu {
namespace detail {

bool ssm_use_avx2() { return use_avx2_kernels(); }

namespace {

constexpr int64_t BW = kSsmBlock;

// Portable path: plain f32 math with libm exp/log1p; loops over the block's channels innermost.
void scan_block_scalar(const ScanArgs& a, int64_t b, int64_t e0, int64_t ne) {
  const int64_t N = a.N, E = a.E;
  float S[kSsmMaxN * BW], Ab[kSsmMaxN * BW];
  float dtb[BW], Dv[BW];
  const int64_t slot = a.slots ? a.slots[b] : b;
  float* st = a.state ? a.state + slot * N * E + e0 : nullptr;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < ne; ++c) {
      Ab[n * BW + c] = a.A[n * E + e0 + c];
      S[n * BW + c] = st ? st[n * E + c] : 0.f;
    }
  for (int64_t c = 0; c < ne; ++c) {
    dtb[c] = a.dt_bias ? a.dt_bias[e0 + c] : 0.f;
    Dv[c] = a.D ? a.D[e0 + c] : 0.f;
  }
  for (int64_t t = 0; t < a.T; ++t) {
    const int64_t r = b * a.T + t;
    const float* ur = a.u + r * a.ldu + e0;
    const float* dr = a.dt + r * a.lddt + e0;
    const float* Br = a.Bm + r * a.ldbc;
    const float* Cr = a.Cm + r * a.ldbc;
    float uv[BW], dv[BW], du[BW], acc[BW];
    for (int64_t c = 0; c < ne; ++c) {
      uv[c] = ur[c];
      dv[c] = softplus_f(dr[c] + dtb[c]);
      du[c] = dv[c] * uv[c];
      acc[c] = 0.f;
    }
    for (int64_t n = 0; n < N; ++n) {
      const float bn = Br[n], cn = Cr[n];
      float* s = S + n * BW;
      const float* An = Ab + n * BW;
      for (int64_t c = 0; c < ne; ++c) {
        s[c] = std::exp(dv[c] * An[c]) * s[c] + du[c] * bn;
        acc[c] += cn * s[c];
      }
    }
    float* yr = a.y + r * a.ldy + e0;
    const float* zr = a.z ? a.z + r * a.ldz + e0 : nullptr;
    for (int64_t c = 0; c < ne; ++c) {
      float v = acc[c] + Dv[c] * uv[c];
      if (zr) v *= silu_f(zr[c]);
      yr[c] = v;
    }
  }
  if (st)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < ne; ++c) st[n * E + c] = S[n * BW + c];
}

}  // namespace
}  // namespace detail

void selective_scan(const ScanArgs& a) {
  using namespace detail;
  const int64_t B = a.B, T = a.T, E = a.E, N = a.N;
  if (B <= 0 || E <= 0 || N <= 0 || N > kSsmMaxN) return;
  if (T <= 0) return;  // nothing to scan: the state is unchanged
  const int64_t nblk = (E + kSsmBlock - 1) / kSsmBlock;
  // ~64K state updates per chunk at least, so small decode calls do not pay for thread wake-ups.
  const int64_t per_item = T * N * kSsmBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const bool avx2 = ssm_use_avx2();
  parallel_for(B * nblk, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nblk, e0 = (i % nblk) * kSsmBlock;
      const int64_t ne = std::min(kSsmBlock, E - e0);
      if (avx2)
        scan_block_avx2(a, b, e0, ne);
      else
        scan_block_scalar(a, b, e0, ne);
    }
  });
}

}  // namespace mk::cpu
