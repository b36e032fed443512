// The attention kernel family's arguments and limits, shared by the CPU and CUDA kernels, the op
// table and the transformer plans (LLaDA / MMaDA): full bidirectional multi-head attention over a
// per-slot K/V cache, with grouped K/V heads and an additive key bias, and LLaDA's rotary embedding.
//
// Layouts (the plans depend on them):
//  - q, o: row r = b*Tq + t at base + r*ld, the row holding H heads of hd values (head-major);
//  - K/V cache: slot s, position p at base + s*slot_stride + p*KVH*hd, KVH heads of hd values, in
//    kvdt (f32, bf16 or f16); batch row b reads slot slots[b] (null: slot b);
//  - bias: f32 [B, Tk] at b*ldbias, added to every query's score for key j (0 keeps, -inf drops);
//    null: none. A query whose every key is dropped gets o = 0.
//  - query head h reads K/V head h / (H / KVH) (H a multiple of KVH).
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace mk {

constexpr int64_t kAttnMaxHeadDim = 256;  // one query row's accumulator lives in registers / shared
constexpr int64_t kAttnMaxBatch = 65535;  // CUDA grid.y

// o[b, t, h] = sum_j softmax_j(scale * q[b,t,h]·k[slot_b, j, h/g] + bias[b, j]) v[slot_b, j, h/g]
// over keys j in [0, Tk). Softmax in f32 with a running maximum (online softmax); products in f32.
struct AttnArgs {
  const float* q; int64_t ldq;
  const void* k; const void* v; DType kvdt; int64_t slot_stride;  // elements of kvdt
  const int32_t* slots;
  const float* bias; int64_t ldbias;
  float* o; int64_t ldo;
  int64_t B, Tq, Tk, H, KVH, hd;
  float scale;
};

// LLaDA's rotary embedding (half-split, "rotate_half": x1 = x[:hd/2], x2 = x[hd/2:],
// out = (x1 c - x2 s, x2 c + x1 s) with angle p * theta^(-2i/hd) for i < hd/2), applied to q in
// place and to k at positions pos0 + t; the rotated k and the untouched v of each row are then
// written into the cache at position pos0 + t of the row's slot (converted to kvdt).
// table: f32 [P, hd/2, 2] = (cos, sin) of the angles (rope_table), P > pos0 + T - 1.
// k, v rows at ldk (q at ldq: both usually slices of one fused q|k|v projection row).
struct RopeArgs {
  float* q; int64_t ldq;
  const float* k; const float* v; int64_t ldk;
  void* kc; void* vc; DType kvdt; int64_t slot_stride;
  const int32_t* slots;
  const float* table;
  int64_t B, T, H, KVH, hd, pos0;
};

// The rotary table for positions [0, P), angles computed in double (the reference computes them in
// f32, which at position 4096 is off by ~2e-4 rad; double keeps the kernels within f32 of a float64
// reference). out: P * hd/2 * 2 floats.
void rope_table(double theta, int64_t hd, int64_t P, float* out);
// The same table as an f32 tensor [P, hd/2, 2] on `dev`.
struct Tensor;
struct Device;
Status make_rope_table(Device dev, double theta, int64_t hd, int64_t P, Tensor* out);

inline Status attn_can_run(int64_t H, int64_t KVH, int64_t hd, int64_t B) {
  if (hd < 1 || hd > kAttnMaxHeadDim)
    return make_error(Code::ARG, "attention: head dim " + std::to_string(hd) + " not in [1, " + std::to_string(kAttnMaxHeadDim) + "]");
  if (H < 1 || KVH < 1 || H % KVH != 0)
    return make_error(Code::ARG, "attention: " + std::to_string(H) + " query heads is not a multiple of " + std::to_string(KVH) +
                                     " K/V heads");
  if (B > kAttnMaxBatch) return make_error(Code::ARG, "attention: batch B=" + std::to_string(B) + " > 65535");
  return Status::Ok();
}
inline Status rope_can_run(int64_t hd) {
  if (hd < 2 || hd % 2 != 0 || hd > kAttnMaxHeadDim)
    return make_error(Code::ARG, "rope: head dim " + std::to_string(hd) + " must be even and in [2, " + std::to_string(kAttnMaxHeadDim) + "]");
  return Status::Ok();
}

}  // namespace mk
