// MambaOut (FORMATS.md §4, timm's mambaout.py) as a plan: ImageInput → Stem → per stage
// (Downsample from stage 1 on) and its gated CNN blocks → PooledHead. A second family,
// "gated_cnn_block", runs one gated CNN block alone on an NHWC stream (tests, benchmarks).
//
// config: dims and depths (per stage), classes, eps. Weights by timm's state-dict names, the convs
// already in the kernels' layout (dense [3, 3, Ci, Co], depthwise [7, 7, C]). With feature_stage s
// (an image encoder, e.g. a VLM's vision tower) the plan stops after stage s's last block and returns
// that feature map as tokens [B, H·W, C_s]: no PooledHead, no classes, no weights of later stages.
// gated_cnn_block: config channels, eps; weights named as inside a block ("norm.weight", "fc1.weight", …).
#include <string>

#include "models/mambaout_blocks.h"
#include "models/registry.h"

namespace mk {
namespace {

class Loader {
 public:
  Loader(const char* family, WeightMap& w, Device dev) : family_(family), w_(w), dev_(dev) {}
  Status get(const std::string& name, const Shape& shape, bool gemm, Tensor* out) {
    MK_RETURN_IF_ERROR(w_.take(name, out));
    return expect_tensor(family_, name, *out, shape, gemm, dev_, true);
  }
  Status norm(const std::string& p, int64_t C, LayerNormW* n) {
    MK_RETURN_IF_ERROR(get(p + ".weight", {C}, false, &n->w));
    return get(p + ".bias", {C}, false, &n->b);
  }
  Status conv(const std::string& p, int64_t Ci, int64_t Co, ConvS2* c) {
    MK_RETURN_IF_ERROR(get(p + ".weight", {3, 3, Ci, Co}, false, &c->w));
    return get(p + ".bias", {Co}, false, &c->b);
  }
  // p: "stages.i.blocks.j." or "" (a lone block)
  Status block(const std::string& p, int64_t C, GatedBlockWeights* b) {
    const int64_t h = gated_hidden(C);
    MK_RETURN_IF_ERROR(norm(p + "norm", C, &b->norm));
    MK_RETURN_IF_ERROR(get(p + "fc1.weight", {2 * h, C}, true, &b->fc1));
    MK_RETURN_IF_ERROR(get(p + "fc1.bias", {2 * h}, false, &b->fc1_b));
    MK_RETURN_IF_ERROR(get(p + "conv.weight", {7, 7, C}, false, &b->conv_w));
    MK_RETURN_IF_ERROR(get(p + "conv.bias", {C}, false, &b->conv_b));
    MK_RETURN_IF_ERROR(get(p + "fc2.weight", {C, h}, true, &b->fc2));
    return get(p + "fc2.bias", {C}, false, &b->fc2_b);
  }

 private:
  const char* family_;
  WeightMap& w_;
  Device dev_;
};

Status eps_of(const Config& cfg, float* eps) {
  double e = 0;
  MK_RETURN_IF_ERROR(cfg.number("eps", 0, 1, &e));
  *eps = static_cast<float>(e);
  return Status::Ok();
}

Status build_mambaout(const Config& cfg, WeightMap& w, Device dev, std::unique_ptr<Plan>* out) {
  const char* family = "mambaout";
  std::vector<int64_t> dims, depths;
  int64_t classes = 0, feature_stage = -1;
  float eps = 0;
  MK_RETURN_IF_ERROR(cfg.integers("dims", 2, 65536, &dims));
  MK_RETURN_IF_ERROR(cfg.integers("depths", 0, 1024, &depths));
  MK_RETURN_IF_ERROR(eps_of(cfg, &eps));
  const size_t S = dims.size();
  if (S < 1 || S > 8 || depths.size() != S)
    return make_error(Code::ARG, std::string(family) + ": dims and depths must have the same length, 1..8");
  MK_RETURN_IF_ERROR(cfg.integer_or("feature_stage", 0, static_cast<int64_t>(S) - 1, -1, &feature_stage));
  if (feature_stage < 0) MK_RETURN_IF_ERROR(cfg.integer("classes", 1, 10000000, &classes));
  const size_t stages = feature_stage < 0 ? S : static_cast<size_t>(feature_stage) + 1;
  Loader l(family, w, dev);
  const int64_t C0 = dims[0], C3 = dims[S - 1];
  auto plan = std::make_unique<Plan>(family, dev);
  ConvS2 c1, c2;
  LayerNormW n1, n2;
  MK_RETURN_IF_ERROR(l.conv("stem.conv1", 3, C0 / 2, &c1));
  MK_RETURN_IF_ERROR(l.norm("stem.norm1", C0 / 2, &n1));
  MK_RETURN_IF_ERROR(l.conv("stem.conv2", C0 / 2, C0, &c2));
  MK_RETURN_IF_ERROR(l.norm("stem.norm2", C0, &n2));
  plan->add_block(std::make_unique<Stem>(c1, n1, c2, n2, eps));
  for (size_t i = 0; i < stages; ++i) {
    const std::string p = "stages." + std::to_string(i) + ".";
    if (i > 0) {
      ConvS2 dc;
      LayerNormW dn;
      MK_RETURN_IF_ERROR(l.conv(p + "downsample.conv", dims[i - 1], dims[i], &dc));
      MK_RETURN_IF_ERROR(l.norm(p + "downsample.norm", dims[i], &dn));
      plan->add_block(std::make_unique<Downsample>(dc, dn, eps));
    }
    for (int64_t j = 0; j < depths[i]; ++j) {
      GatedBlockWeights b;
      MK_RETURN_IF_ERROR(l.block(p + "blocks." + std::to_string(j) + ".", dims[i], &b));
      plan->add_block(std::make_unique<GatedCnn>(std::move(b), dims[i], eps));
    }
  }
  plan->set_embed(std::make_unique<ImageInput>(family, 3, dev));
  if (feature_stage >= 0) {
    plan->set_head(std::make_unique<StreamOutput>(/*tokens=*/true));
    *out = std::move(plan);
    return Status::Ok();
  }
  LayerNormW hn, hn2;
  Tensor f1, f1b, f2, f2b;
  MK_RETURN_IF_ERROR(l.norm("head.norm", C3, &hn));
  MK_RETURN_IF_ERROR(l.get("head.pre_logits.fc.weight", {4 * C3, C3}, true, &f1));
  MK_RETURN_IF_ERROR(l.get("head.pre_logits.fc.bias", {4 * C3}, false, &f1b));
  MK_RETURN_IF_ERROR(l.norm("head.pre_logits.norm", 4 * C3, &hn2));
  MK_RETURN_IF_ERROR(l.get("head.fc.weight", {classes, 4 * C3}, true, &f2));
  MK_RETURN_IF_ERROR(l.get("head.fc.bias", {classes}, false, &f2b));
  plan->set_head(std::make_unique<PooledHead>(hn, f1, f1b, hn2, f2, f2b, eps));
  *out = std::move(plan);
  return Status::Ok();
}

Status build_block(const Config& cfg, WeightMap& w, Device dev, std::unique_ptr<Plan>* out) {
  const char* family = "gated_cnn_block";
  int64_t C = 0;
  float eps = 0;
  MK_RETURN_IF_ERROR(cfg.integer("channels", 2, 65536, &C));
  MK_RETURN_IF_ERROR(eps_of(cfg, &eps));
  Loader l(family, w, dev);
  GatedBlockWeights b;
  MK_RETURN_IF_ERROR(l.block("", C, &b));
  auto plan = std::make_unique<Plan>(family, dev);
  plan->set_embed(std::make_unique<ImageInput>(family, C, dev));
  plan->add_block(std::make_unique<GatedCnn>(std::move(b), C, eps));
  plan->set_head(std::make_unique<StreamOutput>());
  *out = std::move(plan);
  return Status::Ok();
}

FamilyRegistrar reg_mambaout("mambaout", build_mambaout);
FamilyRegistrar reg_block("gated_cnn_block", build_block);

}  // namespace
}  // namespace mk
