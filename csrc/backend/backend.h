// One kernel table per device. The eager op table (ops/) and every model plan (plan/, models/) call
// kernels only through this interface, so each kernel is dispatched on device in exactly one place
// (backend/cpu.cc, backend/cuda.cc). Pointers are device pointers of the backend's device; weights
// come as tensors because their dtype (and for grouped weights their [G, N, K] shape) picks the
// kernel. Kernel definitions: cpu/*.h (CPU) and cuda/*.cuh, cuda/kernels.h (CUDA launchers); sizes
// are checked by each family's can_run (core/ssm.h, core/sparse.h) before a plan is built or an op
// is queued. Nothing here synchronizes with the host unless its comment says so.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/act.h"
#include "core/attn.h"
#include "core/denoise.h"
#include "core/magvit.h"
#include "core/reft.h"
#include "core/sample.h"
#include "core/ssm.h"
#include "core/tensor.h"

namespace mk {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- dense --------------------------------------------------------------------------------
  // y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]), W = w (f32/f16/bf16), rows at strides ldx / ldy.
  virtual Status gemm(const float* x, int64_t ldx, const Tensor& w, const float* bias, float* y, int64_t ldy,
                      int64_t M) = 0;
  // y[i] = table[ids[i]] widened to f32. flag: a device int32 the CUDA kernel clears and sets when an
  // id is out of range (owned by the caller, so a captured graph keeps it); verify: read it back (a
  // host sync; off while capturing). The CPU kernel always checks.
  virtual Status embedding(const int32_t* ids, int64_t n, const Tensor& table, float* y, int32_t* flag,
                           bool verify) = 0;
  // s = x + residual (residual may be null); y = s / sqrt(mean(s²) + eps) · w; sum_out = s (when
  // residual is given; may alias residual).
  virtual Status rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
                         int64_t rows, int64_t D, float eps) = 0;
  virtual Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                           float eps) = 0;
  // y[i] = a[i] (+|·) b[i % nb]; y may alias a or b.
  virtual Status add(const float* a, const float* b, float* y, int64_t n, int64_t nb) = 0;
  virtual Status mul(const float* a, const float* b, float* y, int64_t n, int64_t nb) = 0;
  virtual Status unary(Unary op, const float* x, float* y, int64_t n) = 0;
  virtual Status cast(const void* x, DType xdt, void* y, DType ydt, int64_t n) = 0;
  virtual Status softmax(const float* x, float* y, int64_t rows, int64_t D) = 0;
  virtual Status argmax(const float* x, int32_t* y, int64_t rows, int64_t D) = 0;
  // y[rows[i], 0:C] += v[i·ldv, 0:C] for i < n (ldv = 0: one vector for every row); rows distinct.
  virtual Status row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv,
                         int64_t C) = 0;
  // Representation editors (core/reft.h): the stream x (+ pending) at rows[i] gains R_eᵀ d; rows
  // distinct, editor indices in [0, E) (checked by the caller).
  virtual Status reft(const ReftArgs& a) = 0;

  // ---- Mamba (core/ssm.h) -------------------------------------------------------------------
  virtual Status causal_conv1d(const ConvArgs& a) = 0;
  virtual Status selective_scan(const ScanArgs& a) = 0;

  // ---- attention (core/attn.h) -------------------------------------------------------------
  virtual Status attention(const AttnArgs& a) = 0;
  virtual Status rope_kv(const RopeArgs& a) = 0;

  // ---- sparse (cpu/sparse.h) ----------------------------------------------------------------
  virtual Status router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids,
                             float* weights, int32_t* counts) = 0;
  // An id outside [0, G): E_ARG on the CPU; on CUDA it raises *flag (cleared here first), read back
  // when verify.
  virtual Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets, int32_t* src,
                            int32_t* pos, int32_t* flag, bool verify) = 0;
  // w [G, N, K]; act one of NONE..SILU.
  virtual Status grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const Tensor& w, const float* bias,
                              const int32_t* offsets, int64_t n, Act act, float* y, int64_t ldy, const int32_t* dst) = 0;
  virtual Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T, int64_t k,
                         int64_t D, float* out, int64_t ldo) = 0;
  virtual Status swiglu(float* x, int64_t ld, int64_t n, int64_t F) = 0;

  // ---- vision, NHWC f32 (cpu/vision.h) ------------------------------------------------------
  virtual Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H,
                           int64_t W, int64_t Ci, int64_t Co) = 0;
  virtual Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy,
                         int64_t B, int64_t H, int64_t W, int64_t C) = 0;
  virtual Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy,
                           int64_t rows, int64_t n) = 0;
  virtual Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C) = 0;

  // ---- MAGVIT-v2 image tokenizer, NHWC f32 (core/magvit.h) -----------------------------------
  virtual Status conv2d(const Conv2dArgs& a) = 0;
  // GroupNorm over [B, P, C] in G groups (+ SiLU); y may alias x.
  virtual Status group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P,
                            int64_t C, int64_t G, float eps, bool silu) = 0;
  virtual Status upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C) = 0;
  // scratch: spatial_attn_scratch(B, P, C) floats.
  virtual Status spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo,
                              float* scratch, int64_t B, int64_t P, int64_t C, float scale) = 0;
  virtual Status lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f) = 0;
  // A code outside [0, 2^D): E_ARG on the CPU; on CUDA it raises *flag (cleared here first), read back when verify.
  virtual Status lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t* flag, bool verify) = 0;

  // ---- sampling (core/sample.h) -------------------------------------------------------------
  // CUDA: takes a [B, V] scratch of its own and waits for the kernel before returning.
  virtual Status sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, int64_t B, int64_t V,
                        int64_t P, const SampleParams& p) = 0;

  // The diffusion sampler's per-position picks (core/denoise.h).
  virtual Status denoise_pick(const DenoiseArgs& a) = 0;

  // ---- memory, queued in order with the kernels -----------------------------------------------
  virtual Status copy(void* dst, const void* src, size_t bytes) = 0;
  virtual Status zero(void* dst, size_t bytes) = 0;
  // To host memory; returns when `dst` holds the data (a host sync on CUDA).
  virtual Status to_host(void* dst, const void* src, size_t bytes) = 0;
  // Waits for the device and reports an asynchronous fault naming `what`.
  virtual Status finish(const char* what) = 0;
};

// The backend of `dev`, alive for the process (E_DEVICE for a CUDA device in a CPU-only build or one
// that is not usable).
Status backend_for(Device dev, Backend** out);

}  // namespace mk
