// The Mamba family (FORMATS.md §1–3) as a plan: TokenEmbed → one block per layer (MambaMixer, or
// MoeFfn where layer_types says "moe") → LmHead. One builder serves dense Mamba-1, MoE-Mamba and
// Mixture-of-Mamba: a projection weight stacked [M, out, in] makes that projection per modality.
//
// config: d_model, n_layer, d_state, d_inner, d_conv, dt_rank, eps, layer_types ("mamba" | "moe"
// per layer), modalities (default 1); MoE blocks: experts, top_k, expert_hidden, activation
// ("relu" | "gelu" | "silu" | "swiglu"), renormalize.
// weights, by checkpoint name: backbone.embeddings.weight, lm_head.weight (absent: tied),
// backbone.norm_f.weight, backbone.layers.{i}.norm.weight and
//   Mamba blocks: mixer.{in_proj,x_proj,dt_proj,out_proj}.weight, mixer.{in_proj,out_proj}.bias
//   (optional), mixer.dt_proj.bias, mixer.conv1d.weight, mixer.conv1d.bias (optional), mixer.D and
//   mixer.A — which is −exp(A_log) transposed to [N, E], derived from mixer.A_log at load;
//   MoE blocks: moe.router.weight (f32), moe.experts.w_in [Ne, F or 2F, D], moe.experts.w_out [Ne, D, F].
#include <string>

#include "core/sparse.h"
#include "core/ssm.h"
#include "models/mamba_blocks.h"
#include "models/registry.h"

namespace mk {
namespace {

const char* kFamily = "mamba";

Status expect(const std::string& name, const Tensor& t, const Shape& shape, bool gemm, Device dev) {
  return expect_tensor(kFamily, name, t, shape, gemm, dev);
}

// A projection that is either shared ([out, in], bias [out]) or per modality ([M, out, in], bias [M, out]).
// One modality: a stacked [1, out, in] weight is the plain one (same bytes); it is viewed so, and the
// block runs the dense kernels — exactly the dense model on every backend, with no sort.
Status take_proj(WeightMap& w, const std::string& p, bool bias, bool bias_required, int64_t out, int64_t in, int64_t M,
                 Device dev, Tensor* wt, Tensor* bt, bool* stacked) {
  MK_RETURN_IF_ERROR(w.take(p + ".weight", wt));
  if (bias_required) MK_RETURN_IF_ERROR(w.take(p + ".bias", bt));
  else if (bias) w.take_optional(p + ".bias", bt);
  *stacked = wt->storage && wt->ndim() == 3;
  if (*stacked && wt->dim(0) != M)
    return make_error(Code::SHAPE, std::string(kFamily) + ": " + p + ".weight is " + wt->desc() + ", expected [" +
                                       std::to_string(M) + ", " + std::to_string(out) + ", " + std::to_string(in) +
                                       "] (one weight per modality)");
  MK_RETURN_IF_ERROR(expect(p + ".weight", *wt, *stacked ? Shape{M, out, in} : Shape{out, in}, true, dev));
  if (bt->storage) MK_RETURN_IF_ERROR(expect(p + ".bias", *bt, *stacked ? Shape{M, out} : Shape{out}, false, dev));
  if (M == 1 && *stacked) {
    wt->shape.erase(wt->shape.begin());
    if (bt->storage && bt->ndim() == 2) bt->shape.erase(bt->shape.begin());
    *stacked = false;
  }
  return Status::Ok();
}

Status build(const Config& cfg, WeightMap& w, Device dev, std::unique_ptr<Plan>* out) {
  MambaDims d;
  int64_t L = 0, M = 1;
  double eps = 0;
  MK_RETURN_IF_ERROR(cfg.integer("d_model", 1, 1 << 20, &d.D));
  MK_RETURN_IF_ERROR(cfg.integer("n_layer", 1, 1 << 16, &L));
  MK_RETURN_IF_ERROR(cfg.integer("d_state", 1, kSsmMaxN, &d.N));
  MK_RETURN_IF_ERROR(cfg.integer("d_inner", 1, 1 << 22, &d.E));
  MK_RETURN_IF_ERROR(cfg.integer("d_conv", 1, kConvMaxK, &d.K));
  MK_RETURN_IF_ERROR(cfg.integer("dt_rank", 1, 1 << 20, &d.R));
  MK_RETURN_IF_ERROR(cfg.number("eps", 0, 1, &eps));
  MK_RETURN_IF_ERROR(cfg.integer_or("modalities", 1, kMaxGroups, 1, &M));
  d.eps = static_cast<float>(eps);
  std::vector<std::string> types;
  MK_RETURN_IF_ERROR(cfg.strings("layer_types", &types));
  if (static_cast<int64_t>(types.size()) != L)
    return make_error(Code::ARG, std::string(kFamily) + ": config.layer_types has " + std::to_string(types.size()) +
                                     " entries for " + std::to_string(L) + " layers");
  int64_t moe_layers = 0;
  for (const std::string& t : types) {
    if (t != "mamba" && t != "moe")
      return make_error(Code::ARG, std::string(kFamily) + ": config.layer_types holds '" + t + "' (expected mamba or moe)");
    moe_layers += t == "moe";
  }
  MoeDims md;
  md.D = d.D, md.eps = d.eps;
  if (moe_layers > 0) {
    std::string act;
    MK_RETURN_IF_ERROR(cfg.integer("experts", 1, kRouterMaxExperts, &md.experts));
    MK_RETURN_IF_ERROR(cfg.integer("top_k", 1, kRouterMaxK, &md.topk));
    MK_RETURN_IF_ERROR(router_can_run(md.experts, md.topk));
    MK_RETURN_IF_ERROR(cfg.integer("expert_hidden", 1, 1 << 22, &md.F));
    MK_RETURN_IF_ERROR(cfg.choice("activation", {"relu", "gelu", "silu", "swiglu"}, &act));
    act_from_name(act.c_str(), &md.act);
    MK_RETURN_IF_ERROR(cfg.boolean_or("renormalize", false, &md.renorm));
  }

  auto plan = std::make_unique<Plan>(kFamily, dev);
  Tensor emb, head, norm_f;
  MK_RETURN_IF_ERROR(w.take("backbone.embeddings.weight", &emb));
  if (!emb.storage || emb.ndim() != 2) return make_error(Code::SHAPE, std::string(kFamily) + ": backbone.embeddings.weight must be [V, D]");
  const int64_t V = emb.dim(0);
  MK_RETURN_IF_ERROR(expect("backbone.embeddings.weight", emb, {V, d.D}, true, dev));
  if (w.has("lm_head.weight")) MK_RETURN_IF_ERROR(w.take("lm_head.weight", &head));
  else head = emb;  // tied
  MK_RETURN_IF_ERROR(expect("lm_head.weight", head, {V, d.D}, true, dev));
  MK_RETURN_IF_ERROR(w.take("backbone.norm_f.weight", &norm_f));
  MK_RETURN_IF_ERROR(expect("backbone.norm_f.weight", norm_f, {d.D}, false, dev));

  Tensor counts;  // i32 [moe_layers, experts]: tokens routed to each expert, accumulated
  if (moe_layers > 0) {
    MK_RETURN_IF_ERROR(Tensor::create(dev, DType::I32, {moe_layers, md.experts}, &counts));
    Backend* be = nullptr;
    MK_RETURN_IF_ERROR(backend_for(dev, &be));
    MK_RETURN_IF_ERROR(be->zero(counts.raw(), counts.nbytes()));
    MK_RETURN_IF_ERROR(be->finish("mamba: expert counters"));
  }
  bool per_modality = false;
  int64_t mi = 0;
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    Tensor norm;
    MK_RETURN_IF_ERROR(w.take(p + "norm.weight", &norm));
    MK_RETURN_IF_ERROR(expect(p + "norm.weight", norm, {d.D}, false, dev));
    if (types[i] == "moe") {
      Tensor router, w_in, w_out;
      const bool glu = md.act == Act::SWIGLU;
      MK_RETURN_IF_ERROR(w.take(p + "moe.router.weight", &router));
      MK_RETURN_IF_ERROR(w.take(p + "moe.experts.w_in", &w_in));
      MK_RETURN_IF_ERROR(w.take(p + "moe.experts.w_out", &w_out));
      MK_RETURN_IF_ERROR(expect(p + "moe.router.weight", router, {md.experts, d.D}, false, dev));
      MK_RETURN_IF_ERROR(expect(p + "moe.experts.w_in", w_in, {md.experts, glu ? 2 * md.F : md.F, d.D}, true, dev));
      MK_RETURN_IF_ERROR(expect(p + "moe.experts.w_out", w_out, {md.experts, d.D, md.F}, true, dev));
      if (w_in.ndim() != 3 || w_out.ndim() != 3)
        return make_error(Code::SHAPE, std::string(kFamily) + ": " + p + "moe expert weights must be stacked [experts, out, in]");
      plan->add_block(std::make_unique<MoeFfn>(md, norm, router, w_in, w_out, counts.ptr<int32_t>() + mi * md.experts));
      ++mi;
      continue;
    }
    MambaMixerWeights mw;
    mw.norm = norm;
    const std::string x = p + "mixer.";
    bool st[4] = {};
    Tensor no_bias;  // x_proj has none
    MK_RETURN_IF_ERROR(take_proj(w, x + "in_proj", true, false, 2 * d.E, d.D, M, dev, &mw.in_proj, &mw.in_proj_bias, &st[0]));
    MK_RETURN_IF_ERROR(take_proj(w, x + "x_proj", false, false, d.R + 2 * d.N, d.E, M, dev, &mw.x_proj, &no_bias, &st[1]));
    MK_RETURN_IF_ERROR(take_proj(w, x + "dt_proj", true, true, d.E, d.R, M, dev, &mw.dt_proj, &mw.dt_bias, &st[2]));
    MK_RETURN_IF_ERROR(take_proj(w, x + "out_proj", true, false, d.D, d.E, M, dev, &mw.out_proj, &mw.out_proj_bias, &st[3]));
    MK_RETURN_IF_ERROR(w.take(x + "conv1d.weight", &mw.conv_w));
    MK_RETURN_IF_ERROR(expect(x + "conv1d.weight", mw.conv_w, {d.E, d.K}, false, dev));
    w.take_optional(x + "conv1d.bias", &mw.conv_b);
    if (mw.conv_b.storage) MK_RETURN_IF_ERROR(expect(x + "conv1d.bias", mw.conv_b, {d.E}, false, dev));
    MK_RETURN_IF_ERROR(w.take(x + "A", &mw.A));
    MK_RETURN_IF_ERROR(expect(x + "A", mw.A, {d.N, d.E}, false, dev));
    MK_RETURN_IF_ERROR(w.take(x + "D", &mw.Dskip));
    MK_RETURN_IF_ERROR(expect(x + "D", mw.Dskip, {d.E}, false, dev));
    per_modality = per_modality || st[0] || st[1] || st[2] || st[3];
    plan->add_block(std::make_unique<MambaMixer>(d, std::move(mw)));
  }
  plan->set_embed(std::make_unique<TokenEmbed>(kFamily, emb, M, per_modality));
  plan->set_head(std::make_unique<LmHead>(norm_f, head, d.eps));
  if (counts.storage) plan->set_counters(counts);
  plan->set_graphs(true);
  plan->set_recurrent(true);
  *out = std::move(plan);
  return Status::Ok();
}

FamilyRegistrar reg(kFamily, build);

}  // namespace
}  // namespace mk
