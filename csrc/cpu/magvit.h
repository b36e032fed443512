// CPU kernels of the MAGVIT-v2 image tokenizer (NHWC f32; definitions in core/magvit.h): the same
// functions as cuda/magvit.cuh. Sizes are checked by the callers (core/magvit.h's can_run).
#pragma once
#include <cstdint>

#include "core/magvit.h"

namespace mk::cpu {

// y = conv(x, w) (+ bias) (+ residual), zero padding (Conv2dArgs).
void conv2d(const Conv2dArgs& a);

// y[b, p, c] = (x - mean_bg) / sqrt(var_bg + eps) · gamma[c] + beta[c], then SiLU when `silu`; the
// statistics over the P pixels and the C/G channels of group g = c / (C/G) of image b (biased
// variance, accumulated in double). x [B, P, C]; y may alias x.
void group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                int64_t G, float eps, bool silu);

// y [B, 2H, 2W, C]: y[b, i, j] = x[b, i/2, j/2].
void upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C);

// o[b, i, :] = Σ_j softmax_j(scale · q[b, i]·k[b, j]) v[b, j, :] over the P positions of image b:
// q, k, v rows at stride ld (b·P + i), o rows at ldo; scratch: spatial_attn_scratch(B, P, C) floats.
void spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                  int64_t B, int64_t P, int64_t C, float scale);

// codes[r] = Σ_d [z[r, d] > 0] · 2^(D-1-d) for r < rows (z rows at stride ldz); codes_f (optional)
// gets the same values as floats.
void lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f);
// z[r, d] = bit (D-1-d) of codes[r] ? +1 : -1. Returns the index of the first code outside
// [0, 2^D) (its row is zero-filled), or -1.
int64_t lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z);

}  // namespace mk::cpu
