// Block kinds of MAGVIT-v2 (Show-o's image tokenizer as MMaDA ships it: Gen-Verse/MMaDA
// models/modeling_magvitv2.py, models/common_modules.py) over an NHWC image stream:
//  - Conv: [GroupNorm → SiLU] or [nearest 2× upsample], then a k×k conv (any stride and padding):
//    conv_in, Downsample (3×3/2 with the reference's (0, 1, 0, 1) pad), Upsample's conv, and the
//    norm_out → nonlinearity → conv_out ends;
//  - Resnet: x' + conv2(silu(gn2(conv1(silu(gn1(x)))))), x' = x or nin_shortcut(x) (1×1);
//  - Attn: x + proj_out(attention(q(n), k(n), v(n))), n = gn(x), one head of dim C over H·W;
//  - Pointwise: a 1×1 conv (quant_conv, post_quant_conv) as a GEMM;
// with PixelInput (pixels) or CodeInput (LFQ codes → ±1 latents) as the embed and LfqHead (codes) or
// GridOutput (the stream: latents, pixels) as the head.
#pragma once
#include <cstdint>
#include <vector>

#include "core/magvit.h"
#include "plan/plan.h"

namespace mk {

struct GroupNormW {
  Tensor w, b;  // [C] f32 each
  int64_t groups = 32;
  float eps = 1e-6f;
};

struct ConvW {  // k×k conv, weights [KH, KW, Ci, Co] (torch's OIHW repacked at load), bias [Co]
  Tensor w, b;
  int64_t stride = 1, pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t ci() const { return w.dim(2); }
  int64_t co() const { return w.dim(3); }
};

struct LinearW {  // a 1×1 conv: weight [Co, Ci] (torch's [Co, Ci, 1, 1]), bias [Co]
  Tensor w, b;
};

// pixels f32 [B, H, W, 3] with H, W multiples of `factor` (the encoder's downsampling).
class PixelInput final : public Embed {
 public:
  PixelInput(int64_t factor, Device dev) : factor_(factor), dev_(dev) {}
  Status check(const CallInputs& in, Geometry* g) const override;
  Status run(RunCtx& c, Residual& r) const override;

 private:
  int64_t factor_;
  Device dev_;
};

// codes i32 [B, h, w] in [0, 2^bits) → the stream [B, h, w, bits] of LFQ codebook vectors (±1).
class CodeInput final : public Embed {
 public:
  CodeInput(int64_t bits, Device dev) : bits_(bits), dev_(dev) {}
  Status check(const CallInputs& in, Geometry* g) const override;
  Status run(RunCtx& c, Residual& r) const override;

 private:
  int64_t bits_;
  Device dev_;
};

class Conv final : public Block {
 public:
  // norm: GroupNorm + SiLU first (norm.w empty: none); upsample: nearest 2× first.
  Conv(const char* kind, GroupNormW norm, bool upsample, ConvW conv)
      : kind_(kind), norm_(std::move(norm)), upsample_(upsample), conv_(std::move(conv)) {}
  const char* kind() const override { return kind_; }
  Geometry output(const Geometry& in) const override;
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g); }
  Status run(RunCtx& c, Residual& r) const override;

 private:
  struct Bufs { float *in, *up; };
  Bufs bufs(Arena& a, const Geometry& g) const;
  const char* kind_;
  GroupNormW norm_;
  bool upsample_;
  ConvW conv_;
};

class Resnet final : public Block {
 public:
  Resnet(GroupNormW n1, ConvW c1, GroupNormW n2, ConvW c2, LinearW shortcut)
      : n1_(std::move(n1)), c1_(std::move(c1)), n2_(std::move(n2)), c2_(std::move(c2)), sc_(std::move(shortcut)) {}
  const char* kind() const override { return "resnet"; }
  Geometry output(const Geometry& in) const override { return {in.B, in.H, in.W, c2_.co()}; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g); }
  Status run(RunCtx& c, Residual& r) const override;

 private:
  struct Bufs { float *t1, *t2; };
  Bufs bufs(Arena& a, const Geometry& g) const;
  GroupNormW n1_;
  ConvW c1_;
  GroupNormW n2_;
  ConvW c2_;
  LinearW sc_;  // empty when Ci == Co
};

class Attn final : public Block {
 public:
  Attn(GroupNormW norm, LinearW q, LinearW k, LinearW v, LinearW proj)
      : norm_(std::move(norm)), q_(std::move(q)), k_(std::move(k)), v_(std::move(v)), proj_(std::move(proj)) {}
  const char* kind() const override { return "attn"; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g); }
  Status run(RunCtx& c, Residual& r) const override;

 private:
  struct Bufs { float *h, *qkv, *o, *s; };
  Bufs bufs(Arena& a, const Geometry& g) const;
  GroupNormW norm_;
  LinearW q_, k_, v_, proj_;
};

class Pointwise final : public Block {
 public:
  Pointwise(const char* kind, LinearW w) : kind_(kind), w_(std::move(w)) {}
  const char* kind() const override { return kind_; }
  Geometry output(const Geometry& in) const override { return {in.B, in.H, in.W, w_.w.dim(0)}; }
  void scratch(Arena&, const Geometry&) const override {}
  Status run(RunCtx& c, Residual& r) const override;

 private:
  const char* kind_;
  LinearW w_;
};

// A head over the image stream (no scratch of its own).
class GridHead : public Head {
 public:
  void scratch(Arena&, const Geometry&) const override {}
};

// The stream [B, h, w, D] → LFQ codes [B, h·w], written as f32 (a plan's output is f32; codes
// < 2^24 are exact; the TypeScript class returns them as Int32Array).
class LfqHead final : public GridHead {
 public:
  Shape output_shape(const Geometry& g, const CallInputs&) const override;
  Status run(RunCtx& c, Residual& r, float* out) const override;
};

// The stream as it is, [B, H, W, C] (latents, pixels).
class GridOutput final : public GridHead {
 public:
  Shape output_shape(const Geometry& g, const CallInputs&) const override;
  Status run(RunCtx& c, Residual& r, float* out) const override;
};

}  // namespace mk
