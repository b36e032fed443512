// Launchers of the Mamba-1 kernels on CUDA: the same functions as cpu/ssm.h on device pointers, plus
// the device's stream (a cudaStream_t passed as void*). Plain C++ declarations, so the op table
// can include this header. Each validates its sizes (E_ARG) and returns the launch status.
//
// Layouts: token-major rows r = b*T + t at base + r*ld; A is -exp(A_log) transposed to [N, E];
// SSM state [slot, N, E]; conv window state [slot, K-1, E] (oldest first); slots: int32 [B] batch
// row -> state slot, or null for slot = b. Slots must be distinct and in range: the kernels cannot
// check them (they do not know the slot count).
#pragma once
#include <cstdint>

#include "core/status.h"

namespace mk::cuda {

// conv1d.cu — out[t, e] = act(bias[e] + sum_j w[e, j] x[t-(K-1)+j, e]), K in [1, 8]; positions
// before t = 0 come from conv_state (zeros when null), and the last K-1 inputs are written back
// (unless null). bias may be null; out may alias xin (same ld).
Status causal_conv1d(const float* xin, int64_t ldx, const float* w, const float* bias,
                     float* conv_state, const int32_t* slots, float* out, int64_t ldo, int64_t B,
                     int64_t T, int64_t E, int64_t K, bool silu, void* stream);

// One token per sequence (xin [B, E]); rolls conv_state in place.
Status conv1d_update(const float* xin, int64_t ldx, const float* w, const float* bias,
                     float* conv_state, const int32_t* slots, float* out, int64_t ldo, int64_t B,
                     int64_t E, int64_t K, bool silu, void* stream);

// scan.cu — selective scan, N in [1, 256]; see cpu/ssm.h for the math. state [slots, N, E] in/out
// (null: zero initial state, final not written). dt_bias, D, z may be null; y may alias u or z.
Status selective_scan(const float* u, int64_t ldu, const float* dt, int64_t lddt,
                      const float* dt_bias, const float* A, const float* Bm, const float* Cm,
                      int64_t ldbc, const float* D, const float* z, int64_t ldz, float* y,
                      int64_t ldy, float* state, const int32_t* slots, int64_t B, int64_t T,
                      int64_t E, int64_t N, void* stream);

}  // namespace mk::cuda
