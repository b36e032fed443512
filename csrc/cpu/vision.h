// CPU kernels of the MambaOut vision backbone (NHWC, f32): the same functions as cuda/vision.cuh.
#pragma once
#include <cstdint>

#include "core/vision.h"  // conv_s2_out

namespace mk::cpu {

// y[b, i, j, o] = bias[o] + Σ_{ky, kx, c} x[b, 2i-1+ky, 2j-1+kx, c] · w[ky, kx, c, o], zero padding.
// x [B, H, W, Ci], w [3, 3, Ci, Co] (HWIO), bias [Co] or null, y [B, Ho, Wo, Co].
void conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
               int64_t Ci, int64_t Co);

// Depthwise 7x7, padding 3, on a channel slice: y[p, c] = bias[c] + Σ x[p + (ky-3, kx-3), c] · w[ky, kx, c]
// for pixels p of [B, H, W]; x and y are C-channel slices with pixel strides ldx / ldy (so the conv reads
// fc1's c slice and writes into the gate buffer in place). x and y must not overlap.
void dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
             int64_t H, int64_t W, int64_t C);

// y[r, j] = gelu(a[r, j]) · (b ? b[r, j] : 1) for r < rows, j < n, each matrix with its own row stride;
// y may alias a or b (each element is read before it is written).
void gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
               int64_t n);

// y[b, c] = mean over p of x[b, p, c]: x [B, P, C], y [B, C].
void mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C);

}  // namespace mk::cpu
