// The kernels a native model plan calls, behind one interface with a CPU and a CUDA implementation,
// so a model is written once. Pointers are device pointers of the backend's device; weights come as
// tensors because their dtype picks the kernel.
#pragma once
#include <memory>

#include "core/tensor.h"
#include "cpu/sparse.h"  // Act

namespace mk {

class Backend {
 public:
  virtual ~Backend() = default;
  // y[M, N] = x[M, K] · W[N, K]^T (+ bias), W = w (f32/f16/bf16), x rows at stride ldx.
  virtual Status gemm(const float* x, int64_t ldx, const Tensor& w, const Tensor* bias, float* y, int64_t ldy,
                      int64_t M) = 0;
  // flag: a device int32 the CUDA kernel sets when an id is out of range (owned by the caller's
  // workspace, so a captured graph keeps it); verify: read it back (a host sync; off while capturing).
  virtual Status embedding(const int32_t* ids, int64_t n, const Tensor& table, float* y, int32_t* flag,
                           bool verify) = 0;
  virtual Status rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
                         int64_t rows, int64_t D, float eps) = 0;
  virtual Status causal_conv1d(const float* x, int64_t ldx, const float* w, const float* bias, float* state,
                               const int32_t* slots, float* out, int64_t ldo, int64_t B, int64_t T, int64_t E,
                               int64_t K) = 0;
  virtual Status conv1d_update(const float* x, int64_t ldx, const float* w, const float* bias, float* state,
                               const int32_t* slots, float* out, int64_t ldo, int64_t B, int64_t E, int64_t K) = 0;
  virtual Status selective_scan(const float* u, int64_t ldu, const float* dt, int64_t lddt, const float* dt_bias,
                                const float* A, const float* Bm, const float* Cm, int64_t ldbc, const float* D,
                                const float* z, int64_t ldz, float* y, int64_t ldy, float* state,
                                const int32_t* slots, int64_t B, int64_t T, int64_t E, int64_t N) = 0;
  // Sparse blocks (definitions in cpu/sparse.h). group_sort raises *flag for an id outside [0, G)
  // (CUDA; checked by reading it back when verify) or returns E_ARG (CPU). grouped_gemm: w [G, N, K].
  virtual Status router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids,
                             float* weights, int32_t* counts) = 0;
  virtual Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets, int32_t* src,
                            int32_t* pos, int32_t* flag, bool verify) = 0;
  virtual Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const Tensor& w, const float* bias,
                              const int32_t* offsets, int64_t n, Act act, float* y, int64_t ldy, const int32_t* dst) = 0;
  virtual Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T, int64_t k,
                         int64_t D, float* out, int64_t ldo) = 0;
  virtual Status swiglu(float* x, int64_t ld, int64_t n, int64_t F) = 0;
  // dst[0, n) = src[0, n) (device memory, queued on the backend's stream).
  virtual Status copy(float* dst, const float* src, int64_t n) = 0;
  // Waits for the device and reports a fault with the plan's name.
  virtual Status finish(const char* what) = 0;
};

// The backend for `dev` (E_DEVICE for a CUDA device in a CPU-only build).
Status make_backend(Device dev, std::unique_ptr<Backend>* out);

}  // namespace mk

// MambaOut (vision) ---------------------------------------------------------------------------------
// The image kernels of the MambaOut plan (models/mambaout.cc), beside Backend (which gives it gemm and
// finish): NHWC f32, definitions in cpu/vision.h. Kept as a separate table so the vision plan and the
// language models grow apart.
namespace mk {

class VisionBackend {
 public:
  virtual ~VisionBackend() = default;
  virtual Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                           float eps) = 0;
  virtual Status add(const float* a, const float* b, float* y, int64_t n) = 0;  // y may alias a or b
  virtual Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H,
                           int64_t W, int64_t Ci, int64_t Co) = 0;
  virtual Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy,
                         int64_t B, int64_t H, int64_t W, int64_t C) = 0;
  virtual Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy,
                           int64_t rows, int64_t n) = 0;
  virtual Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C) = 0;
};

// The vision kernels for `dev` (E_DEVICE for a CUDA device in a CPU-only build).
Status make_vision_backend(Device dev, std::unique_ptr<VisionBackend>* out);

}  // namespace mk
