// N-API for the MambaOut plan:
//   mambaoutCreate(cfg {dims, depths, classes, eps}, weights {timm name: tensor}, device)
//     -> { forward(pixels f32 [B, H, W, 3]) -> Promise<logits [B, classes]> }
//   mambaoutBlock(C, eps, weights {"norm.weight": ..., "fc1.weight": ...}, x f32 [B, H, W, C]) -> Promise<y>
// Weights are keyed by timm's state-dict names, with the convs already in the kernels' layout
// (dense [3, 3, Ci, Co], depthwise [7, 7, C]); a missing name is E_ARG naming it.
#include <cmath>
#include <memory>
#include <string>

#include "binding/async_job.h"
#include "binding/tensor_wrap.h"
#include "models/mambaout.h"

namespace mk {
namespace {

class Weights {
 public:
  Weights(Napi::Env env, Napi::Object o) : env_(env), o_(o) {}
  Status get(const std::string& name, Tensor* out) const {
    Napi::Value v = o_.Get(name);
    if (v.IsUndefined() || v.IsNull()) return make_error(Code::ARG, "mambaout: missing weight '" + name + "'");
    return TensorWrap::unwrap(env_, v, ("mambaout weight " + name).c_str(), out);
  }
  Status norm(const std::string& p, LayerNormW* n) const {
    MK_RETURN_IF_ERROR(get(p + ".weight", &n->w));
    return get(p + ".bias", &n->b);
  }
  Status conv(const std::string& p, ConvS2* c) const {
    MK_RETURN_IF_ERROR(get(p + ".weight", &c->w));
    return get(p + ".bias", &c->b);
  }
  // p: "stages.i.blocks.j." or "" (a lone block)
  Status block(const std::string& p, GatedBlock* b) const {
    MK_RETURN_IF_ERROR(norm(p + "norm", &b->norm));
    for (auto [k, t] : {std::pair<const char*, Tensor*>{"fc1.weight", &b->fc1}, {"fc1.bias", &b->fc1_b},
                        {"conv.weight", &b->conv_w}, {"conv.bias", &b->conv_b}, {"fc2.weight", &b->fc2},
                        {"fc2.bias", &b->fc2_b}})
      MK_RETURN_IF_ERROR(get(p + k, t));
    return Status::Ok();
  }

 private:
  Napi::Env env_;
  Napi::Object o_;
};

Status int_list(Napi::Object cfg, const char* key, std::vector<int64_t>* out) {
  Napi::Value v = cfg.Get(key);
  if (!v.IsArray()) return make_error(Code::ARG, std::string("mambaoutCreate: cfg.") + key + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const double d = a.Get(i).ToNumber().DoubleValue();
    if (!(d >= 0 && d <= 1e6 && std::floor(d) == d))
      return make_error(Code::ARG, std::string("mambaoutCreate: cfg.") + key + " must hold integers");
    out->push_back(static_cast<int64_t>(d));
  }
  return Status::Ok();
}

Status parse_model(Napi::Env env, Napi::Object cfg, Napi::Object wo, MambaOutModel* m) {
  MK_RETURN_IF_ERROR(int_list(cfg, "dims", &m->dims));
  MK_RETURN_IF_ERROR(int_list(cfg, "depths", &m->depths));
  const double classes = cfg.Get("classes").ToNumber().DoubleValue(), eps = cfg.Get("eps").ToNumber().DoubleValue();
  if (!(classes >= 1 && classes <= 1e7 && std::floor(classes) == classes) || !(eps > 0 && eps < 1))
    return make_error(Code::ARG, "mambaoutCreate: cfg.classes must be an integer >= 1 and cfg.eps in (0, 1)");
  m->classes = static_cast<int64_t>(classes);
  m->eps = static_cast<float>(eps);
  if (m->dims.empty() || m->dims.size() != m->depths.size() || m->dims.size() > 8)
    return make_error(Code::ARG, "mambaoutCreate: dims and depths must have the same length, 1..8");
  const Weights w(env, wo);
  MK_RETURN_IF_ERROR(w.conv("stem.conv1", &m->stem1));
  MK_RETURN_IF_ERROR(w.norm("stem.norm1", &m->stem_norm1));
  MK_RETURN_IF_ERROR(w.conv("stem.conv2", &m->stem2));
  MK_RETURN_IF_ERROR(w.norm("stem.norm2", &m->stem_norm2));
  m->stages.resize(m->dims.size());
  for (size_t i = 0; i < m->stages.size(); ++i) {
    const std::string p = "stages." + std::to_string(i) + ".";
    if (i > 0) MK_RETURN_IF_ERROR(w.conv(p + "downsample.conv", &m->stages[i].down));
    if (i > 0) MK_RETURN_IF_ERROR(w.norm(p + "downsample.norm", &m->stages[i].down_norm));
    m->stages[i].blocks.resize(static_cast<size_t>(m->depths[i]));
    for (size_t j = 0; j < m->stages[i].blocks.size(); ++j)
      MK_RETURN_IF_ERROR(w.block(p + "blocks." + std::to_string(j) + ".", &m->stages[i].blocks[j]));
  }
  MK_RETURN_IF_ERROR(w.norm("head.norm", &m->head_norm));
  MK_RETURN_IF_ERROR(w.get("head.pre_logits.fc.weight", &m->head_fc1));
  MK_RETURN_IF_ERROR(w.get("head.pre_logits.fc.bias", &m->head_fc1_b));
  MK_RETURN_IF_ERROR(w.norm("head.pre_logits.norm", &m->head_norm2));
  MK_RETURN_IF_ERROR(w.get("head.fc.weight", &m->head_fc2));
  MK_RETURN_IF_ERROR(w.get("head.fc.bias", &m->head_fc2_b));
  return mambaout_validate(*m);
}

class ForwardJob : public AsyncJob {
 public:
  ForwardJob(std::shared_ptr<const MambaOutModel> m, Tensor px) : m_(std::move(m)), px_(std::move(px)) {}
  Status run() override { return mambaout_forward(*m_, px_, &out_); }
  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, out_); }

 private:
  std::shared_ptr<const MambaOutModel> m_;
  Tensor px_, out_;
};

Status check_image(const char* what, const Tensor& x, int64_t C, Device dev) {
  if (x.dtype != DType::F32) return make_error(Code::DTYPE, std::string(what) + " must be f32, got " + x.desc());
  if (x.ndim() != 4 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) != C)
    return make_error(Code::SHAPE, std::string(what) + " must be f32 [B >= 1, H, W, " + std::to_string(C) +
                                       "] (channels last), got " + x.desc());
  if (x.device() != dev) return make_error(Code::DEVICE, std::string(what) + " on " + x.device().str() + ", model on " + dev.str());
  return Status::Ok();
}

Napi::Value Forward(const Napi::CallbackInfo& info, const std::shared_ptr<const MambaOutModel>& m) {
  Napi::Env env = info.Env();
  Tensor px;
  Status s = info.Length() < 1 ? make_error(Code::ARG, "forward(pixels)") : TensorWrap::unwrap(env, info[0], "pixels", &px);
  if (s.ok()) s = check_image("mambaout forward: pixels", px, 3, m->dev);
  if (!s.ok()) return rejected(env, s);
  return enqueue(env, std::make_unique<ForwardJob>(m, px));
}

Napi::Value MambaOutCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = std::make_shared<MambaOutModel>();
  Status s = info.Length() >= 3 && info[0].IsObject() && info[1].IsObject() && info[2].IsString()
                 ? Status::Ok() : make_error(Code::ARG, "mambaoutCreate(cfg, weights, device)");
  if (s.ok()) s = parse_device(info[2].As<Napi::String>().Utf8Value(), &m->dev);
  if (s.ok()) s = parse_model(env, info[0].As<Napi::Object>(), info[1].As<Napi::Object>(), m.get());
  if (!s.ok()) {
    to_js_error(env, s).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::shared_ptr<const MambaOutModel> cm = m;
  Napi::Object o = Napi::Object::New(env);
  // the function owns a reference to the plan; the plan lives while the JS object does
  o.Set("forward", Napi::Function::New(env, [cm](const Napi::CallbackInfo& i) { return Forward(i, cm); }, "forward"));
  return o;
}

class BlockJob : public AsyncJob {
 public:
  BlockJob(GatedBlock b, int64_t C, float eps, Tensor x) : b_(std::move(b)), C_(C), eps_(eps), x_(std::move(x)) {}
  Status run() override { return gated_block_forward(b_, C_, eps_, x_, &y_); }
  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, y_); }

 private:
  GatedBlock b_;
  int64_t C_;
  float eps_;
  Tensor x_, y_;
};

Napi::Value MambaOutBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsObject())
    return rejected(env, make_error(Code::ARG, "mambaoutBlock(C, eps, weights, x)"));
  const double c = info[0].As<Napi::Number>().DoubleValue(), eps = info[1].As<Napi::Number>().DoubleValue();
  if (!(c >= 2 && c <= 65536 && std::floor(c) == c) || !(eps > 0 && eps < 1))
    return rejected(env, make_error(Code::ARG, "mambaoutBlock: C must be an integer in [2, 65536], eps in (0, 1)"));
  const int64_t C = static_cast<int64_t>(c);
  GatedBlock b;
  Tensor x;
  Status s = Weights(env, info[2].As<Napi::Object>()).block("", &b);
  if (s.ok()) s = TensorWrap::unwrap(env, info[3], "x", &x);
  if (s.ok()) s = check_image("mambaoutBlock: x", x, C, x.device());
  if (s.ok()) s = gated_block_validate(b, C, x.device(), "block");
  if (!s.ok()) return rejected(env, s);
  return enqueue(env, std::make_unique<BlockJob>(std::move(b), C, static_cast<float>(eps), x));
}

}  // namespace

void register_mambaout(Napi::Env env, Napi::Object exports) {
  exports.Set("mambaoutCreate", Napi::Function::New(env, MambaOutCreate, "mambaoutCreate"));
  exports.Set("mambaoutBlock", Napi::Function::New(env, MambaOutBlock, "mambaoutBlock"));
}

}  // namespace mk
