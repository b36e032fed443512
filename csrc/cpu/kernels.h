// CPU kernels other than GEMM (see gemm.h): the same functions as cuda/kernels.h, on host pointers.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/act.h"  // Unary
#include "core/dtype.h"
#include "core/status.h"

#include "core/denoise.h"
#include "core/reft.h"

namespace mk::cpu {

// elementwise.cc — y[i] = a[i] (+|*) b[i % nb]
void add(const float* a, const float* b, float* y, int64_t n, int64_t nb);
void mul(const float* a, const float* b, float* y, int64_t n, int64_t nb);
void unary(Unary op, const float* x, float* y, int64_t n);
void cast(const void* x, DType xdt, void* y, DType ydt, int64_t n);
// y[rows[i], 0:C] += v[i·ldv, 0:C] (ldv = 0: one vector for all rows); rows distinct.
void row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv, int64_t C);

// norm.cc — see cuda/kernels.h for the exact definitions.
void rmsnorm(const float* x, const float* residual, const float* w, float* y, float* sum_out,
             int64_t rows, int64_t D, float eps);
void layernorm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t D,
               float eps);

// embedding.cc — returns E_ARG naming the first id outside [0, V).
Status embedding(const int32_t* ids, int64_t n, const void* table, DType tdt, int64_t V, int64_t D,
                 float* y);

// softmax.cc
void softmax(const float* x, float* y, int64_t rows, int64_t D);
void argmax(const float* x, int32_t* y, int64_t rows, int64_t D);

// denoise.cc — the diffusion sampler's per-position picks (core/denoise.h)
void denoise_pick(const DenoiseArgs& a);

// reft.cc — representation editors (core/reft.h); the caller checked reft_can_run, rows and editors.
void reft(const ReftArgs& a);

// Scalar math shared by the kernels (the CUDA kernels use the same definitions).
inline float silu_f(float x) { return x / (1.f + std::exp(-x)); }
inline float softplus_f(float x) { return x > 20.f ? x : std::log1p(std::exp(x)); }
// erfc form: 1 + erf(x/√2) cancels for x << 0, erfc(-x/√2) keeps full relative precision there.
inline float gelu_f(float x) { return 0.5f * x * std::erfc(-x * 0.70710678118654752f); }
}  // namespace mk::cpu
