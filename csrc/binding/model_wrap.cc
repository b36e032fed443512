// N-API for model plans, for every family (the registry in models/ builds them):
//   createModel(family, config {key: number | string | boolean | number[] | string[]},
//               weights {checkpoint name: tensor}, device) -> NativeModel
//   NativeModel.forward({ input, modality?, state?, slots?, mode: 'forward' | 'prefill' | 'step',
//                         edits?: [{ after, op: 'add', rows, values }
//                                | { after, op: 'reft', rows, editor, R, W, b, formula, activation }] }) -> Promise<tensor>
//   (attention models also: offset?, keys?, keyBias?, logitsFrom?, logitsCount?)
//   NativeModel.newState(slots, context?) -> NativeState { slots, zeroSlot(slot) -> Promise<void>, dispose() }
//   NativeModel.counters() -> tensor | null;  NativeModel.blocks() -> block kinds
// This file only unwraps arguments, maps errors and queues work: every model check is the plan's.
#include <cmath>
#include <memory>
#include <string>

#include "binding/async_job.h"
#include "binding/model_wrap.h"
#include "binding/tensor_wrap.h"
#include "models/registry.h"

namespace mk {
namespace {

Status to_config_value(Napi::Value v, const std::string& key, ConfigValue* out) {
  if (v.IsNumber()) {
    out->kind = ConfigValue::Kind::NUMBER, out->number = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsString()) {
    out->kind = ConfigValue::Kind::STRING, out->str = v.As<Napi::String>().Utf8Value();
  } else if (v.IsBoolean()) {
    out->kind = ConfigValue::Kind::BOOL, out->flag = v.As<Napi::Boolean>().Value();
  } else if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    const bool strings = a.Length() > 0 && a.Get(0u).IsString();
    out->kind = strings ? ConfigValue::Kind::STRINGS : ConfigValue::Kind::NUMBERS;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (strings ? !e.IsString() : !e.IsNumber())
        return make_error(Code::ARG, "createModel: config." + key + " must hold only numbers or only strings");
      if (strings) out->strings.push_back(e.As<Napi::String>().Utf8Value());
      else out->numbers.push_back(e.As<Napi::Number>().DoubleValue());
    }
  } else {
    return make_error(Code::ARG, "createModel: config." + key + " must be a number, string, boolean or list");
  }
  return Status::Ok();
}

Status unwrap_object_tensors(Napi::Env env, Napi::Object o, std::map<std::string, Tensor>* out) {
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Tensor t;
    MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, o.Get(k), ("weight " + k).c_str(), &t));
    (*out)[k] = std::move(t);
  }
  return Status::Ok();
}

bool present(Napi::Value v) { return !v.IsUndefined() && !v.IsNull(); }

class StateWrap : public Napi::ObjectWrap<StateWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeState",
                       {InstanceAccessor<&StateWrap::slots>("slots"), InstanceMethod<&StateWrap::zero_slot>("zeroSlot"),
                        InstanceMethod<&StateWrap::dispose>("dispose")});
  }
  explicit StateWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StateWrap>(info) {}
  static StateWrap* of(Napi::Value v) {
    if (!v.IsObject()) return nullptr;
    Napi::Object o = v.As<Napi::Object>();
    return o.InstanceOf(instance(v.Env()).state_ctor.Value()) ? Unwrap(o) : nullptr;
  }
  std::shared_ptr<const Plan> plan;
  PlanState state;  // disposing empties the parts: a call in flight keeps its own copy

 private:
  Napi::Value slots(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state.slots)); }
  Napi::Value zero_slot(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    for (Tensor& t : state.parts) t.storage.reset();
    state.disposed = true;
    return info.Env().Undefined();
  }
};

class ZeroSlotJob : public AsyncJob {
 public:
  ZeroSlotJob(std::shared_ptr<const Plan> p, PlanState s, int64_t slot) : p_(std::move(p)), s_(std::move(s)), slot_(slot) {}
  Status run() override { return p_->zero_slot(s_, slot_); }
  Napi::Value result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<const Plan> p_;
  PlanState s_;
  int64_t slot_;
};

Napi::Value StateWrap::zero_slot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return rejected(env, make_error(Code::ARG, "zeroSlot(slot)"));
  const double slot = info[0].As<Napi::Number>().DoubleValue();
  if (!(std::isfinite(slot) && slot == std::floor(slot) && std::fabs(slot) < 9e15))
    return rejected(env, make_error(Code::ARG, "zeroSlot: slot must be an integer"));
  return enqueue(env, std::make_unique<ZeroSlotJob>(plan, state, static_cast<int64_t>(slot)));  // Plan::zero_slot checks
}

class ForwardJob : public AsyncJob {
 public:
  ForwardJob(std::shared_ptr<const Plan> p, CallInputs in) : p_(std::move(p)), in_(std::move(in)) {}
  Status run() override { return p_->forward(in_, &out_); }
  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, out_); }

 private:
  std::shared_ptr<const Plan> p_;
  CallInputs in_;
  Tensor out_;
};

Status parse_call(Napi::Env env, Napi::Value v, CallInputs* in) {
  if (!v.IsObject()) return make_error(Code::ARG, "forward({ input, modality?, state?, slots?, mode, edits? })");
  Napi::Object o = v.As<Napi::Object>();
  MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, o.Get("input"), "input", &in->input));
  if (present(o.Get("modality"))) MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, o.Get("modality"), "modality", &in->modality));
  if (present(o.Get("slots"))) MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, o.Get("slots"), "slots", &in->slots));
  if (present(o.Get("state"))) {
    StateWrap* s = StateWrap::of(o.Get("state"));
    if (!s) return make_error(Code::ARG, "forward: state must be a state made by this library's newState()");
    in->has_state = true;
    in->state = s->state;
  }
  const std::string mode = o.Get("mode").IsString() ? o.Get("mode").As<Napi::String>().Utf8Value() : "forward";
  if (mode != "forward" && mode != "prefill" && mode != "step")
    return make_error(Code::ARG, "forward: mode must be 'forward', 'prefill' or 'step', got '" + mode + "'");
  in->last_only = mode != "forward";
  in->decode = mode == "step";
  // attention models: where the tokens sit in the state's K/V cache, how many keys they see, and
  // which positions get logits (every check is the plan's)
  const auto integer = [&](const char* key, int64_t dflt, int64_t* out) -> Status {
    Napi::Value x = o.Get(key);
    if (!present(x)) return (*out = dflt, Status::Ok());
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1.5;
    if (!(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15))
      return make_error(Code::ARG, std::string("forward: ") + key + " must be an integer");
    *out = static_cast<int64_t>(d);
    return Status::Ok();
  };
  MK_RETURN_IF_ERROR(integer("offset", 0, &in->pos0));
  MK_RETURN_IF_ERROR(integer("keys", 0, &in->keys));
  MK_RETURN_IF_ERROR(integer("logitsFrom", 0, &in->head_from));
  MK_RETURN_IF_ERROR(integer("logitsCount", -1, &in->head_count));
  if (in->last_only && (in->head_from != 0 || in->head_count != -1))
    return make_error(Code::ARG, "forward: logitsFrom / logitsCount are for mode 'forward'");
  if (present(o.Get("keyBias"))) MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, o.Get("keyBias"), "keyBias", &in->key_bias));
  Napi::Value ev = o.Get("edits");
  if (!present(ev)) return Status::Ok();
  if (!ev.IsArray()) return make_error(Code::ARG, "forward: edits must be an array");
  Napi::Array ea = ev.As<Napi::Array>();
  for (uint32_t i = 0; i < ea.Length(); ++i) {
    if (!ea.Get(i).IsObject()) return make_error(Code::ARG, "forward: edits[" + std::to_string(i) + "] must be an object");
    Napi::Object eo = ea.Get(i).As<Napi::Object>();
    Edit e;
    const std::string at = "forward: edits[" + std::to_string(i) + "].";
    const auto str = [&](const char* key) { return eo.Get(key).IsString() ? eo.Get(key).As<Napi::String>().Utf8Value() : ""; };
    const std::string op = str("op");
    if (op != "add" && op != "reft") return make_error(Code::ARG, at + "op must be 'add' or 'reft', got '" + op + "'");
    e.after = eo.Get("after").IsNumber() ? static_cast<int64_t>(eo.Get("after").As<Napi::Number>().DoubleValue()) : -1;
    MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("rows"), "edit rows", &e.rows));
    if (op == "add") {
      e.op = EditOp::ADD;
      MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("values"), "edit values", &e.values));
    } else {
      e.op = EditOp::REFT;
      MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("editor"), "edit editor", &e.editor));
      MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("R"), "edit R", &e.R));
      MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("W"), "edit W", &e.W));
      MK_RETURN_IF_ERROR(TensorWrap::unwrap(env, eo.Get("b"), "edit b", &e.b));
      if (!reft_formula_from_name(str("formula"), &e.formula))
        return make_error(Code::ARG, at + "formula must be 'pyreft' or 'mrt', got '" + str("formula") + "'");
      if (!reft_act_from_name(str("activation"), &e.act))
        return make_error(Code::ARG, at + "activation must be 'identity', 'relu', 'gelu', 'silu' or 'tanh', got '" +
                                         str("activation") + "'");
    }
    in->edits.push_back(std::move(e));
  }
  return Status::Ok();
}

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&ModelWrap::forward>("forward"), InstanceMethod<&ModelWrap::new_state>("newState"),
                        InstanceMethod<&ModelWrap::counters>("counters"), InstanceMethod<&ModelWrap::blocks>("blocks"),
                        InstanceMethod<&ModelWrap::dispose>("dispose")});
  }
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
  std::shared_ptr<const Plan> plan;

 private:
  Status live() const { return plan ? Status::Ok() : make_error(Code::ARG, "model is disposed"); }
  // Drops the plan (its workspace arenas and captured graphs); calls in flight keep their own reference.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    plan.reset();
    return info.Env().Undefined();
  }
  Napi::Value forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CallInputs in;
    Status s = live();
    if (s.ok()) s = parse_call(env, info.Length() > 0 ? info[0] : env.Undefined(), &in);
    if (s.ok()) s = plan->check_call(in);
    if (!s.ok()) return rejected(env, s);
    return enqueue(env, std::make_unique<ForwardJob>(plan, std::move(in)));
  }
  Napi::Value new_state(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    const double ctx = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    PlanState st;
    Status s = live();
    if (s.ok())
      s = n >= 1 && n == static_cast<int64_t>(n) && n < 1e9 && ctx >= 0 && ctx == static_cast<int64_t>(ctx) && ctx < 1e9
              ? plan->new_state(static_cast<int64_t>(n), static_cast<int64_t>(ctx), &st)
              : make_error(Code::ARG, "newState(slots >= 1, context? >= 0)");
    if (!s.ok()) {
      to_js_error(env, s).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = instance(env).state_ctor.New({});
    StateWrap* w = StateWrap::Unwrap(o);
    w->plan = plan;
    w->state = std::move(st);
    return o;
  }
  Napi::Value counters(const Napi::CallbackInfo& info) {
    if (!plan) return info.Env().Null();
    const Tensor& c = plan->counters();
    return c.storage ? Napi::Value(TensorWrap::wrap(info.Env(), c)) : info.Env().Null();
  }
  Napi::Value blocks(const Napi::CallbackInfo& info) {
    if (!plan) return Napi::Array::New(info.Env());
    Napi::Array a = Napi::Array::New(info.Env(), plan->blocks().size());
    for (uint32_t i = 0; i < plan->blocks().size(); ++i) a.Set(i, Napi::String::New(info.Env(), plan->blocks()[i]->kind()));
    return a;
  }
};

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Status s = info.Length() >= 4 && info[0].IsString() && info[1].IsObject() && info[2].IsObject() && info[3].IsString()
                 ? Status::Ok()
                 : make_error(Code::ARG, "createModel(family, config, weights, device)");
  Device dev;
  std::map<std::string, ConfigValue> values;
  std::map<std::string, Tensor> weights;
  std::string family;
  if (s.ok()) family = info[0].As<Napi::String>().Utf8Value();
  if (s.ok()) s = parse_device(info[3].As<Napi::String>().Utf8Value(), &dev);
  if (s.ok()) {
    Napi::Object cfg = info[1].As<Napi::Object>();
    Napi::Array keys = cfg.GetPropertyNames();
    for (uint32_t i = 0; s.ok() && i < keys.Length(); ++i) {
      const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      if (present(cfg.Get(k))) s = to_config_value(cfg.Get(k), k, &values[k]);
    }
  }
  if (s.ok()) s = unwrap_object_tensors(env, info[2].As<Napi::Object>(), &weights);
  std::unique_ptr<Plan> plan;
  if (s.ok()) {
    WeightMap w(family, std::move(weights));
    s = build_model(family, Config(family, std::move(values)), w, dev, &plan);
  }
  if (!s.ok()) {
    to_js_error(env, s).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = instance(env).model_ctor.New({});
  ModelWrap::Unwrap(o)->plan = std::move(plan);
  return o;
}

Napi::Value ModelFamilies(const Napi::CallbackInfo& info) {
  const auto names = family_names();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (uint32_t i = 0; i < names.size(); ++i) a.Set(i, Napi::String::New(info.Env(), names[i]));
  return a;
}

}  // namespace

void register_models(Napi::Env env, Napi::Object exports) {
  instance(env).model_ctor = Napi::Persistent(ModelWrap::define(env));
  instance(env).state_ctor = Napi::Persistent(StateWrap::define(env));
  exports.Set("createModel", Napi::Function::New(env, CreateModel, "createModel"));
  exports.Set("modelFamilies", Napi::Function::New(env, ModelFamilies, "modelFamilies"));
}

}  // namespace mk
