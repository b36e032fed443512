// The Mamba family as native plans: one call runs embedding → L blocks → norm → logits with no
// crossing back to JS between ops. One plan serves three checkpoint types (FORMATS.md §1–3):
//  - dense Mamba-1: every block a Mamba block;
//  - MoE-Mamba: blocks of kind MOE (router → top-k → grouped expert FFNs → weighted combine);
//  - Mixture-of-Mamba: Mamba blocks whose projections are stacked [M, out, in], one weight per
//    modality, applied with the grouped GEMM to rows bucketed by the token's modality id.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace mk {

struct MambaDims {
  int64_t D = 0, L = 0, V = 0, N = 0, E = 0, K = 0, R = 0;
  float eps = 1e-5f;
  int64_t M = 1;        // modalities (Mixture-of-Mamba); 1 otherwise
  int64_t Ne = 0;       // experts per MoE block (0: no MoE blocks)
  int64_t topk = 0;     // experts per token
  int64_t F = 0;        // expert intermediate size
  int act = 0;          // expert activation: Act (relu/gelu/silu), or kSwiGLU
  bool renorm = false;  // divide the k gate weights by their sum
};
constexpr int kSwiGLU = 100;

enum class BlockKind : int { MAMBA = 0, MOE = 1 };

// A projection may be stacked per modality ([M, out, in], bias [M, out]); then row t uses W[m_t].
struct MambaLayer {
  BlockKind kind = BlockKind::MAMBA;
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
  // MoE blocks only
  Tensor router;        // [Ne, D] f32 (kept f32 in every dtype: routing decisions must not flip)
  Tensor w_in;          // [Ne, F, D] ([Ne, 2F, D] for SwiGLU: gate rows, then up rows)
  Tensor w_out;         // [Ne, D, F]
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
  int64_t state_layers = 0;  // Mamba blocks: the state holds one conv window + SSM state each
  int64_t moe_layers = 0;
  bool per_modality = false;  // some projection is stacked per modality (set by mamba_validate)
  // i32 [moe_layers, Ne]: tokens routed to each expert, accumulated over every call (monitoring)
  Tensor expert_counts;
  std::shared_ptr<DecodeGraphCache> graphs = std::make_shared<DecodeGraphCache>();
};

// Recurrent state for S sequence slots: conv windows [Lm, S, K-1, E] and SSM states [Lm, S, N, E], f32,
// for the Lm Mamba blocks (MoE blocks keep no state).
struct MambaState {
  Tensor conv, ssm;
};

// Checks every weight's dtype, shape and device against the dims (E_SHAPE / E_DTYPE / E_DEVICE) and
// counts the state and MoE layers.
Status mamba_validate(MambaModel& m);
// Checks a state against the model (E_SHAPE "state from another model") and returns its slot count.
Status mamba_validate_state(const MambaModel& m, const MambaState& s, int64_t* slots);

// tokens: i32 [B, T] on the model's device, or input embeddings f32 [B, T, D] (continuous inputs such as
// image latents; never captured into a CUDA graph). modality: i32 [B, T] ids in [0, M) (required
// when a projection is per modality, else ignored). state: null (zero history, nothing kept) or a state whose
// slots hold the sequences (slot_ids i32 [B] on the device, or null for slot b = row b).
// decode: T must be 1; uses the rolling conv update. Output: logits [B, T, V] (all positions) or
// [B, V] (last position only). On CUDA a decode step is captured once per (batch, state, slots?)
// into a CUDA graph and replayed (MAMBAKIT_CUDA_GRAPHS=0 turns that off); token ids are then not
// range-checked on the device, so callers check them first (lib/ does).
Status mamba_forward(const MambaModel& m, const Tensor& tokens, const Tensor* modality, MambaState* state,
                     const Tensor* slot_ids, bool last_only, bool decode, Tensor* logits);

}  // namespace mk
