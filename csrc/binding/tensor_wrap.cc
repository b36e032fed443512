#include "binding/tensor_wrap.h"

#include <cstring>
#include <memory>

#include "binding/async_job.h"
#include "binding/instance.h"

namespace mk {

Status parse_device(const std::string& s, Device* out) {
  if (s == "cpu") { *out = {DeviceType::CPU, 0}; return Status::Ok(); }
  if (s == "cuda") { *out = {DeviceType::CUDA, 0}; return Status::Ok(); }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 8) {
    int idx = 0;
    for (size_t i = 5; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return make_error(Code::DEVICE, "bad device '" + s + "'");
      idx = idx * 10 + (s[i] - '0');
    }
    *out = {DeviceType::CUDA, idx};
    return Status::Ok();
  }
  return make_error(Code::DEVICE, "bad device '" + s + "' (expected cpu, cuda or cuda:N)");
}

Napi::Function TensorWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {InstanceAccessor<&TensorWrap::dtype>("dtype"),
                      InstanceAccessor<&TensorWrap::shape>("shape"),
                      InstanceAccessor<&TensorWrap::device>("device"),
                      InstanceAccessor<&TensorWrap::nbytes>("nbytes"),
                      InstanceAccessor<&TensorWrap::disposed>("disposed"),
                      InstanceMethod<&TensorWrap::read>("read"),
                      InstanceMethod<&TensorWrap::to>("to"),
                      InstanceMethod<&TensorWrap::dispose>("dispose")});
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {}

Napi::Object TensorWrap::wrap(Napi::Env env, Tensor t) {
  Napi::Object o = instance(env).tensor_ctor.New({});
  TensorWrap* w = Unwrap(o);
  w->t_ = std::move(t);
  w->disposed_ = false;
  return o;
}

Status TensorWrap::unwrap(Napi::Env env, Napi::Value v, const char* what, Tensor* out) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(instance(env).tensor_ctor.Value()))
    return make_error(Code::ARG, std::string(what) + " is not a mambakit tensor");
  TensorWrap* w = Unwrap(v.As<Napi::Object>());
  if (w->disposed_) return make_error(Code::ARG, std::string(what) + " is a disposed tensor");
  *out = w->t_;
  return Status::Ok();
}

bool TensorWrap::live(Napi::Env env) {
  if (!disposed_) return true;
  to_js_error(env, make_error(Code::ARG, "tensor is disposed")).ThrowAsJavaScriptException();
  return false;
}

Napi::Value TensorWrap::dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(t_.dtype));
}
Napi::Value TensorWrap::shape(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), t_.shape.size());
  for (size_t i = 0; i < t_.shape.size(); ++i) a.Set(i, Napi::Number::New(info.Env(), static_cast<double>(t_.shape[i])));
  return a;
}
Napi::Value TensorWrap::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), t_.storage ? t_.device().str() : "none");
}
Napi::Value TensorWrap::nbytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(t_.nbytes()));
}
Napi::Value TensorWrap::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value TensorWrap::dispose(const Napi::CallbackInfo& info) {
  disposed_ = true;
  t_ = Tensor();  // queued jobs hold their own references; memory goes when the last one ends
  return info.Env().Undefined();
}

namespace {

// Copies a tensor into a JS ArrayBuffer created up front, widening f16/bf16 to f32 if asked.
class ReadJob : public AsyncJob {
 public:
  ReadJob(Napi::Env env, Tensor t, bool as_f32) : t_(std::move(t)), as_f32_(as_f32) {
    const DType out = as_f32_ ? DType::F32 : t_.dtype;
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, static_cast<size_t>(t_.numel()) * dtype_size(out));
    dst_ = ab.Data();
    ref_ = Napi::Persistent(ab.As<Napi::Object>());
  }
  Status run() override {
    const int64_t n = t_.numel();
    if (n == 0) return Status::Ok();
    const void* src = t_.raw();
    std::unique_ptr<char[]> staging;
    if (t_.device().is_cuda()) {
      staging.reset(new char[t_.nbytes()]);
      MK_RETURN_IF_ERROR(gpu::copy_d2h(t_.device().index, staging.get(), src, t_.nbytes()));
      src = staging.get();
    }
    convert_host(src, t_.dtype, dst_, as_f32_ ? DType::F32 : t_.dtype, n);
    return Status::Ok();
  }
  Napi::Value result(Napi::Env) override { return ref_.Value(); }

 private:
  Tensor t_;
  bool as_f32_;
  void* dst_ = nullptr;
  Napi::ObjectReference ref_;
};

class CopyJob : public AsyncJob {
 public:
  CopyJob(Tensor src, Tensor dst) : src_(std::move(src)), dst_(std::move(dst)) {}
  Status run() override {
    const size_t n = src_.nbytes();
    if (n == 0) return Status::Ok();
    const Device s = src_.device(), d = dst_.device();
    if (!s.is_cuda() && !d.is_cuda()) { std::memcpy(dst_.raw(), src_.raw(), n); return Status::Ok(); }
    if (!s.is_cuda()) return gpu::copy_h2d(d.index, dst_.raw(), src_.raw(), n);
    if (!d.is_cuda()) return gpu::copy_d2h(s.index, dst_.raw(), src_.raw(), n);
    if (s.index == d.index) return gpu::copy_d2d(d.index, dst_.raw(), src_.raw(), n);
    // across GPUs: through the host (rare; keeps the runtime free of peer-access state)
    std::unique_ptr<char[]> host(new char[n]);
    MK_RETURN_IF_ERROR(gpu::copy_d2h(s.index, host.get(), src_.raw(), n));
    return gpu::copy_h2d(d.index, dst_.raw(), host.get(), n);
  }
  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, dst_); }

 private:
  Tensor src_, dst_;
};

}  // namespace

Napi::Value TensorWrap::read(const Napi::CallbackInfo& info) {
  if (!live(info.Env())) return info.Env().Undefined();
  const bool as_f32 = info.Length() > 0 && info[0].ToBoolean().Value() &&
                      (t_.dtype == DType::F16 || t_.dtype == DType::BF16);
  return enqueue(info.Env(), std::make_unique<ReadJob>(info.Env(), t_, as_f32));
}

Napi::Value TensorWrap::to(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!live(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsString())
    return rejected(env, make_error(Code::ARG, "to(device): device must be a string"));
  Device dev;
  Status st = parse_device(info[0].As<Napi::String>().Utf8Value(), &dev);
  Tensor dst;
  if (st.ok()) st = Tensor::create(dev, t_.dtype, t_.shape, &dst);
  if (!st.ok()) return rejected(env, st);
  return enqueue(env, std::make_unique<CopyJob>(t_, std::move(dst)));
}

}  // namespace mk
