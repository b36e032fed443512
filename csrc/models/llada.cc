// The LLaDA / MMaDA transformer (LLaDAModelLM with block_type "llama"; FORMATS.md and the README's
// "LLaDA checkpoints") as a plan: TokenEmbed → per layer an Attention and a GatedMlp block → LmHead.
// Bidirectional: every position attends to every key of its sequence (the diffusion sampler in
// lib/diffusion/ decides which positions are masks).
//
// config: d_model, n_heads, n_kv_heads, n_layers, mlp_hidden, eps, rope_theta, max_positions
// (positions the rotary table covers: the checkpoint's max_sequence_length).
// weights, by checkpoint name: model.transformer.wte.weight [V, D], model.transformer.ff_out.weight
// [V, D] (absent: tied to wte), model.transformer.ln_f.weight [D], and per layer i under
// model.transformer.blocks.{i}.: attn_norm.weight, ff_norm.weight [D], q_proj.weight [D, D],
// k_proj.weight and v_proj.weight [n_kv_heads·hd, D], attn_out.weight [D, D], ff_proj.weight and
// up_proj.weight [F, D], ff_out.weight [D, F].
#include <string>

#include "core/attn.h"
#include "models/llada_blocks.h"
#include "models/mamba_blocks.h"  // TokenEmbed, LmHead
#include "models/registry.h"

namespace mk {
namespace {

const char* kFamily = "llada";

Status build(const Config& cfg, WeightMap& w, Device dev, std::unique_ptr<Plan>* out) {
  AttnDims d;
  int64_t L = 0, F = 0, P = 0;
  double eps = 0, theta = 0;
  MK_RETURN_IF_ERROR(cfg.integer("d_model", 1, 1 << 20, &d.D));
  MK_RETURN_IF_ERROR(cfg.integer("n_heads", 1, 1 << 12, &d.H));
  MK_RETURN_IF_ERROR(cfg.integer("n_kv_heads", 1, 1 << 12, &d.KVH));
  MK_RETURN_IF_ERROR(cfg.integer("n_layers", 1, 1 << 12, &L));
  MK_RETURN_IF_ERROR(cfg.integer("mlp_hidden", 1, 1 << 22, &F));
  MK_RETURN_IF_ERROR(cfg.integer("max_positions", 1, 1 << 22, &P));
  MK_RETURN_IF_ERROR(cfg.number("eps", 0, 1, &eps));
  MK_RETURN_IF_ERROR(cfg.number("rope_theta", 0, 1e12, &theta));
  if (d.D % d.H != 0)
    return make_error(Code::ARG, std::string(kFamily) + ": d_model " + std::to_string(d.D) + " is not a multiple of n_heads " + std::to_string(d.H));
  d.hd = d.D / d.H;
  d.eps = static_cast<float>(eps);
  MK_RETURN_IF_ERROR(attn_can_run(d.H, d.KVH, d.hd, 1));
  MK_RETURN_IF_ERROR(rope_can_run(d.hd));

  const auto expect = [&](const std::string& name, const Tensor& t, const Shape& shape, bool gemm) {
    return expect_tensor(kFamily, name, t, shape, gemm, dev);
  };
  const std::string m = "model.transformer.";
  Tensor wte, head, ln_f, rope;
  MK_RETURN_IF_ERROR(w.take(m + "wte.weight", &wte));
  if (!wte.storage || wte.ndim() != 2) return make_error(Code::SHAPE, std::string(kFamily) + ": " + m + "wte.weight must be [V, D]");
  const int64_t V = wte.dim(0);
  MK_RETURN_IF_ERROR(expect(m + "wte.weight", wte, {V, d.D}, true));
  if (w.has(m + "ff_out.weight")) MK_RETURN_IF_ERROR(w.take(m + "ff_out.weight", &head));
  else head = wte;  // weight_tying
  MK_RETURN_IF_ERROR(expect(m + "ff_out.weight", head, {V, d.D}, true));
  MK_RETURN_IF_ERROR(w.take(m + "ln_f.weight", &ln_f));
  MK_RETURN_IF_ERROR(expect(m + "ln_f.weight", ln_f, {d.D}, false));
  MK_RETURN_IF_ERROR(make_rope_table(dev, theta, d.hd, P, &rope));

  auto plan = std::make_unique<Plan>(kFamily, dev);
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = m + "blocks." + std::to_string(i) + ".";
    Tensor an, fn, wq, wk, wv, wo, wg, wu, wd;
    const std::pair<const char*, Tensor*> parts[] = {{"attn_norm", &an}, {"ff_norm", &fn}, {"q_proj", &wq}, {"k_proj", &wk},
                                                     {"v_proj", &wv}, {"attn_out", &wo}, {"ff_proj", &wg}, {"up_proj", &wu},
                                                     {"ff_out", &wd}};
    for (const auto& [name, t] : parts) MK_RETURN_IF_ERROR(w.take(p + name + ".weight", t));
    MK_RETURN_IF_ERROR(expect(p + "attn_norm.weight", an, {d.D}, false));
    MK_RETURN_IF_ERROR(expect(p + "ff_norm.weight", fn, {d.D}, false));
    MK_RETURN_IF_ERROR(expect(p + "q_proj.weight", wq, {d.D, d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "k_proj.weight", wk, {d.kv(), d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "v_proj.weight", wv, {d.kv(), d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "attn_out.weight", wo, {d.D, d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "ff_proj.weight", wg, {F, d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "up_proj.weight", wu, {F, d.D}, true));
    MK_RETURN_IF_ERROR(expect(p + "ff_out.weight", wd, {d.D, F}, true));
    plan->add_block(std::make_unique<Attention>(d, an, wq, wk, wv, wo, rope));
    plan->add_block(std::make_unique<GatedMlp>(d.D, F, d.eps, fn, wg, wu, wd));
  }
  plan->set_embed(std::make_unique<TokenEmbed>(kFamily, wte, 1, false));
  plan->set_head(std::make_unique<LmHead>(ln_f, head, d.eps));
  plan->set_recurrent(true);
  plan->set_positional(P);
  *out = std::move(plan);
  return Status::Ok();
}

FamilyRegistrar reg(kFamily, build);

}  // namespace
}  // namespace mk
