// Launchers of the CUDA kernels: raw device pointers, sizes and the device's stream (a
// cudaStream_t passed as void*), nothing else. Each returns the launch status. Declared here so
// the op table (plain C++) can call them; defined in the .cu file of each op family.
#pragma once
#include <cstdint>

#include "core/act.h"  // Unary
#include "core/denoise.h"
#include "core/reft.h"
#include "core/dtype.h"
#include "core/status.h"

namespace mk::cuda {

// gemm.cu — y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]); x, y f32 with row strides; W f32/f16/bf16.
Status gemm(const float* x, int64_t ldx, const void* w, DType wdt, const float* bias, float* y,
            int64_t ldy, int64_t M, int64_t N, int64_t K, void* stream);

// elementwise.cu — y[i] = a[i] (+|*) b[i % nb]  (nb divides n: b broadcasts over leading dims)
Status add(const float* a, const float* b, float* y, int64_t n, int64_t nb, void* stream);
Status mul(const float* a, const float* b, float* y, int64_t n, int64_t nb, void* stream);
Status unary(Unary op, const float* x, float* y, int64_t n, void* stream);
// float dtypes only (f32/f16/bf16), round to nearest even
Status cast(const void* x, DType xdt, void* y, DType ydt, int64_t n, void* stream);
// y[rows[i], 0:C] += v[i·ldv, 0:C] (ldv = 0: one vector for all rows); rows distinct.
Status row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv, int64_t C,
               void* stream);

// norm.cu — s = x + residual (residual may be null); y = s / sqrt(mean(s^2) + eps) * w;
// sum_out = s (written only when residual is non-null).
Status rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
               int64_t rows, int64_t D, float eps, void* stream);
// y = (x - mean) / sqrt(var + eps) * w + b (b may be null); biased variance.
Status layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
                 float eps, void* stream);

// embedding.cu — y[i, :] = table[ids[i], :] widened to f32. An id outside [0, V) writes zeros and
// sets *bad_flag (a device int32 the caller zeroed) to 1.
Status embedding(const int32_t* ids, int64_t n, const void* table, DType tdt, int64_t V, int64_t D,
                 float* y, int32_t* bad_flag, void* stream);

// softmax.cu — row-wise over the last dim; argmax: first index of the maximum (ties to lower).
Status softmax(const float* x, float* y, int64_t rows, int64_t D, void* stream);
Status argmax(const float* x, int32_t* y, int64_t rows, int64_t D, void* stream);

// denoise.cu — the diffusion sampler's per-position picks (core/denoise.h); rows in device memory.
Status denoise_pick(const DenoiseArgs& a, void* stream);

// reft.cu — representation editors (core/reft.h); rows and editor indices in device memory, checked
// by the caller (distinct rows, indices in [0, E)); the sizes are checked here (reft_can_run).
Status reft(const ReftArgs& a, void* stream);

}  // namespace mk::cuda
