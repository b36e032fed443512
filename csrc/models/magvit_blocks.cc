// MAGVIT-v2's block kinds (magvit_blocks.h), following Gen-Verse/MMaDA models/common_modules.py
// (ResnetBlock, AttnBlock, Upsample, Downsample, Normalize = GroupNorm(32, eps 1e-6)) and
// models/modeling_magvitv2.py (LFQuantizer's codes).
#include "models/magvit_blocks.h"

#include <cmath>
#include <string>
#include <utility>

namespace mk {
namespace {

Status gn(RunCtx& c, const GroupNormW& n, const float* x, float* y, const Geometry& g, bool silu) {
  return c.be.group_norm(x, n.w.ptr<float>(), n.b.ptr<float>(), y, g.B, g.H * g.W, g.C, n.groups, n.eps, silu);
}

Status conv(RunCtx& c, const ConvW& k, const float* x, const Geometry& g, const float* residual, float* y) {
  Conv2dArgs a{};
  a.x = x, a.w = k.w.ptr<float>(), a.bias = k.b.storage ? k.b.ptr<float>() : nullptr, a.residual = residual, a.y = y;
  a.B = g.B, a.H = g.H, a.W = g.W, a.Ci = g.C, a.Co = k.co(), a.KH = k.w.dim(0), a.KW = k.w.dim(1);
  a.stride = k.stride, a.pad_top = k.pad_top, a.pad_left = k.pad_left;
  a.Ho = conv_out_size(g.H, a.KH, k.stride, k.pad_top, k.pad_bottom);
  a.Wo = conv_out_size(g.W, a.KW, k.stride, k.pad_left, k.pad_right);
  return c.be.conv2d(a);
}

Status linear(RunCtx& c, const LinearW& l, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows) {
  return c.be.gemm(x, ldx, l.w, l.b.storage ? l.b.ptr<float>() : nullptr, y, ldy, rows);
}

}  // namespace

// ---- PixelInput / CodeInput ---------------------------------------------------------------------

Status PixelInput::check(const CallInputs& in, Geometry* g) const {
  const Tensor& x = in.input;
  const std::string what = "magvitv2 encode: pixels";
  if (!x.storage) return make_error(Code::ARG, what + " are missing");
  if (x.dtype != DType::F32) return make_error(Code::DTYPE, what + " must be f32, got " + x.desc());
  if (x.ndim() != 4 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) != 3)
    return make_error(Code::SHAPE, what + " must be f32 [B >= 1, H, W, 3] (channels last), got " + x.desc());
  if (x.dim(1) % factor_ != 0 || x.dim(2) % factor_ != 0)
    return make_error(Code::SHAPE, what + " " + x.desc() + ": H and W must be multiples of " + std::to_string(factor_) +
                                       " (the encoder downsamples by " + std::to_string(factor_) + ")");
  if (x.device() != dev_) return make_error(Code::DEVICE, what + " on " + x.device().str() + ", model on " + dev_.str());
  if (in.has_state || in.decode) return make_error(Code::ARG, "magvitv2: an image tokenizer keeps no state");
  *g = Geometry{x.dim(0), x.dim(1), x.dim(2), 3};
  return Status::Ok();
}

Status PixelInput::run(RunCtx& c, Residual& r) const {
  r.has_pending = false;
  return c.be.copy(r.x, c.in.input.raw(), c.in.input.nbytes());
}

Status CodeInput::check(const CallInputs& in, Geometry* g) const {
  const Tensor& x = in.input;
  const std::string what = "magvitv2 decode: codes";
  if (!x.storage) return make_error(Code::ARG, what + " are missing");
  if (x.dtype != DType::I32) return make_error(Code::DTYPE, what + " must be i32, got " + x.desc());
  if (x.ndim() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1)
    return make_error(Code::SHAPE, what + " must be i32 [B >= 1, h, w], got " + x.desc());
  if (x.device() != dev_) return make_error(Code::DEVICE, what + " on " + x.device().str() + ", model on " + dev_.str());
  if (in.has_state || in.decode) return make_error(Code::ARG, "magvitv2: an image tokenizer keeps no state");
  *g = Geometry{x.dim(0), x.dim(1), x.dim(2), bits_};
  return Status::Ok();
}

Status CodeInput::run(RunCtx& c, Residual& r) const {
  r.has_pending = false;
  return c.be.lfq_decode(c.in.input.ptr<int32_t>(), r.g.rows(), bits_, r.x, c.flag, c.verify);
}

// ---- Conv ---------------------------------------------------------------------------------------

Geometry Conv::output(const Geometry& in) const {
  const int64_t H = upsample_ ? 2 * in.H : in.H, W = upsample_ ? 2 * in.W : in.W;
  return {in.B, conv_out_size(H, conv_.w.dim(0), conv_.stride, conv_.pad_top, conv_.pad_bottom),
          conv_out_size(W, conv_.w.dim(1), conv_.stride, conv_.pad_left, conv_.pad_right), conv_.co()};
}

Conv::Bufs Conv::bufs(Arena& a, const Geometry& g) const {
  Bufs b{nullptr, nullptr};
  if (norm_.w.storage) b.in = a.f32(g.rows() * g.C);
  if (upsample_) b.up = a.f32(4 * g.rows() * g.C);
  return b;
}

Status Conv::run(RunCtx& c, Residual& r) const {
  const Bufs s = bufs(c.ws, r.g);
  const float* x = r.x;
  Geometry g = r.g;
  if (norm_.w.storage) {
    MK_RETURN_IF_ERROR(gn(c, norm_, x, s.in, g, true));
    x = s.in;
  }
  if (upsample_) {
    MK_RETURN_IF_ERROR(c.be.upsample2x(x, s.up, g.B, g.H, g.W, g.C));
    x = s.up, g.H *= 2, g.W *= 2;
  }
  MK_RETURN_IF_ERROR(conv(c, conv_, x, g, nullptr, r.alt));
  std::swap(r.x, r.alt);
  return Status::Ok();
}

// ---- Resnet -------------------------------------------------------------------------------------

Resnet::Bufs Resnet::bufs(Arena& a, const Geometry& g) const {
  const int64_t Co = c2_.co(), big = g.C > Co ? g.C : Co;
  Bufs b;
  b.t1 = a.f32(g.rows() * big);
  b.t2 = a.f32(g.rows() * Co);
  return b;
}

// h = conv1(silu(gn1(x))); h = conv2(silu(gn2(h))); out = x' + h (common_modules.py ResnetBlock, temb None,
// dropout 0): the residual is added inside conv2.
Status Resnet::run(RunCtx& c, Residual& r) const {
  const Bufs s = bufs(c.ws, r.g);
  const Geometry gi = r.g, go = output(gi);
  MK_RETURN_IF_ERROR(gn(c, n1_, r.x, s.t1, gi, true));
  MK_RETURN_IF_ERROR(conv(c, c1_, s.t1, gi, nullptr, s.t2));
  MK_RETURN_IF_ERROR(gn(c, n2_, s.t2, s.t2, go, true));
  if (!sc_.w.storage)  // x + h, in place (conv2d reads each residual element before writing it)
    return conv(c, c2_, s.t2, go, r.x, r.x);
  MK_RETURN_IF_ERROR(linear(c, sc_, r.x, gi.C, s.t1, go.C, gi.rows()));
  MK_RETURN_IF_ERROR(conv(c, c2_, s.t2, go, s.t1, r.alt));
  std::swap(r.x, r.alt);
  return Status::Ok();
}

// ---- Attn ---------------------------------------------------------------------------------------

Attn::Bufs Attn::bufs(Arena& a, const Geometry& g) const {
  const int64_t N = g.rows(), C = g.C;
  Bufs b;
  b.h = a.f32(N * C);
  b.qkv = a.f32(N * 3 * C);
  b.o = a.f32(N * C);
  b.s = a.f32(spatial_attn_scratch(g.B, g.H * g.W, C));
  return b;
}

// x + proj_out(softmax(q kᵀ / √C) v) with q, k, v = 1×1 convs of gn(x) (common_modules.py AttnBlock).
Status Attn::run(RunCtx& c, Residual& r) const {
  const Bufs s = bufs(c.ws, r.g);
  const int64_t N = r.g.rows(), C = r.g.C;
  MK_RETURN_IF_ERROR(gn(c, norm_, r.x, s.h, r.g, false));
  MK_RETURN_IF_ERROR(linear(c, q_, s.h, C, s.qkv, 3 * C, N));
  MK_RETURN_IF_ERROR(linear(c, k_, s.h, C, s.qkv + C, 3 * C, N));
  MK_RETURN_IF_ERROR(linear(c, v_, s.h, C, s.qkv + 2 * C, 3 * C, N));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(C)));  // int(c) ** (-0.5)
  MK_RETURN_IF_ERROR(c.be.spatial_attn(s.qkv, s.qkv + C, s.qkv + 2 * C, 3 * C, s.o, C, s.s, r.g.B, r.g.H * r.g.W, C, scale));
  MK_RETURN_IF_ERROR(linear(c, proj_, s.o, C, s.h, C, N));
  return c.be.add(r.x, s.h, r.x, N * C, N * C);
}

// ---- Pointwise ----------------------------------------------------------------------------------

Status Pointwise::run(RunCtx& c, Residual& r) const {
  MK_RETURN_IF_ERROR(linear(c, w_, r.x, r.g.C, r.alt, w_.w.dim(0), r.g.rows()));
  std::swap(r.x, r.alt);
  return Status::Ok();
}

// ---- heads --------------------------------------------------------------------------------------

Shape LfqHead::output_shape(const Geometry& g, const CallInputs&) const {
  return {g.B, g.H * g.W};
}

Status LfqHead::run(RunCtx& c, Residual& r, float* out) const {
  return c.be.lfq_encode(r.x, r.g.C, r.g.rows(), r.g.C, nullptr, out);
}

Shape GridOutput::output_shape(const Geometry& g, const CallInputs&) const {
  return {g.B, g.H, g.W, g.C};
}

Status GridOutput::run(RunCtx& c, Residual& r, float* out) const {
  return c.be.copy(out, r.x, static_cast<size_t>(r.g.rows() * r.g.C) * sizeof(float));
}

}  // namespace mk
