// The Mamba-1 kernel family's arguments and limits, shared by the CPU and CUDA kernels, the op table
// and the model plans: the one place the selective scan's and the causal conv's signatures and
// limits are written.
//
// Layouts (the model plans depend on them):
//  - token-major activations: row r = b*T + t at base + r*ld (ld >= width, in elements);
//  - Bm/Cm rows use ldbc (slices of x_proj's [dt_rank | B | C] row);
//  - A is -exp(A_log), transposed to [N, E];
//  - SSM state [slot, N, E]; conv window state [slot, K-1, E] (oldest first);
//  - slots: int32 [B] batch row -> state slot (distinct, in range: the kernels cannot check them),
//    or null for slot = b.
#pragma once
#include <cstdint>
#include <string>

#include "core/status.h"

namespace mk {

constexpr int64_t kSsmMaxN = 256;  // state size: registers / stack per channel block
constexpr int64_t kConvMaxK = 8;   // conv width: the window lives in registers
constexpr int64_t kSsmMaxBatch = 65535;  // CUDA grid.y

// Selective scan (prefill, and decode with T = 1):
//   dt' = softplus(dt + dt_bias);  s[n] = exp(dt' A[n]) s[n] + dt' B[n] u;
//   y = (sum_n C[n] s[n] + D u) * (z ? silu(z) : 1).
// state [slots, N, E] in/out (null: zero initial state, final not written); with state and T = 1
// it is updated where it lives. dt_bias, D, z may be null. y may alias u or z (same ld).
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

// Causal depthwise conv1d (+ SiLU): out[t, e] = act(bias[e] + sum_j w[e, j] * x[t-(K-1)+j, e]);
// positions before t = 0 come from state (zeros when null) and the last K-1 inputs are written
// back (unless null). Decode is T = 1 (the window rolls in place). bias may be null; out may alias
// x (same ld).
struct ConvArgs {
  const float* x; int64_t ldx;
  const float* w; const float* bias;
  float* state;
  const int32_t* slots;
  float* out; int64_t ldo;
  int64_t B, T, E, K;
  bool silu;
};

// Whether the kernels of this family can run these sizes (both backends share the limits).
inline Status ssm_limit(const char* op, const char* what, int64_t v, int64_t hi, int64_t B) {
  if (v < 1 || v > hi)
    return make_error(Code::ARG, std::string(op) + ": " + what + "=" + std::to_string(v) + " not in [1, " + std::to_string(hi) + "]");
  if (B > kSsmMaxBatch) return make_error(Code::ARG, std::string(op) + ": batch B=" + std::to_string(B) + " > 65535");
  return Status::Ok();
}
inline Status scan_can_run(int64_t N, int64_t B) { return ssm_limit("selective_scan", "state size N", N, kSsmMaxN, B); }
inline Status conv_can_run(int64_t K, int64_t B) { return ssm_limit("causal_conv1d", "kernel width K", K, kConvMaxK, B); }

}  // namespace mk
