#include <algorithm>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/sparse.h"
#include "cpu/ssm.h"
#include "models/backend.h"

namespace mk {
namespace {

class CpuBackend : public Backend {
 public:
  Status gemm(const float* x, int64_t ldx, const Tensor& w, const Tensor* bias, float* y, int64_t ldy,
              int64_t M) override {
    if (M > 0) cpu::gemm(x, ldx, w.raw(), w.dtype, bias ? bias->ptr<float>() : nullptr, y, ldy, M, w.dim(0), w.dim(1));
    return Status::Ok();
  }
  Status embedding(const int32_t* ids, int64_t n, const Tensor& t, float* y, int32_t*, bool) override {
    // the CPU kernel always checks: it costs nothing next to the gather
    return cpu::embedding(ids, n, t.raw(), t.dtype, t.dim(0), t.dim(1), y);
  }
  Status rmsnorm(const float* x, const float* r, const float* w, float* y, float* s, int64_t rows, int64_t D,
                 float eps) override {
    cpu::rmsnorm(x, r, w, y, s, rows, D, eps);
    return Status::Ok();
  }
  Status causal_conv1d(const float* x, int64_t ldx, const float* w, const float* b, float* st, const int32_t* sl,
                       float* o, int64_t ldo, int64_t B, int64_t T, int64_t E, int64_t K) override {
    cpu::causal_conv1d(x, ldx, w, b, st, sl, o, ldo, B, T, E, K, true);
    return Status::Ok();
  }
  Status conv1d_update(const float* x, int64_t ldx, const float* w, const float* b, float* st, const int32_t* sl,
                       float* o, int64_t ldo, int64_t B, int64_t E, int64_t K) override {
    cpu::conv1d_update(x, ldx, w, b, st, sl, o, ldo, B, E, K, true);
    return Status::Ok();
  }
  Status selective_scan(const float* u, int64_t ldu, const float* dt, int64_t lddt, const float* dtb, const float* A,
                        const float* Bm, const float* Cm, int64_t ldbc, const float* D, const float* z, int64_t ldz,
                        float* y, int64_t ldy, float* st, const int32_t* sl, int64_t B, int64_t T, int64_t E,
                        int64_t N) override {
    cpu::selective_scan(u, ldu, dt, lddt, dtb, A, Bm, Cm, ldbc, D, z, ldz, y, ldy, st, sl, B, T, E, N);
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
  Status copy(float* dst, const float* src, int64_t n) override {
    std::copy_n(src, n, dst);
    return Status::Ok();
  }
  Status finish(const char*) override { return Status::Ok(); }
};

}  // namespace

#ifdef MAMBAKIT_CUDA
Status make_cuda_backend(int dev, std::unique_ptr<Backend>* out);  // backend_cuda.cc
#endif

Status make_backend(Device dev, std::unique_ptr<Backend>* out) {
  if (!dev.is_cuda()) {
    out->reset(new CpuBackend());
    return Status::Ok();
  }
#ifdef MAMBAKIT_CUDA
  MK_RETURN_IF_ERROR(gpu::check_device(dev.index));
  return make_cuda_backend(dev.index, out);
#else
  return gpu::check_device(dev.index);  // the stub: "built without CUDA"
#endif
}

}  // namespace mk

// MambaOut (vision) ---------------------------------------------------------------------------------
#include "cpu/vision.h"

namespace mk {
namespace {

class CpuVision : public VisionBackend {
 public:
  Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                   float eps) override {
    if (rows > 0) cpu::layernorm(x, w, b, y, rows, D, eps);
    return Status::Ok();
  }
  Status add(const float* a, const float* b, float* y, int64_t n) override {
    if (n > 0) cpu::add(a, b, y, n, n);
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
};

}  // namespace

#ifdef MAMBAKIT_CUDA
Status make_cuda_vision_backend(int dev, std::unique_ptr<VisionBackend>* out);  // backend_cuda.cc
#endif

Status make_vision_backend(Device dev, std::unique_ptr<VisionBackend>* out) {
  if (!dev.is_cuda()) {
    out->reset(new CpuVision());
    return Status::Ok();
  }
#ifdef MAMBAKIT_CUDA
  MK_RETURN_IF_ERROR(gpu::check_device(dev.index));
  return make_cuda_vision_backend(dev.index, out);
#else
  return gpu::check_device(dev.index);  // the stub: "built without CUDA"
#endif
}

}  // namespace mk
