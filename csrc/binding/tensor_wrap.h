// The JS handle of a native Tensor. Every method checks `disposed` first.
#pragma once
#include <napi.h>

#include "core/tensor.h"

namespace mk {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, Tensor t);  // a new JS handle owning t
  // The tensor behind a JS value, or an error Status (not a handle, or disposed).
  static Status unwrap(Napi::Env env, Napi::Value v, const char* what, Tensor* out);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  const Tensor& tensor() const { return t_; }

 private:
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value nbytes(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);     // (asF32: bool) -> Promise<ArrayBuffer>
  Napi::Value to(const Napi::CallbackInfo& info);       // (device: string) -> Promise<handle>
  Napi::Value dispose(const Napi::CallbackInfo& info);
  bool live(Napi::Env env);  // throws E_ARG when disposed

  Tensor t_;
  bool disposed_ = true;
};

// Parses "cpu", "cuda", "cuda:N".
Status parse_device(const std::string& s, Device* out);

}  // namespace mk
