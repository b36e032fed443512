// Block kinds of the Mamba family (FORMATS.md §1–3), pre-norm residual blocks over a token stream
// [B·T, D]: each adds its output to the stream lazily (Residual::pending), so the next block's
// RMSNorm adds it in the same pass.
//  - MambaMixer: RMSNorm → in_proj → causal conv1d + SiLU → x_proj → dt_proj → selective scan →
//    out_proj; any projection may be stacked per modality ([M, out, in], Mixture-of-Mamba), then
//    row t uses W[m_t] through the grouped GEMM over the embed's modality sort;
//  - MoeFfn: RMSNorm → router → top-k → grouped expert FFNs → weighted combine (MoE-Mamba).
// TokenEmbed (ids or input embeddings, and the modality sort) and LmHead (final norm + logits) close
// the plan.
#pragma once
#include <cstdint>

#include "core/act.h"
#include "plan/plan.h"

namespace mk {

// The embedding table plus what the per-modality projections need from every call.
class TokenEmbed final : public Embed {
 public:
  TokenEmbed(std::string family, Tensor table, int64_t modalities, bool per_modality)
      : family_(std::move(family)), table_(std::move(table)), M_(modalities), per_modality_(per_modality) {}
  Status check(const CallInputs& in, Geometry* g) const override;
  void call_buffers(RunCtx& c, Arena& a) const override;
  Status run(RunCtx& c, Residual& r) const override;
  bool graphable(const CallInputs& in) const override { return in.input.dtype == DType::I32; }

 private:
  std::string family_;
  Tensor table_;  // [V, D]
  int64_t M_;
  bool per_modality_;
};

struct MambaMixerWeights {
  Tensor norm;           // [D] f32
  Tensor in_proj, in_proj_bias;    // [2E, D] ([M, 2E, D]), bias [2E] f32 or empty
  Tensor conv_w, conv_b;           // [E, K] f32 (HF's [E, 1, K]: the same bytes), [E] or empty
  Tensor x_proj;                   // [R + 2N, E]
  Tensor dt_proj, dt_bias;         // [E, R], [E] f32
  Tensor A;                        // [N, E] f32: -exp(A_log), transposed at load
  Tensor Dskip;                    // [E] f32
  Tensor out_proj, out_proj_bias;  // [D, E], [D] or empty
};

struct MambaDims {
  int64_t D = 0, E = 0, N = 0, K = 0, R = 0;
  float eps = 1e-5f;
};

class MambaMixer final : public Block {
 public:
  MambaMixer(MambaDims d, MambaMixerWeights w) : d_(d), w_(std::move(w)) {}
  const char* kind() const override { return "mamba"; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g.rows()); }
  Status run(RunCtx& c, Residual& r) const override;
  std::vector<Shape> state_shapes(int64_t) const override { return {{d_.K - 1, d_.E}, {d_.N, d_.E}}; }
  bool uses_pending() const override { return true; }

 private:
  struct Bufs { float *xn, *xz, *u, *xdbl, *dt; };
  Bufs bufs(Arena& a, int64_t rows) const;
  MambaDims d_;
  MambaMixerWeights w_;
};

struct MoeDims {
  int64_t D = 0, experts = 0, topk = 0, F = 0;
  Act act = Act::RELU;  // relu / gelu / silu, or SWIGLU (w_in holds gate rows, then up rows)
  bool renorm = false;
  float eps = 1e-5f;
};

class MoeFfn final : public Block {
 public:
  // counts: i32 [experts] inside the plan's counters (tokens routed to each expert, accumulated).
  MoeFfn(MoeDims d, Tensor norm, Tensor router, Tensor w_in, Tensor w_out, int32_t* counts)
      : d_(d), norm_(std::move(norm)), router_(std::move(router)), w_in_(std::move(w_in)), w_out_(std::move(w_out)),
        counts_(counts) {}
  const char* kind() const override { return "moe"; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g.rows()); }
  Status run(RunCtx& c, Residual& r) const override;
  bool uses_pending() const override { return true; }

 private:
  struct Bufs {
    float *xn, *rl, *gates, *h1, *h2;
    int32_t *ids, *eoff, *esrc, *epos;
  };
  Bufs bufs(Arena& a, int64_t rows) const;
  MoeDims d_;
  Tensor norm_, router_, w_in_, w_out_;
  int32_t* counts_;
};

// logits = RMSNorm(stream) · norm_f · lm_headᵀ, for every position, the last of each row, or the
// positions [head_from, head_from + head_count) of each row.
class LmHead final : public Head {
 public:
  LmHead(Tensor norm, Tensor lm_head, float eps) : norm_(std::move(norm)), w_(std::move(lm_head)), eps_(eps) {}
  Shape output_shape(const Geometry& g, const CallInputs& in) const override;
  void scratch(Arena& a, const Geometry& g) const override { a.f32(g.rows() * g.C); }
  Status run(RunCtx& c, Residual& r, float* out) const override;

 private:
  Tensor norm_, w_;
  float eps_;
};

}  // namespace mk
