// Sparse-model kernels on the CPU (the same functions as cuda/sparse.cuh, on host pointers): the
// router (softmax + top-k), the counting sort that groups rows by expert or modality, the grouped
// GEMM that multiplies each group's rows by that group's weight, the weighted combine back to token
// order, and SwiGLU. Called after the op layer or the model plan validated shapes.
//
// One vocabulary for both uses (DESIGN.md "routing"):
//  - a "pair" is (row, slot): row t of the input with slot j < k of its k choices, flat index t*k + j;
//    Mixture-of-Mamba has k = 1 (one modality per token), MoE has k = num_experts_per_tok;
//  - gid[t*k + j] is the pair's group (expert id or modality id), in [0, G);
//  - after the sort, sorted position p in [offsets[g], offsets[g+1]) belongs to group g;
//    src[p] is the input row of the pair at p, pos[t*k + j] is the sorted position of pair (t, j).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/sparse.h"  // Act, limits
#include "core/status.h"

namespace mk {
namespace cpu {

// p = softmax(logits[t, 0:G]); ids[t, 0:k] = the k largest p, largest first, ties to the lower
// index; weights[t, j] = p of ids[t, j], divided by the sum of the k chosen p when renorm.
// counts (may be null): counts[g] += number of chosen (t, j) with ids == g (not zeroed here).
// G in [1, 256], k in [1, min(8, G)].
void router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids,
                 float* weights, int32_t* counts);

// Stable counting sort of rows*k pairs by gid. E_ARG names the first id outside [0, G).
Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets,
                  int32_t* src, int32_t* pos);

// For every sorted position p of group g (n positions in all, offsets [G+1] as group_sort wrote):
//   y[out_row(p), 0:N] = act(x[in_row(p), 0:K] · W[g]ᵀ + bias[g])
// in_row(p) = src ? src[p] : p; out_row(p) = dst ? dst[p] : p. W stacked [G, N, K] (f32/f16/bf16,
// widened on the fly), bias [G, N] f32 or null. Rows of empty groups are not touched; a group's
// weight is read once per call however many rows it has (decode reads only the groups in use).
void grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const void* w, DType wdt,
                  const float* bias, const int32_t* offsets, int64_t G, int64_t n, int64_t N,
                  int64_t K, Act act, float* y, int64_t ldy, const int32_t* dst);

// out[t, 0:D] = sum_j weights[t, j] * y[pos[t*k + j], 0:D], j in order (weights null: 1).
void combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
             int64_t k, int64_t D, float* out, int64_t ldo);

// SwiGLU in place: x[r, f] = silu(x[r, f]) * x[r, F + f] for f < F (the gate half comes first).
void swiglu(float* x, int64_t ld, int64_t n, int64_t F);

}  // namespace cpu
}  // namespace mk
