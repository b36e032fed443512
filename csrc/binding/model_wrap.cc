// N-API for native model plans: mambaCreate(dims, weights) -> handle with forward(...) -> Promise.
#include <memory>

#include "binding/async_job.h"
#include "binding/model_wrap.h"
#include "binding/tensor_wrap.h"
#include "models/mamba.h"

namespace mk {
namespace {

Status get_dim(Napi::Object o, const char* k, int64_t* out) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) return make_error(Code::ARG, std::string("mamba: dims.") + k + " must be a number");
  *out = static_cast<int64_t>(v.As<Napi::Number>().DoubleValue());
  return Status::Ok();
}

// An absent key (undefined / null) leaves `out` empty: optional biases.
Status get_tensor(Napi::Env env, Napi::Object o, const char* k, Tensor* out) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return Status::Ok();
  return TensorWrap::unwrap(env, v, (std::string("mamba weight ") + k).c_str(), out);
}

class ForwardJob : public AsyncJob {
 public:
  ForwardJob(std::shared_ptr<const MambaModel> m, Tensor tokens, Tensor modality, bool has_state, MambaState st,
             Tensor slots, bool last_only, bool decode)
      : m_(std::move(m)), tokens_(std::move(tokens)), modality_(std::move(modality)), has_state_(has_state), st_(std::move(st)),
        slots_(std::move(slots)), last_only_(last_only), decode_(decode) {}
  Status run() override {
    return mamba_forward(*m_, tokens_, modality_.storage ? &modality_ : nullptr, has_state_ ? &st_ : nullptr, slots_.storage ? &slots_ : nullptr, last_only_,
                         decode_, &out_);
  }
  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, out_); }

 private:
  std::shared_ptr<const MambaModel> m_;
  Tensor tokens_, modality_;
  bool has_state_;
  MambaState st_;
  Tensor slots_;
  bool last_only_, decode_;
  Tensor out_;
};

class MambaWrap : public Napi::ObjectWrap<MambaWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeMamba", {InstanceMethod<&MambaWrap::forward>("forward")});
  }
  explicit MambaWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MambaWrap>(info) {}
  std::shared_ptr<const MambaModel> model;

 private:
  // forward(tokens i32 [B, T], modality i32 [B, T] | null, conv | null, ssm | null, slots i32 [B] | null,
  //         lastOnly, decode)
  Napi::Value forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 7)
      return rejected(env, make_error(Code::ARG, "forward(tokens, modality, conv, ssm, slots, lastOnly, decode)"));
    Tensor tokens, modality, slots;
    MambaState st;
    auto present = [&](int i) { return !info[i].IsNull() && !info[i].IsUndefined(); };
    Status s = TensorWrap::unwrap(env, info[0], "tokens", &tokens);
    if (s.ok() && present(1)) s = TensorWrap::unwrap(env, info[1], "modality", &modality);
    const bool has_state = present(2);
    if (s.ok() && has_state) s = TensorWrap::unwrap(env, info[2], "state.conv", &st.conv);
    if (s.ok() && has_state) s = TensorWrap::unwrap(env, info[3], "state.ssm", &st.ssm);
    if (s.ok() && present(4)) s = TensorWrap::unwrap(env, info[4], "slots", &slots);
    const bool last_only = info[5].ToBoolean().Value(), decode = info[6].ToBoolean().Value();
    const bool ids = tokens.dtype == DType::I32 && tokens.ndim() == 2;
    const bool embeds = tokens.dtype == DType::F32 && tokens.ndim() == 3 && tokens.dim(2) == model->d.D;
    if (s.ok() && (!(ids || embeds) || tokens.dim(0) < 1 || tokens.dim(1) < 1))
      s = make_error(Code::SHAPE, "mamba forward: inputs must be token ids i32 [B >= 1, T >= 1] or embeddings f32 [B, T, D=" +
                                      std::to_string(model->d.D) + "], got " + tokens.desc());
    if (s.ok() && tokens.device() != model->dev)
      s = make_error(Code::DEVICE, "mamba forward: tokens on " + tokens.device().str() + ", model on " + model->dev.str());
    if (s.ok() && decode && tokens.dim(1) != 1) s = make_error(Code::SHAPE, "mamba step: one token per sequence, got " + tokens.desc());
    int64_t S = 0;
    if (s.ok() && has_state) s = mamba_validate_state(*model, st, &S);
    if (s.ok() && has_state && !slots.storage && S != tokens.dim(0))
      s = make_error(Code::SHAPE, "mamba forward: state holds " + std::to_string(S) + " sequences, tokens have batch " +
                                      std::to_string(tokens.dim(0)));
    if (s.ok() && slots.storage && (slots.dtype != DType::I32 || slots.numel() != tokens.dim(0) || slots.device() != model->dev))
      s = make_error(Code::SHAPE, "mamba forward: slots must be i32 [B] on the model's device, got " + slots.desc());
    if (!s.ok()) return rejected(env, s);
    return enqueue(env, std::make_unique<ForwardJob>(model, tokens, modality, has_state, st, slots, last_only, decode));
  }
};

// mambaCreate(dims {D, L, V, N, E, K, R, eps, M, Ne, topk, F, act, renorm},
//             weights {embedding, lm_head, norm_f, expert_counts, layers: [{kind, ...}]}, device)
Napi::Value MambaCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = std::make_shared<MambaModel>();
  Status s = info.Length() >= 3 && info[0].IsObject() && info[1].IsObject() && info[2].IsString()
                 ? Status::Ok() : make_error(Code::ARG, "mambaCreate(dims, weights, device)");
  if (s.ok()) s = parse_device(info[2].As<Napi::String>().Utf8Value(), &m->dev);
  Napi::Object dims = info[0].As<Napi::Object>(), w = info[1].As<Napi::Object>();
  for (auto [k, p] : {std::pair<const char*, int64_t*>{"D", &m->d.D}, {"L", &m->d.L}, {"V", &m->d.V}, {"N", &m->d.N},
                      {"E", &m->d.E}, {"K", &m->d.K}, {"R", &m->d.R}, {"M", &m->d.M}, {"Ne", &m->d.Ne},
                      {"topk", &m->d.topk}, {"F", &m->d.F}})
    if (s.ok()) s = get_dim(dims, k, p);
  int64_t act = 0, renorm = 0;
  if (s.ok()) s = get_dim(dims, "act", &act);
  if (s.ok()) s = get_dim(dims, "renorm", &renorm);
  m->d.act = static_cast<int>(act), m->d.renorm = renorm != 0;
  if (s.ok()) m->d.eps = static_cast<float>(dims.Get("eps").ToNumber().DoubleValue());
  if (s.ok()) s = get_tensor(env, w, "expert_counts", &m->expert_counts);
  if (s.ok()) s = get_tensor(env, w, "embedding", &m->embedding);
  if (s.ok()) s = get_tensor(env, w, "lm_head", &m->lm_head);
  if (s.ok()) s = get_tensor(env, w, "norm_f", &m->norm_f);
  Napi::Value lv = w.Get("layers");
  if (s.ok() && !lv.IsArray()) s = make_error(Code::ARG, "mambaCreate: weights.layers must be an array");
  if (s.ok()) {
    Napi::Array layers = lv.As<Napi::Array>();
    m->layers.resize(layers.Length());
    for (uint32_t i = 0; s.ok() && i < layers.Length(); ++i) {
      Napi::Object lo = layers.Get(i).As<Napi::Object>();
      MambaLayer& l = m->layers[i];
      int64_t kind = 0;
      s = get_dim(lo, "kind", &kind);
      l.kind = kind == 1 ? BlockKind::MOE : BlockKind::MAMBA;
      for (auto [k, p] : {std::pair<const char*, Tensor*>{"norm", &l.norm}, {"in_proj", &l.in_proj},
                          {"in_proj_bias", &l.in_proj_bias}, {"conv_w", &l.conv_w}, {"conv_b", &l.conv_b},
                          {"x_proj", &l.x_proj}, {"dt_proj", &l.dt_proj}, {"dt_bias", &l.dt_bias}, {"A", &l.A},
                          {"D", &l.Dskip}, {"out_proj", &l.out_proj}, {"out_proj_bias", &l.out_proj_bias},
                          {"router", &l.router}, {"w_in", &l.w_in}, {"w_out", &l.w_out}})
        if (s.ok()) s = get_tensor(env, lo, k, p);
    }
  }
  if (s.ok()) s = mamba_validate(*m);
  if (!s.ok()) {
    to_js_error(env, s).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = instance(env).mamba_ctor.New({});
  MambaWrap::Unwrap(o)->model = std::move(m);
  return o;
}

}  // namespace

void register_models(Napi::Env env, Napi::Object exports) {
  instance(env).mamba_ctor = Napi::Persistent(MambaWrap::define(env));
  exports.Set("mambaCreate", Napi::Function::New(env, MambaCreate, "mambaCreate"));
}

}  // namespace mk
