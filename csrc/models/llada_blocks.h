// Block kinds of the LLaDA / MMaDA transformer (LLaDALlamaBlock): pre-norm residual blocks over a
// token stream [B·T, D] with their output left pending (added by the next norm), as the Mamba blocks.
//  - Attention: RMSNorm → q, k, v projections → LLaDA's RoPE at the tokens' positions → K/V into
//    the cache (the state's, or a per-call one without state) → bidirectional attention over the
//    keys [0, keys) with the call's key bias → attn_out;
//  - GatedMlp: RMSNorm → ff_out(silu(ff_proj(x)) ⊙ up_proj(x)).
// Both stream layouts and cache layouts: core/attn.h.
#pragma once
#include <cstdint>

#include "plan/plan.h"

namespace mk {

struct AttnDims {
  int64_t D = 0, H = 0, KVH = 0, hd = 0;
  float eps = 1e-5f;
  int64_t kv() const { return KVH * hd; }
  int64_t qkv() const { return D + 2 * kv(); }
};

class Attention final : public Block {
 public:
  // rope: f32 [P, hd/2, 2] (core/attn.h rope_table), shared by every layer.
  Attention(AttnDims d, Tensor norm, Tensor wq, Tensor wk, Tensor wv, Tensor wo, Tensor rope)
      : d_(d), norm_(std::move(norm)), wq_(std::move(wq)), wk_(std::move(wk)), wv_(std::move(wv)), wo_(std::move(wo)),
        rope_(std::move(rope)) {}
  const char* kind() const override { return "attention"; }
  void scratch(Arena& a, const Geometry& g) const override { (void)bufs(a, g.rows(), false); }
  Status run(RunCtx& c, Residual& r) const override;
  // K and V of every position of each slot
  std::vector<Shape> state_shapes(int64_t context) const override { return {{context, d_.kv()}, {context, d_.kv()}}; }
  bool uses_pending() const override { return true; }

 private:
  struct Bufs { float *xn, *qkv, *o, *kc, *vc; };
  // kc, vc: the per-call cache of a call without state (taken always, so scratch() need not know)
  Bufs bufs(Arena& a, int64_t rows, bool) const;
  AttnDims d_;
  Tensor norm_, wq_, wk_, wv_, wo_, rope_;
};

class GatedMlp final : public Block {
 public:
  GatedMlp(int64_t D, int64_t F, float eps, Tensor norm, Tensor w_gate, Tensor w_up, Tensor w_down)
      : D_(D), F_(F), eps_(eps), norm_(std::move(norm)), wg_(std::move(w_gate)), wu_(std::move(w_up)), wd_(std::move(w_down)) {}
  const char* kind() const override { return "mlp"; }
  void scratch(Arena& a, const Geometry& g) const override { a.f32(g.rows() * D_), a.f32(g.rows() * 2 * F_); }
  Status run(RunCtx& c, Residual& r) const override;
  bool uses_pending() const override { return true; }

 private:
  int64_t D_, F_;
  float eps_;
  Tensor norm_, wg_, wu_, wd_;
};

}  // namespace mk
