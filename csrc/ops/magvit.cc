// MAGVIT-v2's image ops (NHWC f32, core/magvit.h), for kernel tests and research use; the magvitv2
// plans call the same backend methods.
// conv2d(x [B, H, W, Ci], w [KH, KW, Ci, Co], bias? [Co], residual? [B, Ho, Wo, Co];
//        attrs stride, pad_top, pad_bottom, pad_left, pad_right) -> y [B, Ho, Wo, Co]
// group_norm(x [B, H, W, C], gamma? [C], beta? [C]; attrs groups, eps, silu) -> y
// upsample2x(x [B, H, W, C]) -> y [B, 2H, 2W, C]
// spatial_attn(q, k, v [B, P, C]; attr scale (default C^-0.5)) -> o [B, P, C]
// lfq_encode(z f32 [..., D]) -> codes i32 [...]
// lfq_decode(codes i32 [...]; attr bits) -> z f32 [..., bits]
#include <cmath>

#include "core/magvit.h"
#include "ops/check.h"

namespace mk {
namespace {

const float* opt_ptr(const Tensor* t) { return t ? t->ptr<float>() : nullptr; }

Status int_attr(const char* op, const Attrs& attrs, const char* key, double dflt, int64_t lo, int64_t hi, int64_t* out) {
  const double v = attrs.get(key, dflt);
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi) && v == std::floor(v)))
    return make_error(Code::ARG, std::string(op) + ": " + key + " must be an integer in [" + std::to_string(lo) + ", " +
                                     std::to_string(hi) + "], got " + std::to_string(v));
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status check_image(const char* op, const Tensor& x) {
  MK_RETURN_IF_ERROR(check_dtype(op, "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "x", x, 4, 4));
  if (x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) < 1) return shape_error(op, "x " + x.desc() + " has an empty H, W or C");
  return Status::Ok();
}

// ---- conv2d ----
Status conv_args(const Inputs& in, const Attrs& attrs, Conv2dArgs* a) {
  const char* op = "conv2d";
  const Tensor &x = *in[0], &w = *in[1];
  MK_RETURN_IF_ERROR(check_image(op, x));
  MK_RETURN_IF_ERROR(check_dtype(op, "w", w, {DType::F32}));
  if (w.ndim() != 4 || w.dim(2) != x.dim(3))
    return shape_error(op, "w " + w.desc() + " must be [KH, KW, Ci=" + std::to_string(x.dim(3)) + ", Co] (HWIO)");
  int64_t s = 1, pt = 0, pb = 0, pl = 0, pr = 0;
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "stride", 1, 1, 64, &s));
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "pad_top", 0, 0, 64, &pt));
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "pad_bottom", 0, 0, 64, &pb));
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "pad_left", 0, 0, 64, &pl));
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "pad_right", 0, 0, 64, &pr));
  *a = Conv2dArgs{};
  a->B = x.dim(0), a->H = x.dim(1), a->W = x.dim(2), a->Ci = x.dim(3), a->Co = w.dim(3);
  a->KH = w.dim(0), a->KW = w.dim(1), a->stride = s, a->pad_top = pt, a->pad_left = pl;
  if (pb >= a->KH || pr >= a->KW) return make_error(Code::ARG, "conv2d: padding must be smaller than the kernel");
  a->Ho = conv_out_size(a->H, a->KH, s, pt, pb), a->Wo = conv_out_size(a->W, a->KW, s, pl, pr);
  MK_RETURN_IF_ERROR(conv2d_can_run(*a));
  MK_RETURN_IF_ERROR(check_vec(op, "bias", in[2], a->Co));
  if (in[3]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "residual", *in[3], {DType::F32}));
    if (in[3]->shape != Shape{a->B, a->Ho, a->Wo, a->Co})
      return shape_error(op, "residual " + in[3]->desc() + " must be the output's shape " + shape_str({a->B, a->Ho, a->Wo, a->Co}));
  }
  return Status::Ok();
}
Status check_conv(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  Conv2dArgs a;
  MK_RETURN_IF_ERROR(conv_args(in, attrs, &a));
  out->push_back({DType::F32, {a.B, a.Ho, a.Wo, a.Co}});
  return Status::Ok();
}
Status conv(const OpCall& c) {
  Conv2dArgs a;
  MK_RETURN_IF_ERROR(conv_args(c.in, c.attrs, &a));
  a.x = c.in[0]->ptr<float>(), a.w = c.in[1]->ptr<float>(), a.bias = opt_ptr(c.in[2]), a.residual = opt_ptr(c.in[3]);
  a.y = c.out[0].ptr<float>();
  return c.be.conv2d(a);
}

// ---- group_norm ----
Status check_gn(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  const char* op = "group_norm";
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_image(op, x));
  int64_t G = 0;
  MK_RETURN_IF_ERROR(int_attr(op, attrs, "groups", 32, 1, 1 << 20, &G));
  MK_RETURN_IF_ERROR(group_norm_can_run(x.dim(0), x.dim(1) * x.dim(2), x.dim(3), G));
  MK_RETURN_IF_ERROR(check_vec(op, "gamma", in[1], x.dim(3)));
  MK_RETURN_IF_ERROR(check_vec(op, "beta", in[2], x.dim(3)));
  const double eps = attrs.get("eps", 1e-6);
  if (!(eps > 0 && eps < 1)) return make_error(Code::ARG, "group_norm: eps must be in (0, 1)");
  out->push_back({DType::F32, x.shape});
  return Status::Ok();
}
Status gn(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return c.be.group_norm(x.ptr<float>(), opt_ptr(c.in[1]), opt_ptr(c.in[2]), c.out[0].ptr<float>(), x.dim(0),
                         x.dim(1) * x.dim(2), x.dim(3), static_cast<int64_t>(c.attrs.get("groups", 32)),
                         static_cast<float>(c.attrs.get("eps", 1e-6)), c.attrs.get("silu", 0) != 0);
}

// ---- upsample2x ----
Status check_up(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_image("upsample2x", x));
  out->push_back({DType::F32, {x.dim(0), 2 * x.dim(1), 2 * x.dim(2), x.dim(3)}});
  return Status::Ok();
}
Status up(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return c.be.upsample2x(x.ptr<float>(), c.out[0].ptr<float>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3));
}

// ---- spatial_attn ----
Status check_attn(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const char* op = "spatial_attn";
  const Tensor& q = *in[0];
  MK_RETURN_IF_ERROR(check_dtype(op, "q", q, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "q", q, 3, 3));
  if (q.dim(1) < 1 || q.dim(2) < 1) return shape_error(op, "q " + q.desc() + " is empty");
  for (int i = 1; i < 3; ++i) {
    MK_RETURN_IF_ERROR(check_dtype(op, i == 1 ? "k" : "v", *in[i], {DType::F32}));
    if (in[i]->shape != q.shape) return shape_error(op, std::string(i == 1 ? "k " : "v ") + in[i]->desc() + " must match q " + q.desc());
  }
  out->push_back({DType::F32, q.shape});
  return Status::Ok();
}
Status attn(const OpCall& c) {
  const Tensor& q = *c.in[0];
  const int64_t B = q.dim(0), P = q.dim(1), C = q.dim(2);
  Tensor scratch;
  MK_RETURN_IF_ERROR(Tensor::create(c.be.device(), DType::F32, {spatial_attn_scratch(B, P, C)}, &scratch));
  const float scale = static_cast<float>(c.attrs.get("scale", 1.0 / std::sqrt(static_cast<double>(C))));
  MK_RETURN_IF_ERROR(c.be.spatial_attn(q.ptr<float>(), c.in[1]->ptr<float>(), c.in[2]->ptr<float>(), C, c.out[0].ptr<float>(),
                                       C, scratch.ptr<float>(), B, P, C, scale));
  return c.be.finish("spatial_attn");  // the scratch is released on return: wait for the kernels first
}

// ---- lfq_encode / lfq_decode ----
Status check_lfq_enc(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor& z = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("lfq_encode", "z", z, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("lfq_encode", "z", z, 1, 8));
  MK_RETURN_IF_ERROR(lfq_can_run(z.dim(-1)));
  out->push_back({DType::I32, Shape(z.shape.begin(), z.shape.end() - 1)});
  return Status::Ok();
}
Status lfq_enc(const OpCall& c) {
  const Tensor& z = *c.in[0];
  const int64_t D = z.dim(-1);
  return c.be.lfq_encode(z.ptr<float>(), D, z.numel() / D, D, c.out[0].ptr<int32_t>(), nullptr);
}
Status check_lfq_dec(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  const Tensor& codes = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("lfq_decode", "codes", codes, {DType::I32}));
  int64_t D = 0;
  MK_RETURN_IF_ERROR(int_attr("lfq_decode", attrs, "bits", 13, 1, kLfqMaxBits, &D));
  Shape s = codes.shape;
  s.push_back(D);
  out->push_back({DType::F32, s});
  return Status::Ok();
}
Status lfq_dec(const OpCall& c) {
  const Tensor& codes = *c.in[0];
  Tensor flag;
  MK_RETURN_IF_ERROR(Tensor::create(c.be.device(), DType::I32, {1}, &flag));
  return c.be.lfq_decode(codes.ptr<int32_t>(), codes.numel(), static_cast<int64_t>(c.attrs.get("bits", 13)),
                         c.out[0].ptr<float>(), flag.ptr<int32_t>(), true);
}

OpRegistrar r_conv({"conv2d", 4, 0b1100, check_conv, conv});
OpRegistrar r_gn({"group_norm", 3, 0b110, check_gn, gn});
OpRegistrar r_up({"upsample2x", 1, 0, check_up, up});
OpRegistrar r_attn({"spatial_attn", 3, 0, check_attn, attn});
OpRegistrar r_lfq_enc({"lfq_encode", 1, 0, check_lfq_enc, lfq_enc});
OpRegistrar r_lfq_dec({"lfq_decode", 1, 0, check_lfq_dec, lfq_dec});

}  // namespace
}  // namespace mk
