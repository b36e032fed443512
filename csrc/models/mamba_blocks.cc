#include "models/mamba_blocks.h"

#include <string>

#include "models/prenorm.h"

namespace mk {

// ---- TokenEmbed ---------------------------------------------------------------------------------

Status TokenEmbed::check(const CallInputs& in, Geometry* g) const {
  const Tensor& t = in.input;
  const int64_t D = table_.dim(1);
  const std::string fwd = family_ + " forward";
  if (!t.storage) return make_error(Code::ARG, fwd + ": no input");
  const bool ids = t.dtype == DType::I32 && t.ndim() == 2;
  const bool embeds = t.dtype == DType::F32 && t.ndim() == 3 && t.dim(2) == D;
  if (!(ids || embeds) || t.dim(0) < 1 || t.dim(1) < 1)
    return make_error(Code::SHAPE, fwd + ": inputs must be token ids i32 [B >= 1, T >= 1] or embeddings f32 [B, T, D=" +
                                       std::to_string(D) + "], got " + t.desc());
  if (t.device() != table_.device())
    return make_error(Code::DEVICE, fwd + ": tokens on " + t.device().str() + ", model on " + table_.device().str());
  const int64_t B = t.dim(0), T = t.dim(1);
  if (per_modality_) {  // only per-modality projections read the ids; other models ignore them
    const Tensor& m = in.modality;
    if (!m.storage)
      return make_error(Code::ARG, family_ + ": this model has per-modality projections: modality ids are required");
    if (m.dtype != DType::I32 || m.numel() != B * T || m.device() != table_.device())
      return make_error(Code::SHAPE, family_ + ": modality ids must be i32 [" + std::to_string(B) + ", " + std::to_string(T) +
                                         "] on " + table_.device().str() + " (one per token), got " + m.desc());
  }
  *g = Geometry{B, T, 1, D};
  return Status::Ok();
}

void TokenEmbed::call_buffers(RunCtx& c, Arena& a) const {
  if (!per_modality_) return;
  const int64_t BT = c.in.input.dim(0) * c.in.input.dim(1);
  c.group_offsets = a.i32(M_ + 1);
  c.group_src = a.i32(BT);
  c.group_pos = a.i32(BT);
}

Status TokenEmbed::run(RunCtx& c, Residual& r) const {
  const Tensor& t = c.in.input;
  const int64_t BT = t.dim(0) * t.dim(1);
  // the stream starts as embedding(tokens), or as the caller's input embeddings (e.g. image latents)
  MK_RETURN_IF_ERROR(t.dtype == DType::F32 ? c.be.copy(r.x, t.raw(), t.nbytes())
                                           : c.be.embedding(t.ptr<int32_t>(), BT, table_, r.x, c.flag, c.verify));
  r.has_pending = false;
  if (!per_modality_) return Status::Ok();
  // Mixture-of-Mamba: bucket the rows by modality once; every per-modality projection reuses it
  return c.be.group_sort(c.in.modality.ptr<int32_t>(), BT, 1, M_, c.group_offsets, c.group_src,
                         c.group_pos, c.flag, c.verify);
}

namespace {

const float* opt(const Tensor& t) { return t.storage ? t.ptr<float>() : nullptr; }

}  // namespace

// ---- MambaMixer ---------------------------------------------------------------------------------

MambaMixer::Bufs MambaMixer::bufs(Arena& a, int64_t rows) const {
  Bufs b;
  b.xn = a.f32(rows * d_.D);
  b.xz = a.f32(rows * 2 * d_.E);
  b.u = a.f32(rows * d_.E);
  b.xdbl = a.f32(rows * (d_.R + 2 * d_.N));
  b.dt = a.f32(rows * d_.E);
  return b;
}

Status MambaMixer::run(RunCtx& c, Residual& r) const {
  const int64_t BT = r.g.rows(), B = r.g.B, T = r.g.T(), E = d_.E, N = d_.N, R = d_.R, XD = R + 2 * N;
  const Bufs s = bufs(c.ws, BT);
  // y = x·Wᵀ (+ b) with the token's modality weight when W is stacked [M, out, in]
  auto proj = [&](const float* x, int64_t ldx, const Tensor& w, const Tensor& b, float* y, int64_t ldy) {
    if (w.ndim() == 3)
      return c.be.grouped_gemm(x, ldx, c.group_src, w, opt(b), c.group_offsets, BT, Act::NONE, y, ldy, c.group_src);
    return c.be.gemm(x, ldx, w, opt(b), y, ldy, BT);
  };
  MK_RETURN_IF_ERROR(prenorm(c, r, w_.norm, s.xn, d_.eps));
  // x, z = split(in_proj(xn)): xz [BT, 2E], x = xz[:, :E], z = xz[:, E:]
  MK_RETURN_IF_ERROR(proj(s.xn, d_.D, w_.in_proj, w_.in_proj_bias, s.xz, 2 * E));
  // u = silu(conv1d_causal(x)), the conv window carried in the state (decode: T = 1, rolled in place)
  MK_RETURN_IF_ERROR(c.be.causal_conv1d({s.xz, 2 * E, w_.conv_w.ptr<float>(), opt(w_.conv_b), c.state(state_base),
                                         c.slot_ids(), s.u, E, B, T, E, d_.K, true}));
  // dt, B, C = split(x_proj(u), [R, N, N]); dt = dt_proj(dt): its bias and softplus are fused into the
  // scan, except a per-modality bias, which the grouped GEMM adds
  MK_RETURN_IF_ERROR(proj(s.u, E, w_.x_proj, Tensor(), s.xdbl, XD));
  const bool dt_stacked = w_.dt_proj.ndim() == 3;
  MK_RETURN_IF_ERROR(proj(s.xdbl, XD, w_.dt_proj, dt_stacked ? w_.dt_bias : Tensor(), s.dt, E));
  // y = (C·s + D·u) ⊙ silu(z), s_t = exp(dt·A) s_{t-1} + dt·B·u; y is written over u
  MK_RETURN_IF_ERROR(c.be.selective_scan({s.u, E, s.dt, E, dt_stacked ? nullptr : w_.dt_bias.ptr<float>(),
                                          w_.A.ptr<float>(), s.xdbl + R, s.xdbl + R + N, XD, w_.Dskip.ptr<float>(),
                                          s.xz + E, 2 * E, s.u, E, c.state(state_base + 1), c.slot_ids(), B, T, E, N}));
  // the block's output, added to the stream by the next norm
  MK_RETURN_IF_ERROR(proj(s.u, E, w_.out_proj, w_.out_proj_bias, r.pending, d_.D));
  r.has_pending = true;
  return Status::Ok();
}

// ---- MoeFfn -------------------------------------------------------------------------------------

MoeFfn::Bufs MoeFfn::bufs(Arena& a, int64_t rows) const {
  const int64_t n = rows * d_.topk;
  Bufs b;
  b.xn = a.f32(rows * d_.D);
  b.rl = a.f32(rows * d_.experts);
  b.ids = a.i32(n);
  b.gates = a.f32(n);
  b.eoff = a.i32(d_.experts + 1);
  b.esrc = a.i32(n);
  b.epos = a.i32(n);
  b.h1 = a.f32(n * (d_.act == Act::SWIGLU ? 2 * d_.F : d_.F));
  b.h2 = a.f32(n * d_.D);
  return b;
}

// out = Σ_j gate_j · expert_j(xn) over each token's top-k experts (dropless: every pair is computed).
Status MoeFfn::run(RunCtx& c, Residual& r) const {
  const int64_t BT = r.g.rows(), k = d_.topk, n = BT * k, D = d_.D, F = d_.F;
  const bool glu = d_.act == Act::SWIGLU;
  const int64_t F1 = glu ? 2 * F : F;
  const Bufs s = bufs(c.ws, BT);
  MK_RETURN_IF_ERROR(prenorm(c, r, norm_, s.xn, d_.eps));
  MK_RETURN_IF_ERROR(c.be.gemm(s.xn, D, router_, nullptr, s.rl, d_.experts, BT));
  MK_RETURN_IF_ERROR(c.be.router_topk(s.rl, BT, d_.experts, k, d_.renorm, s.ids, s.gates, counts_));
  // expert ids come from the router: always in range, nothing to verify
  MK_RETURN_IF_ERROR(c.be.group_sort(s.ids, BT, k, d_.experts, s.eoff, s.esrc, s.epos, nullptr, false));
  MK_RETURN_IF_ERROR(c.be.grouped_gemm(s.xn, D, s.esrc, w_in_, nullptr, s.eoff, n, glu ? Act::NONE : d_.act, s.h1, F1,
                                       nullptr));
  if (glu) MK_RETURN_IF_ERROR(c.be.swiglu(s.h1, F1, n, F));
  MK_RETURN_IF_ERROR(c.be.grouped_gemm(s.h1, F1, nullptr, w_out_, nullptr, s.eoff, n, Act::NONE, s.h2, D, nullptr));
  MK_RETURN_IF_ERROR(c.be.combine(s.h2, D, s.epos, s.gates, BT, k, D, r.pending, D));
  r.has_pending = true;
  return Status::Ok();
}

// ---- LmHead -------------------------------------------------------------------------------------

Shape LmHead::output_shape(const Geometry& g, const CallInputs& in) const {
  const int64_t V = w_.dim(0);
  if (in.last_only) return Shape{g.B, V};
  return Shape{g.B, in.head_count > 0 ? in.head_count : g.T(), V};
}

Status LmHead::run(RunCtx& c, Residual& r, float* out) const {
  const int64_t B = r.g.B, T = r.g.T(), D = r.g.C, V = w_.dim(0);
  float* xn = c.ws.f32(r.g.rows() * D);
  MK_RETURN_IF_ERROR(prenorm(c, r, norm_, xn, eps_));
  if (c.in.last_only) return c.be.gemm(xn + (T - 1) * D, T * D, w_, nullptr, out, V, B);
  if (c.in.head_count > 0 && c.in.head_count < T) {  // a span of each row: one GEMM per row
    for (int64_t b = 0; b < B; ++b)
      MK_RETURN_IF_ERROR(c.be.gemm(xn + (b * T + c.in.head_from) * D, D, w_, nullptr, out + b * c.in.head_count * V, V,
                                   c.in.head_count));
    return Status::Ok();
  }
  return c.be.gemm(xn, D, w_, nullptr, out, V, B * T);
}

}  // namespace mk
