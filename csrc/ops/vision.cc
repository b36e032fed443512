// MambaOut's image ops (NHWC, f32), for tests and research use; the model plan calls the same kernels.
// conv3x3s2(x [B, H, W, Ci], w [3, 3, Ci, Co], bias? [Co]) -> y [B, ceil(H/2), ceil(W/2), Co]
// dwconv7(x [B, H, W, S], w [7, 7, C], bias? [C]; attr offset) -> y [B, H, W, C]: the conv of the
//   channel slice [offset, offset + C) of x (read with pixel stride S)
// gelu_gate(a, b?) -> gelu(a) ⊙ b (b of a's shape), or gelu(a)
// mean_pool(x [B, H, W, C]) -> y [B, C]
#include "core/vision.h"
#include "ops/check.h"

namespace mk {
namespace {

Status check_image(const char* op, const Tensor& x) {
  MK_RETURN_IF_ERROR(check_dtype(op, "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "x", x, 4, 4));
  if (x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) < 1) return shape_error(op, "x " + x.desc() + " has an empty H, W or C");
  return Status::Ok();
}

const float* opt_ptr(const Tensor* t) { return t ? t->ptr<float>() : nullptr; }

// ---- conv3x3s2 ----
Status check_conv(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor &x = *in[0], &w = *in[1];
  MK_RETURN_IF_ERROR(check_image("conv3x3s2", x));
  MK_RETURN_IF_ERROR(check_dtype("conv3x3s2", "w", w, {DType::F32}));
  if (w.ndim() != 4 || w.dim(0) != 3 || w.dim(1) != 3 || w.dim(2) != x.dim(3) || w.dim(3) < 1)
    return shape_error("conv3x3s2", "w " + w.desc() + " must be [3, 3, Ci=" + std::to_string(x.dim(3)) + ", Co]");
  MK_RETURN_IF_ERROR(check_vec("conv3x3s2", "bias", in[2], w.dim(3)));
  out->push_back({DType::F32, {x.dim(0), conv_s2_out(x.dim(1)), conv_s2_out(x.dim(2)), w.dim(3)}});
  return Status::Ok();
}
Status conv(const OpCall& c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  return c.be.conv3x3s2(x.ptr<float>(), w.ptr<float>(), opt_ptr(c.in[2]), c.out[0].ptr<float>(), x.dim(0), x.dim(1),
                        x.dim(2), x.dim(3), w.dim(3));
}

// ---- dwconv7 ----
Status check_dw(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  const Tensor &x = *in[0], &w = *in[1];
  MK_RETURN_IF_ERROR(check_image("dwconv7", x));
  MK_RETURN_IF_ERROR(check_dtype("dwconv7", "w", w, {DType::F32}));
  if (w.ndim() != 3 || w.dim(0) != 7 || w.dim(1) != 7 || w.dim(2) < 1)
    return shape_error("dwconv7", "w " + w.desc() + " must be [7, 7, C]");
  const double off = attrs.get("offset", 0);
  if (!(off >= 0 && off == static_cast<int64_t>(off) && static_cast<int64_t>(off) + w.dim(2) <= x.dim(3)))
    return shape_error("dwconv7", "channels [" + std::to_string(off) + ", +" + std::to_string(w.dim(2)) +
                                      ") do not fit x " + x.desc());
  MK_RETURN_IF_ERROR(check_vec("dwconv7", "bias", in[2], w.dim(2)));
  out->push_back({DType::F32, {x.dim(0), x.dim(1), x.dim(2), w.dim(2)}});
  return Status::Ok();
}
Status dw(const OpCall& c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  const int64_t off = static_cast<int64_t>(c.attrs.get("offset", 0)), C = w.dim(2);
  return c.be.dwconv7(x.ptr<float>() + off, x.dim(3), w.ptr<float>(), opt_ptr(c.in[2]), c.out[0].ptr<float>(), C,
                      x.dim(0), x.dim(1), x.dim(2), C);
}

// ---- gelu_gate ----
Status check_gate(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype("gelu_gate", "a", *in[0], {DType::F32}));
  if (in[1]) {
    MK_RETURN_IF_ERROR(check_dtype("gelu_gate", "b", *in[1], {DType::F32}));
    if (in[1]->shape != in[0]->shape)
      return shape_error("gelu_gate", "b " + in[1]->desc() + " must match a " + in[0]->desc());
  }
  out->push_back({DType::F32, in[0]->shape});
  return Status::Ok();
}
Status gate(const OpCall& c) {
  const Tensor& a = *c.in[0];
  const int64_t n = a.ndim() == 0 ? 1 : a.dim(-1), rows = rows_of(a);
  if (a.numel() == 0) return Status::Ok();
  return c.be.gelu_gate(a.ptr<float>(), n, opt_ptr(c.in[1]), n, c.out[0].ptr<float>(), n, rows, n);
}

// ---- mean_pool ----
Status check_pool(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_image("mean_pool", *in[0]));
  out->push_back({DType::F32, {in[0]->dim(0), in[0]->dim(3)}});
  return Status::Ok();
}
Status pool(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return c.be.mean_pool(x.ptr<float>(), c.out[0].ptr<float>(), x.dim(0), x.dim(1) * x.dim(2), x.dim(3));
}

OpRegistrar r_conv({"conv3x3s2", 3, 0b100, check_conv, conv});
OpRegistrar r_dw({"dwconv7", 3, 0b100, check_dw, dw});
OpRegistrar r_gate({"gelu_gate", 2, 0b10, check_gate, gate});
OpRegistrar r_pool({"mean_pool", 1, 0, check_pool, pool});

}  // namespace
}  // namespace mk
