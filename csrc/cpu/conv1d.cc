// Causal depthwise conv1d (+ SiLU) driver and its portable path. Work items are (16-channel block,
// group of batch rows); each row slides over all T tokens with the K-1 previous inputs in a local
// window, so every input is read once and the final window is what is left in it at the end.
#include <algorithm>

#include "core/threadpool.h"
#include "cpu/kernels.h"
#include "cpu/ssm.h"

namespace mk::cpu {
namespace detail {
namespace {

constexpr int64_t BW = kSsmBlock;

// Fixed-width inner loops over the block's channels (padded to BW with zero weights) so the
// compiler vectorizes them with the baseline SSE2 instructions.
void conv_row_scalar(const ConvArgs& a, int64_t b, int64_t e0, int64_t ne,
                     const float (&wt)[kConvMaxK][BW], const float (&bias)[BW]) {
  const int64_t K = a.K, E = a.E, W = K - 1;
  float win[kConvMaxK][BW] = {};  // win[W] holds the current input
  const int64_t slot = a.slots ? a.slots[b] : b;
  float* st = a.state ? a.state + slot * W * E + e0 : nullptr;
  if (st)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < ne; ++c) win[j][c] = st[j * E + c];
  for (int64_t t = 0; t < a.T; ++t) {
    const int64_t r = b * a.T + t;
    const float* xr = a.x + r * a.ldx + e0;
    float* orow = a.out + r * a.ldo + e0;
    for (int64_t c = 0; c < ne; ++c) win[W][c] = xr[c];  // read before out is written (aliasing)
    float acc[BW];
    for (int64_t c = 0; c < BW; ++c) acc[c] = bias[c];
    for (int64_t j = 0; j <= W; ++j)
      for (int64_t c = 0; c < BW; ++c) acc[c] += wt[j][c] * win[j][c];
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < BW; ++c) win[j][c] = win[j + 1][c];
    if (a.silu)
      for (int64_t c = 0; c < ne; ++c) orow[c] = silu_f(acc[c]);
    else
      for (int64_t c = 0; c < ne; ++c) orow[c] = acc[c];
  }
  if (st)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < ne; ++c) st[j * E + c] = win[j][c];
}

void conv_block_scalar(const ConvArgs& a, int64_t rb0, int64_t rb1, int64_t e0, int64_t ne) {
  const int64_t K = a.K;
  float wt[kConvMaxK][BW] = {}, bias[BW] = {};
  for (int64_t c = 0; c < ne; ++c) {
    for (int64_t j = 0; j < K; ++j) wt[j][c] = a.w[(e0 + c) * K + j];
    bias[c] = a.bias ? a.bias[e0 + c] : 0.f;
  }
  for (int64_t b = rb0; b < rb1; ++b) conv_row_scalar(a, b, e0, ne, wt, bias);
}

}  // namespace
}  // namespace detail

void causal_conv1d(const ConvArgs& a) {
  using namespace detail;
  const int64_t B = a.B, T = a.T, E = a.E, K = a.K;
  if (B <= 0 || T <= 0 || E <= 0 || K < 1 || K > kConvMaxK) return;
  const int64_t nblk = (E + kSsmBlock - 1) / kSsmBlock;
  // Batch rows are grouped only as far as the channel blocks alone leave threads idle, so the
  // weights of a block are set up once per group rather than once per row.
  const int64_t want = 4 * static_cast<int64_t>(num_threads());
  const int64_t ngroups = std::min(B, std::max<int64_t>(1, (want + nblk - 1) / nblk));
  const int64_t rows_per = (B + ngroups - 1) / ngroups;
  const int64_t per_item = rows_per * T * kSsmBlock * (K + 8);  // silu counted as ~8 flops
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const bool avx2 = ssm_use_avx2();
  parallel_for(nblk * ngroups, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i / nblk, e0 = (i % nblk) * kSsmBlock;
      const int64_t ne = std::min(kSsmBlock, E - e0);
      const int64_t rb0 = g * rows_per, rb1 = std::min(B, rb0 + rows_per);
      if (rb0 >= rb1) continue;
      if (avx2)
        conv_block_avx2(a, rb0, rb1, e0, ne);
      else
        conv_block_scalar(a, rb0, rb1, e0, ne);
    }
  });
}


}  // namespace mk::cpu
