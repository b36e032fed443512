// Dense Mamba-1 (FORMATS.md §1) as a native plan: one call runs embedding → L blocks → norm → logits
// with no crossing back to JS between ops.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace mk {

struct MambaDims {
  int64_t D = 0, L = 0, V = 0, N = 0, E = 0, K = 0, R = 0;
  float eps = 1e-5f;
};

struct MambaLayer {
  Tensor norm;          // [D] f32
  Tensor in_proj;       // [2E, D] weight dtype
  Tensor in_proj_bias;  // [2E] f32 or empty
  Tensor conv_w;        // [E, K] f32 (HF stores [E, 1, K]: the same bytes)
  Tensor conv_b;        // [E] f32 or empty
  Tensor x_proj;        // [R + 2N, E]
  Tensor dt_proj;       // [E, R]
  Tensor dt_bias;       // [E] f32
  Tensor A;             // [N, E] f32: -exp(A_log), transposed at load
  Tensor Dskip;         // [E] f32
  Tensor out_proj;      // [D, E]
  Tensor out_proj_bias; // [D] f32 or empty
};

// Captured CUDA graphs of the decode step, one per (batch, state) (defined in mamba.cc).
struct DecodeGraph;
struct DecodeGraphCache {
  std::vector<std::shared_ptr<DecodeGraph>> entries;  // most recently used last
};

struct MambaModel {
  MambaDims d;
  Device dev;
  Tensor embedding;  // [V, D]
  Tensor norm_f;     // [D] f32
  Tensor lm_head;    // [V, D] (the embedding when tied)
  std::vector<MambaLayer> layers;
  std::shared_ptr<DecodeGraphCache> graphs = std::make_shared<DecodeGraphCache>();
};

// Recurrent state for S sequence slots: conv windows [L, S, K-1, E] and SSM states [L, S, N, E], f32.
struct MambaState {
  Tensor conv, ssm;
};

// Checks every weight's dtype, shape and device against the dims (E_SHAPE / E_DTYPE / E_DEVICE).
Status mamba_validate(const MambaModel& m);
// Checks a state against the model (E_SHAPE "state from another model") and returns its slot count.
Status mamba_validate_state(const MambaModel& m, const MambaState& s, int64_t* slots);

// tokens: i32 [B, T] on the model's device. state: null (zero history, nothing kept) or a state whose
// slots hold the sequences (slot_ids i32 [B] on the device, or null for slot b = row b).
// decode: T must be 1; uses the rolling conv update. Output: logits [B, T, V] (all positions) or
// [B, V] (last position only). On CUDA a decode step is captured once per (batch, state, slots?)
// into a CUDA graph and replayed (MAMBAKIT_CUDA_GRAPHS=0 turns that off); token ids are then not
// range-checked on the device, so callers check them first (lib/ does).
Status mamba_forward(const MambaModel& m, const Tensor& tokens, MambaState* state, const Tensor* slot_ids,
                     bool last_only, bool decode, Tensor* logits);

}  // namespace mk
