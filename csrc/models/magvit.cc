// MAGVIT-v2 (family "magvitv2"): MMaDA's image tokenizer as two plans, one per direction (config
// `part`), both following Gen-Verse/MMaDA models/modeling_magvitv2.py:
//  encoder: PixelInput → conv_in → per level i: num_res_blocks[i] × (Resnet [→ Attn]) (→ Downsample
//           unless last) → mid (Resnet, Attn, Resnet) → norm_out/SiLU/conv_out → quant_conv → LfqHead
//           (codes [B, h·w]; `output: "latents"` ends with the stream [B, h, w, z] instead);
//  decoder: CodeInput (LFQ codebook vectors) → post_quant_conv → conv_in → mid → per level i from the
//           last: num_res_blocks[i] × (Resnet [→ Attn]) (→ Upsample unless i = 0) → norm_out/SiLU/
//           conv_out → the stream [B, H, W, 3].
// config: part, ch, ch_mult, num_res_blocks, attn (0/1 per level: whether the level has AttnBlocks,
// which the reference derives from attn_resolutions and its nominal resolution), z_channels,
// groups (GroupNorm groups, 32), eps (1e-6), output (encoder: "codes" | "latents").
// Weights by the checkpoint's state-dict names ("encoder.down.0.block.1.conv1.weight", …): k×k convs
// repacked to [KH, KW, Ci, Co], 1×1 convs as [Co, Ci].
#include <string>

#include "models/magvit_blocks.h"
#include "models/registry.h"

namespace mk {
namespace {

const char* kFamily = "magvitv2";

class Loader {
 public:
  Loader(WeightMap& w, Device dev, int64_t groups, float eps) : w_(w), dev_(dev), groups_(groups), eps_(eps) {}
  Status get(const std::string& name, const Shape& shape, bool gemm, Tensor* out) {
    MK_RETURN_IF_ERROR(w_.take(name, out));
    return expect_tensor(kFamily, name, *out, shape, gemm, dev_, true);
  }
  Status norm(const std::string& p, int64_t C, GroupNormW* n) {
    if (C % groups_ != 0)
      return make_error(Code::ARG, std::string(kFamily) + ": " + p + " has " + std::to_string(C) + " channels, not a multiple of " +
                                       std::to_string(groups_) + " groups");
    n->groups = groups_, n->eps = eps_;
    MK_RETURN_IF_ERROR(get(p + ".weight", {C}, false, &n->w));
    return get(p + ".bias", {C}, false, &n->b);
  }
  Status conv(const std::string& p, int64_t Ci, int64_t Co, int64_t k, ConvW* c) {
    MK_RETURN_IF_ERROR(get(p + ".weight", {k, k, Ci, Co}, false, &c->w));
    MK_RETURN_IF_ERROR(get(p + ".bias", {Co}, false, &c->b));
    c->stride = 1, c->pad_top = c->pad_bottom = c->pad_left = c->pad_right = k / 2;
    return Status::Ok();
  }
  Status linear(const std::string& p, int64_t Ci, int64_t Co, LinearW* l) {
    MK_RETURN_IF_ERROR(get(p + ".weight", {Co, Ci}, true, &l->w));
    return get(p + ".bias", {Co}, false, &l->b);
  }
  Status resnet(const std::string& p, int64_t Ci, int64_t Co, std::unique_ptr<Block>* out) {
    GroupNormW n1, n2;
    ConvW c1, c2;
    LinearW sc;
    MK_RETURN_IF_ERROR(norm(p + ".norm1", Ci, &n1));
    MK_RETURN_IF_ERROR(conv(p + ".conv1", Ci, Co, 3, &c1));
    MK_RETURN_IF_ERROR(norm(p + ".norm2", Co, &n2));
    MK_RETURN_IF_ERROR(conv(p + ".conv2", Co, Co, 3, &c2));
    if (Ci != Co) MK_RETURN_IF_ERROR(linear(p + ".nin_shortcut", Ci, Co, &sc));
    *out = std::make_unique<Resnet>(n1, c1, n2, c2, sc);
    return Status::Ok();
  }
  Status attn(const std::string& p, int64_t C, std::unique_ptr<Block>* out) {
    GroupNormW n;
    LinearW q, k, v, o;
    MK_RETURN_IF_ERROR(norm(p + ".norm", C, &n));
    MK_RETURN_IF_ERROR(linear(p + ".q", C, C, &q));
    MK_RETURN_IF_ERROR(linear(p + ".k", C, C, &k));
    MK_RETURN_IF_ERROR(linear(p + ".v", C, C, &v));
    MK_RETURN_IF_ERROR(linear(p + ".proj_out", C, C, &o));
    *out = std::make_unique<Attn>(n, q, k, v, o);
    return Status::Ok();
  }

 private:
  WeightMap& w_;
  Device dev_;
  int64_t groups_;
  float eps_;
};

Status build_magvit(const Config& cfg, WeightMap& w, Device dev, std::unique_ptr<Plan>* out) {
  std::string part, output;
  int64_t ch = 0, z = 0, groups = 0;
  std::vector<int64_t> mult, nrb, attn;
  double eps = 0;
  MK_RETURN_IF_ERROR(cfg.choice("part", {"encoder", "decoder"}, &part));
  MK_RETURN_IF_ERROR(cfg.integer("ch", 1, 65536, &ch));
  MK_RETURN_IF_ERROR(cfg.integers("ch_mult", 1, 1024, &mult));
  MK_RETURN_IF_ERROR(cfg.integers("num_res_blocks", 0, 1024, &nrb));
  MK_RETURN_IF_ERROR(cfg.integers("attn", 0, 1, &attn));
  MK_RETURN_IF_ERROR(cfg.integer("z_channels", 1, kLfqMaxBits, &z));
  MK_RETURN_IF_ERROR(cfg.integer_or("groups", 1, 65536, 32, &groups));
  MK_RETURN_IF_ERROR(cfg.number("eps", 0, 1, &eps));
  const size_t L = mult.size();
  if (L < 1 || L > 16 || nrb.size() != L || attn.size() != L)
    return make_error(Code::ARG, std::string(kFamily) + ": ch_mult, num_res_blocks and attn must have the same length, 1..16");
  Loader l(w, dev, groups, static_cast<float>(eps));
  auto plan = std::make_unique<Plan>(kFamily, dev);
  std::unique_ptr<Block> b;
  auto mid = [&](const std::string& p, int64_t C) -> Status {
    MK_RETURN_IF_ERROR(l.resnet(p + "mid.block_1", C, C, &b));
    plan->add_block(std::move(b));
    MK_RETURN_IF_ERROR(l.attn(p + "mid.attn_1", C, &b));
    plan->add_block(std::move(b));
    MK_RETURN_IF_ERROR(l.resnet(p + "mid.block_2", C, C, &b));
    plan->add_block(std::move(b));
    return Status::Ok();
  };
  const GroupNormW no_norm;
  if (part == "encoder") {
    MK_RETURN_IF_ERROR(cfg.choice("output", {"codes", "latents"}, &output));
    const std::string p = "encoder.";
    ConvW c;
    MK_RETURN_IF_ERROR(l.conv(p + "conv_in", 3, ch, 3, &c));
    plan->add_block(std::make_unique<Conv>("conv_in", no_norm, false, c));
    int64_t cin = ch;
    for (size_t i = 0; i < L; ++i) {
      const int64_t cout = ch * mult[i];
      const std::string lp = p + "down." + std::to_string(i) + ".";
      for (int64_t j = 0; j < nrb[i]; ++j) {
        MK_RETURN_IF_ERROR(l.resnet(lp + "block." + std::to_string(j), cin, cout, &b));
        plan->add_block(std::move(b));
        cin = cout;
        if (attn[i]) {
          MK_RETURN_IF_ERROR(l.attn(lp + "attn." + std::to_string(j), cin, &b));
          plan->add_block(std::move(b));
        }
      }
      if (i + 1 != L) {  // Downsample: F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv
        ConvW d;
        MK_RETURN_IF_ERROR(l.conv(lp + "downsample.conv", cin, cin, 3, &d));
        d.stride = 2, d.pad_top = d.pad_left = 0, d.pad_bottom = d.pad_right = 1;
        plan->add_block(std::make_unique<Conv>("downsample", no_norm, false, d));
      }
    }
    MK_RETURN_IF_ERROR(mid(p, cin));
    GroupNormW n;
    ConvW co;
    LinearW q;
    MK_RETURN_IF_ERROR(l.norm(p + "norm_out", cin, &n));
    MK_RETURN_IF_ERROR(l.conv(p + "conv_out", cin, z, 3, &co));
    MK_RETURN_IF_ERROR(l.linear(p + "quant_conv", z, z, &q));
    plan->add_block(std::make_unique<Conv>("conv_out", n, false, co));
    plan->add_block(std::make_unique<Pointwise>("quant_conv", q));
    plan->set_embed(std::make_unique<PixelInput>(int64_t{1} << (L - 1), dev));
    if (output == "codes") plan->set_head(std::make_unique<LfqHead>());
    else plan->set_head(std::make_unique<GridOutput>());
  } else {
    const std::string p = "decoder.";
    LinearW pq;
    MK_RETURN_IF_ERROR(l.linear(p + "post_quant_conv", z, z, &pq));
    plan->add_block(std::make_unique<Pointwise>("post_quant_conv", pq));
    int64_t cin = ch * mult[L - 1];
    ConvW c;
    MK_RETURN_IF_ERROR(l.conv(p + "conv_in", z, cin, 3, &c));
    plan->add_block(std::make_unique<Conv>("conv_in", no_norm, false, c));
    MK_RETURN_IF_ERROR(mid(p, cin));
    for (size_t ii = L; ii-- > 0;) {
      const int64_t cout = ch * mult[ii];
      const std::string lp = p + "up." + std::to_string(ii) + ".";
      for (int64_t j = 0; j < nrb[ii]; ++j) {
        MK_RETURN_IF_ERROR(l.resnet(lp + "block." + std::to_string(j), cin, cout, &b));
        plan->add_block(std::move(b));
        cin = cout;
        if (attn[ii]) {
          MK_RETURN_IF_ERROR(l.attn(lp + "attn." + std::to_string(j), cin, &b));
          plan->add_block(std::move(b));
        }
      }
      if (ii != 0) {  // Upsample: nearest 2× then a 3×3 conv
        ConvW u;
        MK_RETURN_IF_ERROR(l.conv(lp + "upsample.conv", cin, cin, 3, &u));
        plan->add_block(std::make_unique<Conv>("upsample", no_norm, true, u));
      }
    }
    GroupNormW n;
    ConvW co;
    MK_RETURN_IF_ERROR(l.norm(p + "norm_out", cin, &n));
    MK_RETURN_IF_ERROR(l.conv(p + "conv_out", cin, 3, 3, &co));
    plan->add_block(std::make_unique<Conv>("conv_out", n, false, co));
    plan->set_embed(std::make_unique<CodeInput>(z, dev));
    plan->set_head(std::make_unique<GridOutput>());
  }
  *out = std::move(plan);
  return Status::Ok();
}

FamilyRegistrar reg_magvit(kFamily, build_magvit);

}  // namespace
}  // namespace mk
