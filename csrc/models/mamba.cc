#include "models/mamba.h"

#include <memory>
#include <string>

#include "models/backend.h"

namespace mk {
namespace {

Status expect(const Tensor& t, const char* name, int layer, const Shape& shape, bool weight, const MambaModel& m) {
  const std::string where = layer < 0 ? std::string(name) : "layers." + std::to_string(layer) + "." + name;
  if (!t.storage) return make_error(Code::ARG, "mamba: missing tensor " + where);
  if (t.device() != m.dev) return make_error(Code::DEVICE, "mamba: " + where + " is on " + t.device().str() + ", model on " + m.dev.str());
  if (weight ? !is_float(t.dtype) : t.dtype != DType::F32)
    return make_error(Code::DTYPE, "mamba: " + where + " has dtype " + dtype_name(t.dtype));
  if (t.numel() != shape_numel(shape))
    return make_error(Code::SHAPE, "mamba: " + where + " is " + t.desc() + ", expected " + shape_str(shape));
  return Status::Ok();
}

}  // namespace

Status mamba_validate(const MambaModel& m) {
  const MambaDims& d = m.d;
  if (d.D < 1 || d.L < 1 || d.V < 1 || d.N < 1 || d.N > 256 || d.E < 1 || d.K < 1 || d.K > 8 || d.R < 1)
    return make_error(Code::ARG, "mamba: dims out of range (N in [1, 256], K in [1, 8])");
  if (static_cast<int64_t>(m.layers.size()) != d.L) return make_error(Code::ARG, "mamba: layer count mismatch");
  MK_RETURN_IF_ERROR(expect(m.embedding, "embedding", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.lm_head, "lm_head", -1, {d.V, d.D}, true, m));
  MK_RETURN_IF_ERROR(expect(m.norm_f, "norm_f", -1, {d.D}, false, m));
  for (int i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    MK_RETURN_IF_ERROR(expect(l.norm, "norm", i, {d.D}, false, m));
    MK_RETURN_IF_ERROR(expect(l.in_proj, "in_proj", i, {2 * d.E, d.D}, true, m));
    if (l.in_proj_bias.storage) MK_RETURN_IF_ERROR(expect(l.in_proj_bias, "in_proj.bias", i, {2 * d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.conv_w, "conv1d", i, {d.E, d.K}, false, m));
    if (l.conv_b.storage) MK_RETURN_IF_ERROR(expect(l.conv_b, "conv1d.bias", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.x_proj, "x_proj", i, {d.R + 2 * d.N, d.E}, true, m));
    MK_RETURN_IF_ERROR(expect(l.dt_proj, "dt_proj", i, {d.E, d.R}, true, m));
    MK_RETURN_IF_ERROR(expect(l.dt_bias, "dt_proj.bias", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.A, "A", i, {d.N, d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.Dskip, "D", i, {d.E}, false, m));
    MK_RETURN_IF_ERROR(expect(l.out_proj, "out_proj", i, {d.D, d.E}, true, m));
    if (l.out_proj_bias.storage) MK_RETURN_IF_ERROR(expect(l.out_proj_bias, "out_proj.bias", i, {d.D}, false, m));
  }
  return Status::Ok();
}

Status mamba_validate_state(const MambaModel& m, const MambaState& s, int64_t* slots) {
  const MambaDims& d = m.d;
  if (!s.conv.storage || !s.ssm.storage) return make_error(Code::ARG, "mamba: state is disposed");
  const bool ok = s.conv.dtype == DType::F32 && s.ssm.dtype == DType::F32 && s.conv.ndim() == 4 && s.ssm.ndim() == 4 &&
                  s.conv.dim(0) == d.L && s.conv.dim(2) == d.K - 1 && s.conv.dim(3) == d.E && s.ssm.dim(0) == d.L &&
                  s.ssm.dim(1) == s.conv.dim(1) && s.ssm.dim(2) == d.N && s.ssm.dim(3) == d.E;
  if (!ok)
    return make_error(Code::SHAPE, "mamba: state (conv " + s.conv.desc() + ", ssm " + s.ssm.desc() +
                                       ") is not from this model (expects conv [L=" + std::to_string(d.L) + ", S, " +
                                       std::to_string(d.K - 1) + ", " + std::to_string(d.E) + "], ssm [L, S, " +
                                       std::to_string(d.N) + ", " + std::to_string(d.E) + "])");
  if (s.conv.device() != m.dev || s.ssm.device() != m.dev)
    return make_error(Code::DEVICE, "mamba: state on " + s.conv.device().str() + ", model on " + m.dev.str());
  *slots = s.conv.dim(1);
  return Status::Ok();
}

Status mamba_forward(const MambaModel& m, const Tensor& tokens, MambaState* state, const Tensor* slot_ids,
                     bool last_only, bool decode, Tensor* logits) {
  const MambaDims& d = m.d;
  const int64_t B = tokens.dim(0), T = tokens.dim(1), BT = B * T;
  const int64_t E = d.E, N = d.N, K = d.K, R = d.R, XD = R + 2 * N;
  std::unique_ptr<Backend> be;
  MK_RETURN_IF_ERROR(make_backend(m.dev, &be));

  // Workspace, f32: h/res [BT, D] (residual stream), xn [BT, D], xz [BT, 2E], u [BT, E], xdbl [BT, R+2N], dt [BT, E].
  Tensor h, res, xn, xz, u, xdbl, dt;
  for (auto* p : {&h, &res, &xn}) MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, d.D}, p));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, 2 * E}, &xz));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, E}, &u));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, XD}, &xdbl));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {BT, E}, &dt));
  const int32_t* slots = slot_ids ? slot_ids->ptr<int32_t>() : nullptr;
  int64_t S = 0;
  if (state) MK_RETURN_IF_ERROR(mamba_validate_state(m, *state, &S));

  // res = embedding(tokens): the residual stream; h holds each block's output until the next adds it
  MK_RETURN_IF_ERROR(be->embedding(tokens.ptr<int32_t>(), BT, m.embedding, res.ptr<float>()));
  for (int64_t i = 0; i < d.L; ++i) {
    const MambaLayer& l = m.layers[i];
    // res = res + h (from block 1 on); xn = rmsnorm(res) · norm
    MK_RETURN_IF_ERROR(i == 0 ? be->rmsnorm(res.ptr<float>(), nullptr, l.norm.ptr<float>(), xn.ptr<float>(), nullptr, BT, d.D, d.eps)
                              : be->rmsnorm(h.ptr<float>(), res.ptr<float>(), l.norm.ptr<float>(), xn.ptr<float>(), res.ptr<float>(), BT, d.D, d.eps));
    // x, z = split(in_proj(xn)): xz [BT, 2E], x = xz[:, :E], z = xz[:, E:]
    MK_RETURN_IF_ERROR(be->gemm(xn.ptr<float>(), d.D, l.in_proj, l.in_proj_bias.storage ? &l.in_proj_bias : nullptr, xz.ptr<float>(), 2 * E, BT));
    // u = silu(conv1d_causal(x)), the conv window carried in the state
    float* conv_state = state ? state->conv.ptr<float>() + i * S * (K - 1) * E : nullptr;
    const float* cb = l.conv_b.storage ? l.conv_b.ptr<float>() : nullptr;
    if (decode) MK_RETURN_IF_ERROR(be->conv1d_update(xz.ptr<float>(), 2 * E, l.conv_w.ptr<float>(), cb, conv_state, slots, u.ptr<float>(), E, B, E, K));
    else MK_RETURN_IF_ERROR(be->causal_conv1d(xz.ptr<float>(), 2 * E, l.conv_w.ptr<float>(), cb, conv_state, slots, u.ptr<float>(), E, B, T, E, K));
    // dt, B, C = split(x_proj(u), [R, N, N]); dt = dt_proj(dt) (its bias and softplus are fused into the scan)
    MK_RETURN_IF_ERROR(be->gemm(u.ptr<float>(), E, l.x_proj, nullptr, xdbl.ptr<float>(), XD, BT));
    MK_RETURN_IF_ERROR(be->gemm(xdbl.ptr<float>(), XD, l.dt_proj, nullptr, dt.ptr<float>(), E, BT));
    // y = (C·s + D·u) ⊙ silu(z), s_t = exp(dt·A) s_{t-1} + dt·B·u; y is written over u
    float* ssm_state = state ? state->ssm.ptr<float>() + i * S * N * E : nullptr;
    MK_RETURN_IF_ERROR(be->selective_scan(u.ptr<float>(), E, dt.ptr<float>(), E, l.dt_bias.ptr<float>(), l.A.ptr<float>(),
                                          xdbl.ptr<float>() + R, xdbl.ptr<float>() + R + N, XD, l.Dskip.ptr<float>(),
                                          xz.ptr<float>() + E, 2 * E, u.ptr<float>(), E, ssm_state, slots, B, T, E, N));
    // h = out_proj(y)
    MK_RETURN_IF_ERROR(be->gemm(u.ptr<float>(), E, l.out_proj, l.out_proj_bias.storage ? &l.out_proj_bias : nullptr, h.ptr<float>(), d.D, BT));
  }
  // logits = rmsnorm(h + res) · norm_f · lm_headᵀ (only the last position of each row when asked)
  MK_RETURN_IF_ERROR(be->rmsnorm(h.ptr<float>(), res.ptr<float>(), m.norm_f.ptr<float>(), xn.ptr<float>(), res.ptr<float>(), BT, d.D, d.eps));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, last_only ? Shape{B, d.V} : Shape{B, T, d.V}, logits));
  if (last_only) MK_RETURN_IF_ERROR(be->gemm(xn.ptr<float>() + (T - 1) * d.D, T * d.D, m.lm_head, nullptr, logits->ptr<float>(), d.V, B));
  else MK_RETURN_IF_ERROR(be->gemm(xn.ptr<float>(), d.D, m.lm_head, nullptr, logits->ptr<float>(), d.V, BT));
  return be->finish("mamba forward");
}

}  // namespace mk
