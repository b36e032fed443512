// The CUDA backend: the launchers of cuda/ on the device's one stream. Kernels are queued, never
// waited for, except where backend.h says so (verify read-backs, sample, to_host, finish).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cuda/attn.cuh"
#include "cuda/kernels.h"
#include "cuda/magvit.cuh"
#include "cuda/sample.cuh"
#include "cuda/sparse.cuh"
#include "cuda/ssm.cuh"
#include "cuda/vision.cuh"

namespace mk {
namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int dev) : dev_(dev), stream_(gpu::stream(dev)) {}
  Device device() const override { return Device{DeviceType::CUDA, dev_}; }

  Status gemm(const float* x, int64_t ldx, const Tensor& w, const float* bias, float* y, int64_t ldy,
              int64_t M) override {
    if (M == 0) return Status::Ok();
    return cuda::gemm(x, ldx, w.raw(), w.dtype, bias, y, ldy, M, w.dim(0), w.dim(1), stream_);
  }
  Status embedding(const int32_t* ids, int64_t n, const Tensor& t, float* y, int32_t* flag, bool verify) override {
    if (n == 0) return Status::Ok();
    MK_RETURN_IF_ERROR(cuda::embedding(ids, n, t.raw(), t.dtype, t.dim(0), t.dim(1), y, flag, stream_));
    if (!verify) return Status::Ok();
    int32_t bad = 0;  // one small read-back per call: a bad token id must not pass silently
    MK_RETURN_IF_ERROR(gpu::copy_d2h(dev_, &bad, flag, sizeof bad));
    if (bad) return make_error(Code::ARG, "embedding: a token id is outside [0, " + std::to_string(t.dim(0)) + ")");
    return Status::Ok();
  }
  Status rmsnorm(const float* x, const float* r, const float* w, float* y, float* s, int64_t rows, int64_t D,
                 float eps) override {
    return rows * D == 0 ? Status::Ok() : cuda::rmsnorm(x, r, w, y, s, rows, D, eps, stream_);
  }
  Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                   float eps) override {
    return rows * D == 0 ? Status::Ok() : cuda::layernorm(x, w, b, y, rows, D, eps, stream_);
  }
  Status add(const float* a, const float* b, float* y, int64_t n, int64_t nb) override {
    return n > 0 ? cuda::add(a, b, y, n, nb, stream_) : Status::Ok();
  }
  Status mul(const float* a, const float* b, float* y, int64_t n, int64_t nb) override {
    return n > 0 ? cuda::mul(a, b, y, n, nb, stream_) : Status::Ok();
  }
  Status unary(Unary op, const float* x, float* y, int64_t n) override {
    return n > 0 ? cuda::unary(op, x, y, n, stream_) : Status::Ok();
  }
  Status cast(const void* x, DType xdt, void* y, DType ydt, int64_t n) override {
    return n > 0 ? cuda::cast(x, xdt, y, ydt, n, stream_) : Status::Ok();
  }
  Status softmax(const float* x, float* y, int64_t rows, int64_t D) override {
    return rows * D > 0 ? cuda::softmax(x, y, rows, D, stream_) : Status::Ok();
  }
  Status argmax(const float* x, int32_t* y, int64_t rows, int64_t D) override {
    return rows * D > 0 ? cuda::argmax(x, y, rows, D, stream_) : Status::Ok();
  }
  Status row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv,
                 int64_t C) override {
    return n > 0 ? cuda::row_add(y, ldy, rows, n, v, ldv, C, stream_) : Status::Ok();
  }
  Status reft(const ReftArgs& a) override { return a.n > 0 ? cuda::reft(a, stream_) : Status::Ok(); }
  Status causal_conv1d(const ConvArgs& a) override { return cuda::causal_conv1d(a, stream_); }
  Status selective_scan(const ScanArgs& a) override { return cuda::selective_scan(a, stream_); }
  Status denoise_pick(const DenoiseArgs& a) override { return a.n > 0 ? cuda::denoise_pick(a, stream_) : Status::Ok(); }
  Status attention(const AttnArgs& a) override { return a.B * a.Tq > 0 ? cuda::attention(a, stream_) : Status::Ok(); }
  Status rope_kv(const RopeArgs& a) override { return a.B * a.T > 0 ? cuda::rope_kv(a, stream_) : Status::Ok(); }
  Status router_topk(const float* l, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids, float* w,
                     int32_t* counts) override {
    return cuda::router_topk(l, T, G, k, renorm, ids, w, counts, stream_);
  }
  Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* off, int32_t* src, int32_t* pos,
                    int32_t* flag, bool verify) override {
    if (flag) MK_RETURN_IF_ERROR(gpu::memset_zero(dev_, flag, sizeof(int32_t)));  // this call's ids only
    MK_RETURN_IF_ERROR(cuda::group_sort(gid, rows, k, G, off, src, pos, flag, stream_));
    if (!verify || !flag) return Status::Ok();
    int32_t bad = 0;
    MK_RETURN_IF_ERROR(gpu::copy_d2h(dev_, &bad, flag, sizeof bad));
    if (bad) return make_error(Code::ARG, "group_sort: a group id is outside [0, " + std::to_string(G) + ")");
    return Status::Ok();
  }
  Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const Tensor& w, const float* bias,
                      const int32_t* off, int64_t n, Act act, float* y, int64_t ldy, const int32_t* dst) override {
    return cuda::grouped_gemm(x, ldx, src, w.raw(), w.dtype, bias, off, w.dim(0), n, w.dim(1), w.dim(2), act, y, ldy,
                              dst, stream_);
  }
  Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* w, int64_t T, int64_t k, int64_t D,
                 float* out, int64_t ldo) override {
    return cuda::combine(y, ldy, pos, w, T, k, D, out, ldo, stream_);
  }
  Status swiglu(float* x, int64_t ld, int64_t n, int64_t F) override { return cuda::swiglu(x, ld, n, F, stream_); }
  Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
                   int64_t Ci, int64_t Co) override {
    return cuda::conv3x3s2(x, w, bias, y, B, H, W, Ci, Co, stream_);
  }
  Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
                 int64_t H, int64_t W, int64_t C) override {
    return cuda::dwconv7(x, ldx, w, bias, y, ldy, B, H, W, C, stream_);
  }
  Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
                   int64_t n) override {
    return cuda::gelu_gate(a, lda, b, ldb, y, ldy, rows, n, stream_);
  }
  Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C) override {
    return cuda::mean_pool(x, y, B, P, C, stream_);
  }
  Status conv2d(const Conv2dArgs& a) override { return cuda::conv2d(a, stream_); }
  Status group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                    int64_t G, float eps, bool silu) override {
    return cuda::group_norm(x, gamma, beta, y, B, P, C, G, eps, silu, stream_);
  }
  Status upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C) override {
    return cuda::upsample2x(x, y, B, H, W, C, stream_);
  }
  Status spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                      int64_t B, int64_t P, int64_t C, float scale) override {
    return cuda::spatial_attn(q, k, v, ld, o, ldo, scratch, B, P, C, scale, stream_);
  }
  Status lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f) override {
    return cuda::lfq_encode(z, ldz, rows, D, codes, codes_f, stream_);
  }
  Status lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t* flag, bool verify) override {
    if (rows == 0) return lfq_can_run(D);
    if (flag) MK_RETURN_IF_ERROR(gpu::memset_zero(dev_, flag, sizeof(int32_t)));  // this call's codes only
    MK_RETURN_IF_ERROR(cuda::lfq_decode(codes, rows, D, z, flag, stream_));
    if (!verify || !flag) return Status::Ok();
    int32_t bad = 0;
    MK_RETURN_IF_ERROR(gpu::copy_d2h(dev_, &bad, flag, sizeof bad));
    if (bad) return make_error(Code::ARG, "lfq_decode: a code is outside the codebook [0, " + std::to_string(int64_t{1} << D) + ")");
    return Status::Ok();
  }
  Status sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, int64_t B, int64_t V,
                int64_t P, const SampleParams& p) override {
    if (B == 0) return Status::Ok();
    Tensor scratch;
    MK_RETURN_IF_ERROR(Tensor::create(device(), DType::F32, {B, V}, &scratch));
    MK_RETURN_IF_ERROR(cuda::sample(logits, prev, ids, logprob, scratch.ptr<float>(), B, V, P, p, stream_));
    return gpu::synchronize(dev_);  // the scratch is released on return: wait for the kernel first
  }
  Status copy(void* dst, const void* src, size_t bytes) override {
    return bytes == 0 || dst == src ? Status::Ok() : gpu::copy_d2d(dev_, dst, src, bytes);
  }
  Status zero(void* dst, size_t bytes) override { return gpu::memset_zero(dev_, dst, bytes); }
  Status to_host(void* dst, const void* src, size_t bytes) override {
    return bytes == 0 ? Status::Ok() : gpu::copy_d2h(dev_, dst, src, bytes);
  }
  Status finish(const char* what) override {
    MK_RETURN_IF_ERROR(gpu::last_launch_error(what));
    return gpu::synchronize(dev_);
  }

 private:
  int dev_;
  void* stream_;
};

}  // namespace

Backend* cuda_backend(int dev) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<CudaBackend>> all;
  std::lock_guard<std::mutex> lock(mu);
  if (static_cast<size_t>(dev) >= all.size()) all.resize(static_cast<size_t>(dev) + 1);
  if (!all[dev]) all[dev] = std::make_unique<CudaBackend>(dev);
  return all[dev].get();
}

}  // namespace mk
