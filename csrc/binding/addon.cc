// The addon's entry: module functions. N-API only; all work is in core/, ops/, cpu/, cuda/.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>

#include "binding/async_job.h"
#include "binding/instance.h"
#include "binding/model_wrap.h"
#include "binding/io.h"
#include "binding/tensor_wrap.h"
#include "core/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/roofline.h"
#include "core/threadpool.h"
#include "ops/op.h"

namespace mk {
namespace {

void throw_status(Napi::Env env, const Status& st) { to_js_error(env, st).ThrowAsJavaScriptException(); }

// Dims must be integers in [0, 2^40]: checked before anything is allocated.
Status parse_shape(Napi::Value v, Shape* out) {
  if (!v.IsArray()) return make_error(Code::SHAPE, "shape must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) return make_error(Code::SHAPE, "at most 8 dims are supported");
  out->clear();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && x <= 1099511627776.0 && std::floor(x) == x))
      return make_error(Code::SHAPE, "shape dims must be integers >= 0, got dim " + std::to_string(i));
    out->push_back(static_cast<int64_t>(x));
  }
  return Status::Ok();
}

// tensorFrom(view, srcDtype, dstDtype, shape, device) -> handle. Converts on the host, then copies
// to the device (stream-ordered, synchronous: a fresh allocation has no pending readers).
Napi::Value TensorFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsNumber() || !info[4].IsString()) {
    throw_status(env, make_error(Code::ARG, "tensorFrom(view, srcDtype, dstDtype, shape, device)"));
    return env.Undefined();
  }
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  const int sd = info[1].As<Napi::Number>().Int32Value(), dd = info[2].As<Napi::Number>().Int32Value();
  Shape shape;
  Device dev;
  Status st = parse_shape(info[3], &shape);
  if (st.ok()) st = parse_device(info[4].As<Napi::String>().Utf8Value(), &dev);
  if (st.ok() && (sd < 0 || sd >= kNumDTypes || dd < 0 || dd >= kNumDTypes)) st = make_error(Code::DTYPE, "bad dtype id");
  if (st.ok()) {
    const DType s = static_cast<DType>(sd), d = static_cast<DType>(dd);
    const int64_t n = shape_numel(shape);
    if (static_cast<int64_t>(view.ByteLength()) != n * dtype_size(s))
      st = make_error(Code::SHAPE, "data has " + std::to_string(view.ByteLength() / dtype_size(s)) + " elements of " +
                                       dtype_name(s) + ", shape " + shape_str(shape) + " needs " + std::to_string(n));
    else if (s != d && !((is_float(s) && is_float(d)) || (s == DType::I32 && d == DType::I32)))
      st = make_error(Code::DTYPE, std::string("cannot convert ") + dtype_name(s) + " data to " + dtype_name(d));
    if (st.ok()) {
      const char* src = static_cast<const char*>(view.ArrayBuffer().Data()) + view.ByteOffset();
      Tensor host;
      st = Tensor::create(Device{}, d, shape, &host);
      if (st.ok()) convert_host(src, s, host.raw(), d, n);
      if (st.ok() && dev.is_cuda()) {
        Tensor t;
        st = Tensor::create(dev, d, shape, &t);
        if (st.ok() && n > 0) st = gpu::copy_h2d(dev.index, t.raw(), host.raw(), host.nbytes());
        if (st.ok()) return TensorWrap::wrap(env, t);
      } else if (st.ok()) {
        return TensorWrap::wrap(env, host);
      }
    }
  }
  throw_status(env, st);
  return env.Undefined();
}

class OpJob : public AsyncJob {
 public:
  OpJob(const OpDef& op, std::vector<Tensor> in, Attrs attrs, std::vector<Tensor> out)
      : op_(op), in_(std::move(in)), attrs_(std::move(attrs)), out_(std::move(out)) {
    for (const Tensor& t : in_) ptrs_.push_back(t.storage ? &t : nullptr);
  }
  Status run() override { return execute_op(op_, ptrs_, attrs_, out_); }
  Napi::Value result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); ++i) a.Set(i, TensorWrap::wrap(env, out_[i]));
    return a;
  }

 private:
  const OpDef& op_;
  std::vector<Tensor> in_;
  Inputs ptrs_;
  Attrs attrs_;
  std::vector<Tensor> out_;
};

// runOp(name, inputs: (handle | null)[], attrs: {[k]: number}) -> Promise<handle[]>
Napi::Value RunOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsObject())
    return rejected(env, make_error(Code::ARG, "runOp(name, inputs, attrs)"));
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const OpDef* op = find_op(name);
  if (!op) return rejected(env, make_error(Code::ARG, "unknown op '" + name + "'"));
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<Tensor> in(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    const std::string what = name + ": input " + std::to_string(i);
    Status st = TensorWrap::unwrap(env, v, what.c_str(), &in[i]);
    if (!st.ok()) return rejected(env, st);
  }
  Attrs attrs;
  Napi::Object ao = info[2].As<Napi::Object>();
  Napi::Array keys = ao.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).ToString().Utf8Value();
    Napi::Value v = ao.Get(k);
    if (!v.IsNumber()) return rejected(env, make_error(Code::ARG, name + ": attribute '" + k + "' must be a number"));
    attrs.values[k] = v.As<Napi::Number>().DoubleValue();
  }
  Inputs ptrs;
  for (const Tensor& t : in) ptrs.push_back(t.storage ? &t : nullptr);
  std::vector<Tensor> out;
  Status st = prepare_op(*op, ptrs, attrs, &out);
  if (!st.ok()) return rejected(env, st);
  return enqueue(env, std::make_unique<OpJob>(*op, std::move(in), std::move(attrs), std::move(out)));
}

Napi::Object stats_object(Napi::Env env, const MemoryStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tensors", static_cast<double>(s.live_tensors));
  o.Set("bytes", static_cast<double>(s.live_bytes));
  o.Set("peakBytes", static_cast<double>(s.peak_bytes));
  o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
  return o;
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", stats_object(env, memory_stats(Device{})));
  for (int d = 0; d < gpu::device_count(); ++d) {
    const Device dev{DeviceType::CUDA, d};
    o.Set(dev.str(), stats_object(env, memory_stats(dev)));
  }
  return o;
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  empty_cache();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const gpu::Availability& a = gpu::availability();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", gpu::compiled());
  cuda.Set("status", a.status);
  cuda.Set("reason", a.reason);
  Napi::Array archs = Napi::Array::New(env);
  for (size_t i = 0; i < a.archs.size();) {
    const size_t j = std::min(a.archs.find(',', i), a.archs.size());
    archs.Set(archs.Length(), a.archs.substr(i, j - i));
    i = j + 1;
  }
  cuda.Set("archs", archs);
  cuda.Set("runtime", gpu::cuda_version_name(a.runtime_version));
  cuda.Set("driver", gpu::cuda_version_name(a.driver_version));
  o.Set("cuda", cuda);
  Napi::Array gpus = Napi::Array::New(env);
  for (int d = 0; d < gpu::device_count(); ++d) {
    gpu::Props p;
    if (!gpu::props(d, &p).ok()) continue;
    Napi::Object g = Napi::Object::New(env);
    g.Set("index", d);
    g.Set("name", p.name);
    g.Set("memoryBytes", static_cast<double>(p.total_memory));
    g.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    g.Set("multiprocessors", p.multiprocessors);
    gpus.Set(gpus.Length(), g);
  }
  o.Set("gpus", gpus);
  o.Set("cpuFeatures", cpu_features().str());
  o.Set("cpuKernels", use_avx2_kernels() ? "avx2" : "portable");
  o.Set("bf16Gemm", use_avx512bf16_kernels() ? "avx512bf16" : "f32");
  o.Set("threads", num_threads());
  Napi::Array ops = Napi::Array::New(env);
  for (const std::string& n : op_names()) ops.Set(ops.Length(), n);
  o.Set("ops", ops);
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(n >= 1 && n <= 1024 && std::floor(n) == n)) {
    throw_status(env, make_error(Code::ARG, "setThreads(n): n must be an integer in [1, 1024]"));
    return env.Undefined();
  }
  set_num_threads(static_cast<int>(n));
  return env.Undefined();
}

// Resolves once everything queued before it has run.
class BarrierJob : public AsyncJob {
 public:
  Status run() override { return Status::Ok(); }
  Napi::Value result(Napi::Env env) override { return env.Undefined(); }
};
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return enqueue(info.Env(), std::make_unique<BarrierJob>());
}

// Benchmark ceilings (bench scripts only): a number computed on the executor.
class NumberJob : public AsyncJob {
 public:
  explicit NumberJob(std::function<double()> fn) : fn_(std::move(fn)) {}
  Status run() override { value_ = fn_(); return Status::Ok(); }
  Napi::Value result(Napi::Env env) override { return Napi::Number::New(env, value_); }

 private:
  std::function<double()> fn_;
  double value_ = 0;
};

Napi::Value BenchStreamRead(const Napi::CallbackInfo& info) {
  const double mb = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 512;
  if (!(mb >= 1 && mb <= 65536)) return rejected(info.Env(), make_error(Code::ARG, "streamRead(mb): mb in [1, 65536]"));
  return enqueue(info.Env(), std::make_unique<NumberJob>([mb] { return cpu::stream_read_gbs(static_cast<size_t>(mb) << 20); }));
}

Napi::Value BenchFmaPeak(const Napi::CallbackInfo& info) {
  return enqueue(info.Env(), std::make_unique<NumberJob>([] { return cpu::fma_peak_gflops(); }));
}

Napi::Value BenchBf16DotPeak(const Napi::CallbackInfo& info) {
  return enqueue(info.Env(), std::make_unique<NumberJob>([] { return cpu::bf16_dot_peak_gflops(); }));
}

// naiveGemm(x f32 [M, K] cpu, w f32 [N, K] cpu) -> Promise<seconds>, one thread, plain loops.
Napi::Value BenchNaiveGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor x, w;
  Status st = info.Length() < 2 ? make_error(Code::ARG, "naiveGemm(x, w)") : TensorWrap::unwrap(env, info[0], "x", &x);
  if (st.ok()) st = TensorWrap::unwrap(env, info[1], "w", &w);
  if (st.ok() && (x.dtype != DType::F32 || w.dtype != DType::F32 || x.ndim() != 2 || w.ndim() != 2 ||
                  x.dim(1) != w.dim(1) || x.device().is_cuda() || w.device().is_cuda()))
    st = make_error(Code::SHAPE, "naiveGemm: x f32 [M, K] and w f32 [N, K] on the cpu, got " + x.desc() + ", " + w.desc());
  if (!st.ok()) return rejected(env, st);
  return enqueue(env, std::make_unique<NumberJob>([x, w] {
    std::vector<float> y(static_cast<size_t>(x.dim(0) * w.dim(0)));
    const auto t0 = std::chrono::steady_clock::now();
    cpu::naive_gemm(x.ptr<float>(), w.ptr<float>(), y.data(), x.dim(0), w.dim(0), x.dim(1));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }));
}

// gemmLoop(x f32 [M, K] cpu, ws: w [N, K][] cpu, reps) -> Promise<seconds per GEMM>: the kernel
// alone, back to back in one job, as a model plan calls it (no per-op allocation or JS round trip).
Napi::Value BenchGemmLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor x;
  std::vector<Tensor> ws;
  Status st = info.Length() < 3 || !info[1].IsArray() || !info[2].IsNumber() ? make_error(Code::ARG, "gemmLoop(x, ws, reps)")
                                                                             : TensorWrap::unwrap(env, info[0], "x", &x);
  const int reps = st.ok() ? info[2].As<Napi::Number>().Int32Value() : 0;
  if (st.ok()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; st.ok() && i < a.Length(); ++i) {
      ws.emplace_back();
      st = TensorWrap::unwrap(env, a.Get(i), "w", &ws.back());
    }
  }
  if (st.ok() && (ws.empty() || reps < 1 || x.dtype != DType::F32 || x.ndim() != 2 || x.device().is_cuda()))
    st = make_error(Code::ARG, "gemmLoop: x f32 [M, K] on the cpu, at least one w, reps >= 1");
  for (const Tensor& w : ws)
    if (st.ok() && (w.ndim() != 2 || w.dim(1) != x.dim(1) || !is_float(w.dtype) || w.dim(0) != ws[0].dim(0) || w.device().is_cuda()))
      st = make_error(Code::SHAPE, "gemmLoop: every w must be [N, K] on the cpu, got " + w.desc());
  if (!st.ok()) return rejected(env, st);
  return enqueue(env, std::make_unique<NumberJob>([x, ws, reps] {
    const int64_t M = x.dim(0), N = ws[0].dim(0), K = x.dim(1);
    std::vector<float> y(static_cast<size_t>(M * N));
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      const Tensor& w = ws[r % ws.size()];
      cpu::gemm(x.ptr<float>(), K, w.raw(), w.dtype, nullptr, y.data(), N, M, N, K);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  }));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* inst = new Instance();
  inst->tensor_ctor = Napi::Persistent(TensorWrap::define(env));
  env.SetInstanceData<Instance>(inst);
  exports.Set("NativeTensor", inst->tensor_ctor.Value());
  exports.Set("tensorFrom", Napi::Function::New(env, TensorFrom, "tensorFrom"));
  exports.Set("runOp", Napi::Function::New(env, RunOp, "runOp"));
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache, "emptyCache"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("streamRead", Napi::Function::New(env, BenchStreamRead, "streamRead"));
  bench.Set("fmaPeak", Napi::Function::New(env, BenchFmaPeak, "fmaPeak"));
  bench.Set("bf16DotPeak", Napi::Function::New(env, BenchBf16DotPeak, "bf16DotPeak"));
  bench.Set("naiveGemm", Napi::Function::New(env, BenchNaiveGemm, "naiveGemm"));
  bench.Set("gemmLoop", Napi::Function::New(env, BenchGemmLoop, "gemmLoop"));
  exports.Set("bench", bench);
  register_io(env, exports);
  register_models(env, exports);
  return exports;
}

}  // namespace
}  // namespace mk

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return mk::Init(env, exports); }
NODE_API_MODULE(mambakit, InitAddon)
