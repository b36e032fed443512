// The CUDA backend of model plans: the same kernels as the eager ops, on the device's one stream.
#include <string>

#include "cuda/kernels.h"
#include "cuda/sparse.cuh"
#include "cuda/ssm.cuh"
#include "models/backend.h"

namespace mk {
namespace {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int dev) : dev_(dev), stream_(gpu::stream(dev)) {}
  Status gemm(const float* x, int64_t ldx, const Tensor& w, const Tensor* bias, float* y, int64_t ldy,
              int64_t M) override {
    if (M == 0) return Status::Ok();
    return cuda::gemm(x, ldx, w.raw(), w.dtype, bias ? bias->ptr<float>() : nullptr, y, ldy, M, w.dim(0), w.dim(1),
                      stream_);
  }
  Status embedding(const int32_t* ids, int64_t n, const Tensor& t, float* y, int32_t* flag, bool verify) override {
    if (n == 0) return Status::Ok();
    MK_RETURN_IF_ERROR(cuda::embedding(ids, n, t.raw(), t.dtype, t.dim(0), t.dim(1), y, flag, stream_));
    if (!verify) return Status::Ok();
    int32_t bad = 0;  // one small read-back per forward: a bad token id must not pass silently
    MK_RETURN_IF_ERROR(gpu::copy_d2h(dev_, &bad, flag, sizeof bad));
    if (bad) return make_error(Code::ARG, "embedding: a token id is outside [0, " + std::to_string(t.dim(0)) + ")");
    return Status::Ok();
  }
  Status rmsnorm(const float* x, const float* r, const float* w, float* y, float* s, int64_t rows, int64_t D,
                 float eps) override {
    return cuda::rmsnorm(x, r, w, y, s, rows, D, eps, stream_);
  }
  Status causal_conv1d(const float* x, int64_t ldx, const float* w, const float* b, float* st, const int32_t* sl,
                       float* o, int64_t ldo, int64_t B, int64_t T, int64_t E, int64_t K) override {
    return cuda::causal_conv1d(x, ldx, w, b, st, sl, o, ldo, B, T, E, K, true, stream_);
  }
  Status conv1d_update(const float* x, int64_t ldx, const float* w, const float* b, float* st, const int32_t* sl,
                       float* o, int64_t ldo, int64_t B, int64_t E, int64_t K) override {
    return cuda::conv1d_update(x, ldx, w, b, st, sl, o, ldo, B, E, K, true, stream_);
  }
  Status selective_scan(const float* u, int64_t ldu, const float* dt, int64_t lddt, const float* dtb, const float* A,
                        const float* Bm, const float* Cm, int64_t ldbc, const float* D, const float* z, int64_t ldz,
                        float* y, int64_t ldy, float* st, const int32_t* sl, int64_t B, int64_t T, int64_t E,
                        int64_t N) override {
    return cuda::selective_scan(u, ldu, dt, lddt, dtb, A, Bm, Cm, ldbc, D, z, ldz, y, ldy, st, sl, B, T, E, N, stream_);
  }
  Status router_topk(const float* l, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids, float* w,
                     int32_t* counts) override {
    return cuda::router_topk(l, T, G, k, renorm, ids, w, counts, stream_);
  }
  Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* off, int32_t* src, int32_t* pos,
                    int32_t* flag, bool verify) override {
    MK_RETURN_IF_ERROR(cuda::group_sort(gid, rows, k, G, off, src, pos, flag, stream_));
    if (!verify) return Status::Ok();
    int32_t bad = 0;  // the flag is shared with the embedding, which zeroed it and was checked already
    MK_RETURN_IF_ERROR(gpu::copy_d2h(dev_, &bad, flag, sizeof bad));
    if (bad) return make_error(Code::ARG, "a modality id is outside [0, " + std::to_string(G) + ")");
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
  Status copy(float* dst, const float* src, int64_t n) override {
    return gpu::copy_d2d(dev_, dst, src, static_cast<size_t>(n) * sizeof(float));
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

Status make_cuda_backend(int dev, std::unique_ptr<Backend>* out) {
  out->reset(new CudaBackend(dev));
  return Status::Ok();
}

}  // namespace mk

// MambaOut (vision) ---------------------------------------------------------------------------------
#include "cuda/vision.cuh"

namespace mk {
namespace {

class CudaVision : public VisionBackend {
 public:
  explicit CudaVision(int dev) : stream_(gpu::stream(dev)) {}
  Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                   float eps) override {
    return cuda::layernorm(x, w, b, y, rows, D, eps, stream_);
  }
  Status add(const float* a, const float* b, float* y, int64_t n) override {
    return n > 0 ? cuda::add(a, b, y, n, n, stream_) : Status::Ok();
  }
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

 private:
  void* stream_;
};

}  // namespace

Status make_cuda_vision_backend(int dev, std::unique_ptr<VisionBackend>* out) {
  out->reset(new CudaVision(dev));
  return Status::Ok();
}

}  // namespace mk
