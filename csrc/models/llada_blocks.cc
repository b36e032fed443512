#include "models/llada_blocks.h"

#include <cmath>

#include "core/attn.h"
#include "models/prenorm.h"

namespace mk {

// ---- Attention ----------------------------------------------------------------------------------

Attention::Bufs Attention::bufs(Arena& a, int64_t rows, bool) const {
  Bufs b;
  b.xn = a.f32(rows * d_.D);
  b.qkv = a.f32(rows * d_.qkv());
  b.o = a.f32(rows * d_.D);
  b.kc = a.f32(rows * d_.kv());
  b.vc = a.f32(rows * d_.kv());
  return b;
}

Status Attention::run(RunCtx& c, Residual& r) const {
  const int64_t rows = r.g.rows(), B = r.g.B, T = r.g.T(), D = d_.D, KV = d_.kv(), QKV = d_.qkv();
  const Bufs s = bufs(c.ws, rows, c.in.has_state);
  MK_RETURN_IF_ERROR(prenorm(c, r, norm_, s.xn, d_.eps));
  // q | k | v side by side in one row, so RoPE and the cache write read one buffer
  MK_RETURN_IF_ERROR(c.be.gemm(s.xn, D, wq_, nullptr, s.qkv, QKV, rows));
  MK_RETURN_IF_ERROR(c.be.gemm(s.xn, D, wk_, nullptr, s.qkv + D, QKV, rows));
  MK_RETURN_IF_ERROR(c.be.gemm(s.xn, D, wv_, nullptr, s.qkv + D + KV, QKV, rows));
  // the K/V cache: the state's (every position of each slot) or this call's own [B, T]
  float* kc = c.in.has_state ? c.state(state_base) : s.kc;
  float* vc = c.in.has_state ? c.state(state_base + 1) : s.vc;
  const int64_t slot_stride = (c.in.has_state ? c.in.state.context : T) * KV;
  const int32_t* slots = c.in.has_state ? c.slot_ids() : nullptr;
  const int64_t pos0 = c.in.pos0, Tk = c.in.key_count(T);
  MK_RETURN_IF_ERROR(c.be.rope_kv({s.qkv, QKV, s.qkv + D, s.qkv + D + KV, QKV, kc, vc, DType::F32, slot_stride, slots,
                                   rope_.ptr<float>(), B, T, d_.H, d_.KVH, d_.hd, pos0}));
  const float* bias = c.in.key_bias.storage ? c.in.key_bias.ptr<float>() : nullptr;
  MK_RETURN_IF_ERROR(c.be.attention({s.qkv, QKV, kc, vc, DType::F32, slot_stride, slots, bias, Tk, s.o, D, B, T, Tk,
                                     d_.H, d_.KVH, d_.hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d_.hd)))}));
  MK_RETURN_IF_ERROR(c.be.gemm(s.o, D, wo_, nullptr, r.pending, D, rows));
  r.has_pending = true;
  return Status::Ok();
}

// ---- GatedMlp -----------------------------------------------------------------------------------

Status GatedMlp::run(RunCtx& c, Residual& r) const {
  const int64_t rows = r.g.rows();
  float* xn = c.ws.f32(rows * D_);
  float* h = c.ws.f32(rows * 2 * F_);
  MK_RETURN_IF_ERROR(prenorm(c, r, norm_, xn, eps_));
  // [gate | up] in one row: the SwiGLU kernel then writes silu(gate) ⊙ up over the gate half
  MK_RETURN_IF_ERROR(c.be.gemm(xn, D_, wg_, nullptr, h, 2 * F_, rows));
  MK_RETURN_IF_ERROR(c.be.gemm(xn, D_, wu_, nullptr, h + F_, 2 * F_, rows));
  MK_RETURN_IF_ERROR(c.be.swiglu(h, 2 * F_, rows, F_));
  MK_RETURN_IF_ERROR(c.be.gemm(h, 2 * F_, wd_, nullptr, r.pending, D_, rows));
  r.has_pending = true;
  return Status::Ok();
}

}  // namespace mk
