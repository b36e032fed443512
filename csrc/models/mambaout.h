// MambaOut (FORMATS.md §4, timm's mambaout.py) as a native plan: one call runs stem → 4 stages of
// gated CNN blocks → head on NHWC activations with no crossing back to JS between ops.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace mk {

struct ConvS2 {  // 3x3, stride 2, padding 1
  Tensor w;      // [3, 3, Ci, Co] f32 (timm's [Co, Ci, 3, 3] repacked at load)
  Tensor b;      // [Co] f32
};

struct LayerNormW {
  Tensor w, b;  // [C] f32 each
};

struct GatedBlock {
  LayerNormW norm;       // [C]
  Tensor fc1, fc1_b;     // [2h, C] weight dtype, [2h] f32; h = int(8/3 · C)
  Tensor conv_w, conv_b; // [7, 7, C] f32 (timm's [C, 1, 7, 7] repacked), [C] f32
  Tensor fc2, fc2_b;     // [C, h], [C]
};

struct MambaOutStage {
  ConvS2 down;           // absent in stage 0 (the stem already reduced by 4)
  LayerNormW down_norm;
  std::vector<GatedBlock> blocks;
};

struct MambaOutModel {
  std::vector<int64_t> dims, depths;  // per stage
  int64_t classes = 0;
  float eps = 1e-6f;
  Device dev;
  ConvS2 stem1, stem2;             // 3 → C0/2 → C0
  LayerNormW stem_norm1, stem_norm2;
  std::vector<MambaOutStage> stages;
  LayerNormW head_norm;            // [C3], after the mean pool
  Tensor head_fc1, head_fc1_b;     // [4·C3, C3]
  LayerNormW head_norm2;           // [4·C3]
  Tensor head_fc2, head_fc2_b;     // [classes, 4·C3]
};

// h of a block with C channels, exactly as timm computes int(8 / 3 * C) in double precision.
inline int64_t gated_hidden(int64_t C) { return static_cast<int64_t>((8.0 / 3.0) * static_cast<double>(C)); }

// Checks every weight's dtype, shape and device against dims/depths (E_ARG / E_SHAPE / E_DTYPE / E_DEVICE).
Status mambaout_validate(const MambaOutModel& m);
Status gated_block_validate(const GatedBlock& b, int64_t C, Device dev, const std::string& where);

// pixels f32 [B, H, W, 3] (normalized) on the model's device → logits f32 [B, classes].
Status mambaout_forward(const MambaOutModel& m, const Tensor& pixels, Tensor* logits);
// One gated CNN block on x f32 [B, H, W, C] → y [B, H, W, C] (tests and benchmarks).
Status gated_block_forward(const GatedBlock& b, int64_t C, float eps, const Tensor& x, Tensor* y);

}  // namespace mk
