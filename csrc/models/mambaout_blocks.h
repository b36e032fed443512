// Block kinds of MambaOut (FORMATS.md §4, timm's mambaout.py) over an NHWC image stream:
//  - Stem: conv3×3/2 → LN → GELU → conv3×3/2 → LN                        [B, H/4, W/4, C0]
//  - GatedCnn: x + fc2(gelu(g) ⊙ [i, dwconv7(c)]),  g, i, c = split(fc1(LN(x)), [h, h − C, C])
//  - Downsample: conv3×3/2 → LN (between stages)
//  - PooledHead: mean over H, W → LN → fc (4·C) → GELU → LN → fc          [B, classes]
// with ImageInput (pixels, or any NHWC stream) as the embed and StreamOutput (the stream itself) as
// the head of a plan that runs blocks alone (tests, benchmarks) or stops at a feature stage (encoders).
#pragma once
#include <cstdint>

#include "plan/plan.h"

namespace mk {

struct ConvS2 {  // 3x3, stride 2, padding 1
  Tensor w;      // [3, 3, Ci, Co] f32 (timm's [Co, Ci, 3, 3] repacked at load)
  Tensor b;      // [Co] f32
};

struct LayerNormW {
  Tensor w, b;  // [C] f32 each
};

struct GatedBlockWeights {
  LayerNormW norm;        // [C]
  Tensor fc1, fc1_b;      // [2h, C] weight dtype, [2h] f32; h = int(8/3 · C)
  Tensor conv_w, conv_b;  // [7, 7, C] f32 (timm's [C, 1, 7, 7] repacked), [C] f32
  Tensor fc2, fc2_b;      // [C, h], [C]
};

// h of a block with C channels, exactly as timm computes int(8 / 3 * C) in double precision.
inline int64_t gated_hidden(int64_t C) { return static_cast<int64_t>((8.0 / 3.0) * static_cast<double>(C)); }

class ImageInput final : public Embed {
 public:
  ImageInput(std::string family, int64_t channels, Device dev) : family_(std::move(family)), C_(channels), dev_(dev) {}
  Status check(const CallInputs& in, Geometry* g) const override;
  Status run(RunCtx& c, Residual& r) const override;

 private:
  std::string family_;
  int64_t C_;
  Device dev_;
};

class Stem final : public Block {
 public:
  Stem(ConvS2 c1, LayerNormW n1, ConvS2 c2, LayerNormW n2, float eps)
      : c1_(std::move(c1)), n1_(std::move(n1)), c2_(std::move(c2)), n2_(std::move(n2)), eps_(eps) {}
  const char* kind() const override { return "stem"; }
  Geometry output(const Geometry& in) const override;
  void scratch(Arena& a, const Geometry& g) const override;
  Status run(RunCtx& c, Residual& r) const override;

 private:
  ConvS2 c1_;
  LayerNormW n1_;
  ConvS2 c2_;
  LayerNormW n2_;
  float eps_;
};

class GatedCnn final : public Block {
 public:
  GatedCnn(GatedBlockWeights w, int64_t C, float eps) : w_(std::move(w)), C_(C), eps_(eps) {}
  const char* kind() const override { return "gated_cnn"; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g.rows()); }
  Status run(RunCtx& c, Residual& r) const override;

 private:
  struct Bufs { float *t, *X, *U; };  // t [N, C], fc1 output X [N, 2h], gate output U [N, h]
  Bufs bufs(Arena& a, int64_t rows) const;
  GatedBlockWeights w_;
  int64_t C_;
  float eps_;
};

class Downsample final : public Block {
 public:
  Downsample(ConvS2 conv, LayerNormW norm, float eps) : conv_(std::move(conv)), norm_(std::move(norm)), eps_(eps) {}
  const char* kind() const override { return "downsample"; }
  Geometry output(const Geometry& in) const override;
  void scratch(Arena&, const Geometry&) const override {}
  Status run(RunCtx& c, Residual& r) const override;

 private:
  ConvS2 conv_;
  LayerNormW norm_;
  float eps_;
};

class PooledHead final : public Head {
 public:
  PooledHead(LayerNormW norm, Tensor fc1, Tensor fc1_b, LayerNormW norm2, Tensor fc2, Tensor fc2_b, float eps)
      : norm_(std::move(norm)), fc1_(std::move(fc1)), fc1_b_(std::move(fc1_b)), norm2_(std::move(norm2)),
        fc2_(std::move(fc2)), fc2_b_(std::move(fc2_b)), eps_(eps) {}
  Shape output_shape(const Geometry& g, const CallInputs&) const override { return {g.B, fc2_.dim(0)}; }
  void scratch(Arena& a, const Geometry& g) const override;
  Status run(RunCtx& c, Residual& r, float* out) const override;

 private:
  LayerNormW norm_;
  Tensor fc1_, fc1_b_;
  LayerNormW norm2_;
  Tensor fc2_, fc2_b_;
  float eps_;
};

// The stream as it is: [B, H, W, C], or as tokens [B, H·W, C] (an image encoder's feature map).
class StreamOutput final : public Head {
 public:
  explicit StreamOutput(bool tokens = false) : tokens_(tokens) {}
  Shape output_shape(const Geometry& g, const CallInputs&) const override {
    return tokens_ ? Shape{g.B, g.T(), g.C} : Shape{g.B, g.H, g.W, g.C};
  }
  void scratch(Arena&, const Geometry&) const override {}
  Status run(RunCtx& c, Residual& r, float* out) const override;

 private:
  bool tokens_;
};

}  // namespace mk
