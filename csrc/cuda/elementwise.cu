// Elementwise kernels: broadcast add/mul, unary activations, float dtype casts.
// All are memory-bound; each is a plain grid-stride loop over 64-bit indices (coalesced scalar
// accesses), which reaches most of the bandwidth and is trivially correct for any n and alignment.
// Pointers are not __restrict__: in-place use (y == a or y == x) is allowed, and each element is
// read and written by the same thread.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"

namespace mk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;  // grid-stride loops cover the rest

inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// ---- kernels ------------------------------------------------------------------------------------

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};

// y[i] = op(a[i], b[i % nb]). kBroadcast=false is the common nb == n case without the modulo.
template <typename Op, bool kBroadcast>
__global__ void binary_kernel(const float* a, const float* b, float* y, int64_t n, int64_t nb) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float bv = kBroadcast ? b[i % nb] : b[i];
    y[i] = Op()(a[i], bv);
  }
}

// Accurate libm-style functions (no fast-math intrinsics) so results track the CPU reference.
struct SiluOp {
  __device__ float operator()(float x) const { return x / (1.0f + expf(-x)); }
};
struct SoftplusOp {
  __device__ float operator()(float x) const { return x > 20.0f ? x : log1pf(expf(x)); }
};
// Exact GELU 0.5 x (1 + erf(x / sqrt(2))), written as 0.5 x erfc(-x / sqrt(2)) (the same function):
// 1 + erf(z) cancels catastrophically for z << 0, erfc keeps full relative accuracy there.
struct GeluOp {
  __device__ float operator()(float x) const {
    return 0.5f * x * erfcf(-x * 0.70710678118654752f);
  }
};

template <typename Op>
__global__ void unary_kernel(const float* x, float* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    y[i] = Op()(x[i]);
}

__device__ __forceinline__ float load_f32(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f32(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load_f32(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store_f32(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f32(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void store_f32(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// Every f16/bf16 value is exact in f32, so going through f32 gives a single rounding (to nearest
// even) for any source/destination pair.
template <typename S, typename D>
__global__ void cast_kernel(const S* x, D* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    store_f32(y, i, load_f32(x, i));
}

// ---- launchers ----------------------------------------------------------------------------------

template <typename Op>
Status launch_binary(const char* name, const float* a, const float* b, float* y, int64_t n,
                     int64_t nb, void* stream) {
  if (n < 0 || nb < 1 || (n > 0 && n % nb != 0))
    return make_error(Code::ARG, std::string(name) + ": bad sizes n=" + std::to_string(n) +
                                     " nb=" + std::to_string(nb) + " (nb must divide n)");
  if (n == 0) return Status::Ok();
  if (!a || !b || !y) return make_error(Code::ARG, std::string(name) + ": null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  if (nb == n)
    launch_kernel("binary_kernel", binary_kernel<Op, false>, grid_for(n), kThreads, 0, s, a, b, y, n, nb);
  else
    launch_kernel("binary_kernel", binary_kernel<Op, true>, grid_for(n), kThreads, 0, s, a, b, y, n, nb);
  return check_launch(name);
}

template <typename S>
Status launch_cast_from(const S* x, void* y, DType ydt, int64_t n, cudaStream_t s) {
  switch (ydt) {
    case DType::F32:
      launch_kernel("cast_kernel", cast_kernel<S, float>, grid_for(n), kThreads, 0, s, x, static_cast<float*>(y), n);
      break;
    case DType::F16:
      launch_kernel("cast_kernel", cast_kernel<S, __half>, grid_for(n), kThreads, 0, s, x, static_cast<__half*>(y), n);
      break;
    case DType::BF16:
      launch_kernel("cast_kernel", cast_kernel<S, __nv_bfloat16>, grid_for(n), kThreads, 0, s, x, static_cast<__nv_bfloat16*>(y), n);
      break;
    default:
      return make_error(Code::DTYPE, std::string("cast: unsupported destination dtype ") +
                                         dtype_name(ydt));
  }
  return check_launch("cast");
}

}  // namespace

Status add(const float* a, const float* b, float* y, int64_t n, int64_t nb, void* stream) {
  return launch_binary<AddOp>("add", a, b, y, n, nb, stream);
}

Status mul(const float* a, const float* b, float* y, int64_t n, int64_t nb, void* stream) {
  return launch_binary<MulOp>("mul", a, b, y, n, nb, stream);
}

Status unary(Unary op, const float* x, float* y, int64_t n, void* stream) {
  if (n < 0) return make_error(Code::ARG, "unary: negative size " + std::to_string(n));
  if (n == 0) return Status::Ok();
  if (!x || !y) return make_error(Code::ARG, "unary: null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  switch (op) {
    case Unary::SILU: launch_kernel("unary_kernel", unary_kernel<SiluOp>, grid_for(n), kThreads, 0, s, x, y, n); break;
    case Unary::SOFTPLUS: launch_kernel("unary_kernel", unary_kernel<SoftplusOp>, grid_for(n), kThreads, 0, s, x, y, n); break;
    case Unary::GELU: launch_kernel("unary_kernel", unary_kernel<GeluOp>, grid_for(n), kThreads, 0, s, x, y, n); break;
    default:
      return make_error(Code::ARG, "unary: unknown op " + std::to_string(static_cast<int>(op)));
  }
  return check_launch("unary");
}

Status cast(const void* x, DType xdt, void* y, DType ydt, int64_t n, void* stream) {
  if (!is_float(xdt) || !is_float(ydt))
    return make_error(Code::DTYPE, std::string("cast: only f32/f16/bf16 are supported, got ") +
                                       dtype_name(xdt) + " -> " + dtype_name(ydt));
  if (n < 0) return make_error(Code::ARG, "cast: negative size " + std::to_string(n));
  if (n == 0) return Status::Ok();
  if (!x || !y) return make_error(Code::ARG, "cast: null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  if (xdt == ydt) {  // same dtype: a plain ordered device copy (nothing to do in place)
    if (x == y) return Status::Ok();
    MK_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<size_t>(n) * dtype_size(xdt),
                                  cudaMemcpyDeviceToDevice, s));
    return Status::Ok();
  }
  switch (xdt) {
    case DType::F32: return launch_cast_from(static_cast<const float*>(x), y, ydt, n, s);
    case DType::F16: return launch_cast_from(static_cast<const __half*>(x), y, ydt, n, s);
    default: return launch_cast_from(static_cast<const __nv_bfloat16*>(x), y, ydt, n, s);
  }
}

namespace {
// One block per edited row (grid-stride over rows); the rows are distinct, so no two blocks write
// the same element.
__global__ void row_add_kernel(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv,
                               int64_t C) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    float* yr = y + static_cast<int64_t>(rows[i]) * ldy;
    const float* vr = v + i * ldv;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] += vr[c];
  }
}
}  // namespace

Status row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv, int64_t C,
               void* stream) {
  if (n < 0 || C < 1 || ldy < C || ldv < 0) return make_error(Code::ARG, "row_add: bad sizes");
  if (n == 0) return Status::Ok();
  if (!y || !rows || !v) return make_error(Code::ARG, "row_add: null pointer");
  const unsigned blocks = static_cast<unsigned>(n < kMaxBlocks ? n : kMaxBlocks);
  launch_kernel("row_add_kernel", row_add_kernel, blocks, kThreads, 0, static_cast<cudaStream_t>(stream), y, ldy, rows, n, v, ldv, C);
  return check_launch("row_add");
}

}  // namespace mk::cuda
