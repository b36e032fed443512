// Mamba-1 block kernels on the CPU (the same functions as cuda/ssm.cuh, on host pointers):
// causal depthwise conv1d (+ SiLU) and the selective scan. Called after the op layer validated
// the shapes (K in [1, 8], N in [1, 256]); nothing is checked here.
//
// Layouts (the model code depends on them):
//  - token-major activations: row r = b*T + t at base + r*ld (ld >= width, in elements);
//  - Bm/Cm rows use ldbc (slices of x_proj's [dt_rank | B | C] row);
//  - A is -exp(A_log), transposed to [N, E];
//  - SSM state [slot, N, E]; conv window state [slot, K-1, E] (oldest first);
//  - slots: int32 [B] batch row -> state slot (distinct), or null for slot = b.
#pragma once
#include <cstdint>

namespace mk::cpu {

// Prefill conv: out[t, e] = act(bias[e] + sum_j w[e, j] * x[t-(K-1)+j, e]); positions before t = 0
// come from conv_state (zeros when null). The last K-1 inputs are written back to conv_state
// (unless null). bias may be null. out may alias xin (same ld): each thread reads a token's input
// before it writes that token's output and keeps the window in registers.
void causal_conv1d(const float* xin, int64_t ldx, const float* w, const float* bias,
                   float* conv_state, const int32_t* slots, float* out, int64_t ldo, int64_t B,
                   int64_t T, int64_t E, int64_t K, bool silu);

// Decode conv: one token per sequence, xin [B, E] (ld ldx); rolls conv_state in place.
void conv1d_update(const float* xin, int64_t ldx, const float* w, const float* bias,
                   float* conv_state, const int32_t* slots, float* out, int64_t ldo, int64_t B,
                   int64_t E, int64_t K, bool silu);

// Selective scan (prefill, and decode with T = 1):
//   dt' = softplus(dt + dt_bias);  s[n] = exp(dt' A[n]) s[n] + dt' B[n] u;
//   y = (sum_n C[n] s[n] + D u) * (z ? silu(z) : 1).
// state [slots, N, E] in/out (null: zero initial state, final not written). dt_bias, D, z may be
// null. y may alias u or z (same ld).
void selective_scan(const float* u, int64_t ldu, const float* dt, int64_t lddt,
                    const float* dt_bias, const float* A, const float* Bm, const float* Cm,
                    int64_t ldbc, const float* D, const float* z, int64_t ldz, float* y,
                    int64_t ldy, float* state, const int32_t* slots, int64_t B, int64_t T,
                    int64_t E, int64_t N);

// ---- private to cpu/scan.cc, cpu/conv1d.cc, cpu/ssm_avx2.cc ----
namespace detail {

constexpr int64_t kSsmBlock = 16;  // channels per work item: one 64-byte cache line of a row
constexpr int64_t kSsmMaxN = 256;
constexpr int64_t kConvMaxK = 8;

struct ScanArgs {
  const float* u; int64_t ldu;
  const float* dt; int64_t lddt;
  const float* dt_bias;
  const float* A;
  const float* Bm; const float* Cm; int64_t ldbc;
  const float* D;
  const float* z; int64_t ldz;
  float* y; int64_t ldy;
  float* state;
  const int32_t* slots;
  int64_t B, T, E, N;
};

struct ConvArgs {
  const float* x; int64_t ldx;
  const float* w; const float* bias;
  float* state;
  const int32_t* slots;
  float* out; int64_t ldo;
  int64_t B, T, E, K;
  bool silu;
};

// True when the AVX2/FMA/F16C path is used (CPU support, and MAMBAKIT_FORCE_SCALAR != "1";
// read once).
bool ssm_use_avx2();

// One work item: channels [e0, e0 + ne) with 1 <= ne <= kSsmBlock, all T tokens, of batch row b
// (scan) or of batch rows [b0, b1) (conv, which loads its weights once for all of them).
void scan_block_avx2(const ScanArgs& a, int64_t b, int64_t e0, int64_t ne);
void conv_block_avx2(const ConvArgs& a, int64_t b0, int64_t b1, int64_t e0, int64_t ne);

}  // namespace detail
}  // namespace mk::cpu
