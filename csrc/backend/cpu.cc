// The CPU backend: the kernels of cpu/ on host pointers, parallel over the thread pool.
#include <algorithm>
#include <cstring>

#include "backend/backend.h"
#include "cpu/attn.h"
#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/magvit.h"
#include "cpu/sample.h"
#include "cpu/sparse.h"
#include "cpu/ssm.h"
#include "cpu/vision.h"

namespace mk {
namespace {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device{}; }

  Status gemm(const float* x, int64_t ldx, const Tensor& w, const float* bias, float* y, int64_t ldy,
              int64_t M) override {
    if (M > 0) cpu::gemm(x, ldx, w.raw(), w.dtype, bias, y, ldy, M, w.dim(0), w.dim(1));
    return Status::Ok();
  }
  Status embedding(const int32_t* ids, int64_t n, const Tensor& t, float* y, int32_t*, bool) override {
    // the CPU kernel always checks: it costs nothing next to the gather
    return cpu::embedding(ids, n, t.raw(), t.dtype, t.dim(0), t.dim(1), y);
  }
  Status rmsnorm(const float* x, const float* r, const float* w, float* y, float* s, int64_t rows, int64_t D,
                 float eps) override {
    if (rows * D > 0) cpu::rmsnorm(x, r, w, y, s, rows, D, eps);
    return Status::Ok();
  }
  Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                   float eps) override {
    if (rows * D > 0) cpu::layernorm(x, w, b, y, rows, D, eps);
    return Status::Ok();
  }
  Status add(const float* a, const float* b, float* y, int64_t n, int64_t nb) override {
    if (n > 0) cpu::add(a, b, y, n, nb);
    return Status::Ok();
  }
  Status mul(const float* a, const float* b, float* y, int64_t n, int64_t nb) override {
    if (n > 0) cpu::mul(a, b, y, n, nb);
    return Status::Ok();
  }
  Status unary(Unary op, const float* x, float* y, int64_t n) override {
    if (n > 0) cpu::unary(op, x, y, n);
    return Status::Ok();
  }
  Status cast(const void* x, DType xdt, void* y, DType ydt, int64_t n) override {
    cpu::cast(x, xdt, y, ydt, n);
    return Status::Ok();
  }
  Status softmax(const float* x, float* y, int64_t rows, int64_t D) override {
    if (rows * D > 0) cpu::softmax(x, y, rows, D);
    return Status::Ok();
  }
  Status argmax(const float* x, int32_t* y, int64_t rows, int64_t D) override {
    if (rows * D > 0) cpu::argmax(x, y, rows, D);
    return Status::Ok();
  }
  Status row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv,
                 int64_t C) override {
    if (n > 0) cpu::row_add(y, ldy, rows, n, v, ldv, C);
    return Status::Ok();
  }
  Status reft(const ReftArgs& a) override {
    MK_RETURN_IF_ERROR(reft_can_run(a.E, a.r, a.C, a.wdt));
    cpu::reft(a);
    return Status::Ok();
  }
  Status causal_conv1d(const ConvArgs& a) override {
    cpu::causal_conv1d(a);
    return Status::Ok();
  }
  Status selective_scan(const ScanArgs& a) override {
    cpu::selective_scan(a);
    return Status::Ok();
  }
  Status denoise_pick(const DenoiseArgs& a) override {
    if (a.n > 0) cpu::denoise_pick(a);
    return Status::Ok();
  }
  Status attention(const AttnArgs& a) override {
    if (a.B * a.Tq > 0) cpu::attention(a);
    return Status::Ok();
  }
  Status rope_kv(const RopeArgs& a) override {
    if (a.B * a.T > 0) cpu::rope_kv(a);
    return Status::Ok();
  }
  Status router_topk(const float* l, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids, float* w,
                     int32_t* counts) override {
    cpu::router_topk(l, T, G, k, renorm, ids, w, counts);
    return Status::Ok();
  }
  Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* off, int32_t* src, int32_t* pos,
                    int32_t*, bool) override {
    return cpu::group_sort(gid, rows, k, G, off, src, pos);
  }
  Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const Tensor& w, const float* bias,
                      const int32_t* off, int64_t n, Act act, float* y, int64_t ldy, const int32_t* dst) override {
    cpu::grouped_gemm(x, ldx, src, w.raw(), w.dtype, bias, off, w.dim(0), n, w.dim(1), w.dim(2), act, y, ldy, dst);
    return Status::Ok();
  }
  Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* w, int64_t T, int64_t k, int64_t D,
                 float* out, int64_t ldo) override {
    cpu::combine(y, ldy, pos, w, T, k, D, out, ldo);
    return Status::Ok();
  }
  Status swiglu(float* x, int64_t ld, int64_t n, int64_t F) override {
    cpu::swiglu(x, ld, n, F);
    return Status::Ok();
  }
  Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
                   int64_t Ci, int64_t Co) override {
    cpu::conv3x3s2(x, w, bias, y, B, H, W, Ci, Co);
    return Status::Ok();
  }
  Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
                 int64_t H, int64_t W, int64_t C) override {
    cpu::dwconv7(x, ldx, w, bias, y, ldy, B, H, W, C);
    return Status::Ok();
  }
  Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
                   int64_t n) override {
    cpu::gelu_gate(a, lda, b, ldb, y, ldy, rows, n);
    return Status::Ok();
  }
  Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C) override {
    cpu::mean_pool(x, y, B, P, C);
    return Status::Ok();
  }
  Status conv2d(const Conv2dArgs& a) override {
    MK_RETURN_IF_ERROR(conv2d_can_run(a));
    if (a.B > 0) cpu::conv2d(a);
    return Status::Ok();
  }
  Status group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                    int64_t G, float eps, bool silu) override {
    MK_RETURN_IF_ERROR(group_norm_can_run(B, P, C, G));
    if (B > 0) cpu::group_norm(x, gamma, beta, y, B, P, C, G, eps, silu);
    return Status::Ok();
  }
  Status upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C) override {
    if (B * H * W * C > 0) cpu::upsample2x(x, y, B, H, W, C);
    return Status::Ok();
  }
  Status spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                      int64_t B, int64_t P, int64_t C, float scale) override {
    if (B * P * C > 0) cpu::spatial_attn(q, k, v, ld, o, ldo, scratch, B, P, C, scale);
    return Status::Ok();
  }
  Status lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f) override {
    MK_RETURN_IF_ERROR(lfq_can_run(D));
    if (rows > 0) cpu::lfq_encode(z, ldz, rows, D, codes, codes_f);
    return Status::Ok();
  }
  Status lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t*, bool) override {
    MK_RETURN_IF_ERROR(lfq_can_run(D));
    const int64_t bad = rows > 0 ? cpu::lfq_decode(codes, rows, D, z) : -1;
    if (bad >= 0)
      return make_error(Code::ARG, "lfq_decode: code " + std::to_string(codes[bad]) + " at position " + std::to_string(bad) +
                                       " is outside the codebook [0, " + std::to_string(int64_t{1} << D) + ")");
    return Status::Ok();
  }
  Status sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, int64_t B, int64_t V,
                int64_t P, const SampleParams& p) override {
    if (B > 0) cpu::sample(logits, prev, ids, logprob, B, V, P, p);
    return Status::Ok();
  }
  Status copy(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0 && dst != src) std::memmove(dst, src, bytes);
    return Status::Ok();
  }
  Status zero(void* dst, size_t bytes) override {
    if (bytes > 0) std::memset(dst, 0, bytes);
    return Status::Ok();
  }
  Status to_host(void* dst, const void* src, size_t bytes) override { return copy(dst, src, bytes); }
  Status finish(const char*) override { return Status::Ok(); }
};

}  // namespace

#ifdef MAMBAKIT_CUDA
Backend* cuda_backend(int dev);  // backend/cuda.cc: one per device, created on first use
#endif

Status backend_for(Device dev, Backend** out) {
  static CpuBackend cpu;
  if (!dev.is_cuda()) {
    *out = &cpu;
    return Status::Ok();
  }
  MK_RETURN_IF_ERROR(gpu::check_device(dev.index));  // the stub says "built without CUDA"
#ifdef MAMBAKIT_CUDA
  *out = cuda_backend(dev.index);
  return Status::Ok();
#else
  return make_error(Code::DEVICE, "mambakit was built without CUDA");
#endif
}

}  // namespace mk
