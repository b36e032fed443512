// Mamba kernels as eager ops (for tests and research; models call them from their native plan):
//   causal_conv1d(x [B,T,E], w [E,K] or [E,1,K], bias? [E], state? [B,K-1,E]) -> y [B,T,E], state' [B,K-1,E]
//     attr silu (default 1)
//   selective_scan(u [B,T,E], dt [B,T,E], A [N,E], Bm [B,T,N], Cm [B,T,N], D? [E], z? [B,T,E],
//                  dt_bias? [E], state? [B,N,E]) -> y [B,T,E], state' [B,N,E]
// A is -exp(A_log) transposed to [N, E]; the state layouts are the models' (channel-contiguous).
#include "core/ssm.h"
#include "ops/check.h"

namespace mk {
namespace {

Status expect_shape(const char* op, const char* what, const Tensor* t, const Shape& s) {
  if (!t) return Status::Ok();
  MK_RETURN_IF_ERROR(check_dtype(op, what, *t, {DType::F32}));
  if (t->shape != s) return shape_error(op, std::string(what) + " " + t->desc() + " must be " + shape_str(s));
  return Status::Ok();
}

Status check_conv(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor &x = *in[0], &w = *in[1];
  MK_RETURN_IF_ERROR(check_dtype("causal_conv1d", "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("causal_conv1d", "x", x, 3, 3));
  const int64_t B = x.dim(0), T = x.dim(1), E = x.dim(2);
  const int64_t K = w.ndim() >= 2 ? w.dim(-1) : 0;
  if (!(w.ndim() == 2 || (w.ndim() == 3 && w.dim(1) == 1)) || w.dim(0) != E || !conv_can_run(K, B).ok())
    return shape_error("causal_conv1d", "w " + w.desc() + " must be [E=" + std::to_string(E) + ", K] or [E, 1, K] with K in [1, " +
                                            std::to_string(kConvMaxK) + "] (and batch <= 65535)");
  MK_RETURN_IF_ERROR(check_dtype("causal_conv1d", "w", w, {DType::F32}));
  MK_RETURN_IF_ERROR(expect_shape("causal_conv1d", "bias", in[2], {E}));
  MK_RETURN_IF_ERROR(expect_shape("causal_conv1d", "state", in[3], {B, K - 1, E}));
  out->push_back({DType::F32, {B, T, E}});
  out->push_back({DType::F32, {B, K - 1, E}});
  return Status::Ok();
}

Status check_scan(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor &u = *in[0], &A = *in[2];
  MK_RETURN_IF_ERROR(check_dtype("selective_scan", "u", u, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("selective_scan", "u", u, 3, 3));
  MK_RETURN_IF_ERROR(check_ndim("selective_scan", "A", A, 2, 2));
  const int64_t B = u.dim(0), T = u.dim(1), E = u.dim(2), N = A.dim(0);
  if (!scan_can_run(N, B).ok())
    return shape_error("selective_scan", "A " + A.desc() + ": state size N must be in [1, " + std::to_string(kSsmMaxN) +
                                             "] (and batch <= 65535)");
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "dt", in[1], {B, T, E}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "A", in[2], {N, E}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "B", in[3], {B, T, N}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "C", in[4], {B, T, N}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "D", in[5], {E}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "z", in[6], {B, T, E}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "dt_bias", in[7], {E}));
  MK_RETURN_IF_ERROR(expect_shape("selective_scan", "state", in[8], {B, N, E}));
  out->push_back({DType::F32, {B, T, E}});
  out->push_back({DType::F32, {B, N, E}});
  return Status::Ok();
}

const float* opt(const Tensor* t) { return t ? t->ptr<float>() : nullptr; }

// The output state starts as the input state (or zeros) and the kernel updates it in place.
Status init_state(Backend& be, const Tensor* in, Tensor& out) {
  return in ? be.copy(out.raw(), in->raw(), out.nbytes()) : be.zero(out.raw(), out.nbytes());
}

Status conv(const OpCall& c) {
  const Tensor& x = *c.in[0];
  MK_RETURN_IF_ERROR(init_state(c.be, c.in[3], c.out[1]));
  const int64_t B = x.dim(0), T = x.dim(1), E = x.dim(2), K = c.in[1]->dim(-1);
  if (B * T * E == 0) return Status::Ok();
  return c.be.causal_conv1d({x.ptr<float>(), E, c.in[1]->ptr<float>(), opt(c.in[2]), c.out[1].ptr<float>(), nullptr,
                             c.out[0].ptr<float>(), E, B, T, E, K, c.attrs.get("silu", 1) != 0});
}

Status scan(const OpCall& c) {
  const Tensor& u = *c.in[0];
  MK_RETURN_IF_ERROR(init_state(c.be, c.in[8], c.out[1]));
  const int64_t B = u.dim(0), T = u.dim(1), E = u.dim(2), N = c.in[2]->dim(0);
  if (B * T * E == 0) return Status::Ok();
  return c.be.selective_scan({u.ptr<float>(), E, c.in[1]->ptr<float>(), E, opt(c.in[7]), c.in[2]->ptr<float>(),
                              c.in[3]->ptr<float>(), c.in[4]->ptr<float>(), N, opt(c.in[5]), opt(c.in[6]), E,
                              c.out[0].ptr<float>(), E, c.out[1].ptr<float>(), nullptr, B, T, E, N});
}

OpRegistrar r_conv({"causal_conv1d", 4, 0b1100, check_conv, conv});
OpRegistrar r_scan({"selective_scan", 9, 0b111100000, check_scan, scan});

}  // namespace
}  // namespace mk
