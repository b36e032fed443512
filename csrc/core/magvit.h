// MAGVIT-v2 (the image tokenizer of Show-o / MMaDA, Gen-Verse/MMaDA models/modeling_magvitv2.py and
// models/common_modules.py) kernel arguments and limits, shared by the CPU and CUDA kernels, the op
// table and the magvitv2 plans. Every image is NHWC f32: pixel p = (b·H + i)·W + j holds C values.
//
//  - conv2d: any kernel size, stride and (asymmetric) zero padding, weights HWIO [KH, KW, Ci, Co]
//    (torch's OIHW repacked at load, the output channel innermost), optional bias [Co] and an
//    optional residual of y's shape added in the same pass (ResnetBlock's `x + h`);
//  - group_norm: torch.nn.GroupNorm over (H, W, C/G) per image and group, biased variance, affine,
//    optionally followed by SiLU (the `nonlinearity` every Normalize of the ResnetBlock feeds);
//  - upsample2x: torch.nn.functional.interpolate(scale_factor=2, mode="nearest");
//  - spatial_attn: AttnBlock's single-head attention over the H·W positions with head dim C;
//  - LFQ (LFQuantizer): code = Σ_d [z_d > 0] · 2^(D-1-d) (channel 0 is the most significant bit,
//    power_vals = 2 ** arange(D-1, -1, -1)); the codebook vector of a code is bit (D-1-d) mapped to
//    ±1 (embedding = binary * 2 - 1, binary = (index >> arange(D-1, -1, -1)) & 1).
#pragma once
#include <cstdint>
#include <string>

#include "core/status.h"

namespace mk {

struct Conv2dArgs {
  const float* x;         // [B, H, W, Ci]
  const float* w;         // [KH, KW, Ci, Co]
  const float* bias;      // [Co] or null
  const float* residual;  // [B, Ho, Wo, Co] or null; may alias y (each element is read before it is written)
  float* y;               // [B, Ho, Wo, Co]
  int64_t B, H, W, Ci, Co, KH, KW, stride, pad_top, pad_left, Ho, Wo;
};

// Output size along one axis for padding pad_lo + pad_hi: floor((n + pad_lo + pad_hi - k) / stride) + 1.
inline int64_t conv_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi) {
  return (n + pad_lo + pad_hi - k) / stride + 1;
}

constexpr int64_t kConvMaxKernel = 15;  // the CPU kernel lists a pixel's taps on the stack (≤ 15·15)
constexpr int64_t kLfqMaxBits = 30;     // codes are int32 (MAGVIT-v2 uses 13 bits)

inline Status conv2d_can_run(const Conv2dArgs& a) {
  const std::string op = "conv2d: ";
  if (a.B < 0 || a.H < 1 || a.W < 1 || a.Ci < 1 || a.Co < 1)
    return make_error(Code::ARG, op + "sizes must be positive (B " + std::to_string(a.B) + ", H " + std::to_string(a.H) +
                                     ", W " + std::to_string(a.W) + ", Ci " + std::to_string(a.Ci) + ", Co " + std::to_string(a.Co) + ")");
  if (a.KH < 1 || a.KW < 1 || a.KH > kConvMaxKernel || a.KW > kConvMaxKernel)
    return make_error(Code::ARG, op + "kernel " + std::to_string(a.KH) + "x" + std::to_string(a.KW) + " not in [1, 15]");
  if (a.stride < 1 || a.pad_top < 0 || a.pad_left < 0 || a.pad_top >= a.KH || a.pad_left >= a.KW)
    return make_error(Code::ARG, op + "stride must be >= 1 and padding in [0, kernel)");
  if (a.Ho < 1 || a.Wo < 1) return make_error(Code::ARG, op + "empty output");
  // every output's last tap row/column may lie at most KH-1 / KW-1 beyond the input (bottom/right padding < kernel)
  if ((a.Ho - 1) * a.stride - a.pad_top > a.H - 1 || (a.Wo - 1) * a.stride - a.pad_left > a.W - 1)
    return make_error(Code::ARG, op + "output " + std::to_string(a.Ho) + "x" + std::to_string(a.Wo) + " reads beyond the padded input");
  return Status::Ok();
}

inline Status group_norm_can_run(int64_t B, int64_t P, int64_t C, int64_t G) {
  if (B < 0 || P < 1 || C < 1 || G < 1 || C % G != 0)
    return make_error(Code::ARG, "group_norm: " + std::to_string(C) + " channels are not a multiple of " + std::to_string(G) +
                                     " groups (or an empty image)");
  return Status::Ok();
}

inline Status lfq_can_run(int64_t D) {
  if (D < 1 || D > kLfqMaxBits)
    return make_error(Code::ARG, "lfq: " + std::to_string(D) + " bits not in [1, " + std::to_string(kLfqMaxBits) + "]");
  return Status::Ok();
}

// Floats of spatial_attn's scratch: the scores [B, P, P] (CUDA) or K transposed [B, C, P] (CPU).
inline int64_t spatial_attn_scratch(int64_t B, int64_t P, int64_t C) { return B * P * (P > C ? P : C); }

}  // namespace mk
