#include "models/mambaout_blocks.h"

#include <string>
#include <utility>

#include "core/vision.h"

namespace mk {
namespace {

Status ln(RunCtx& c, const LayerNormW& n, const float* x, float* y, int64_t rows, int64_t C, float eps) {
  return c.be.layernorm(x, n.w.ptr<float>(), n.b.ptr<float>(), y, rows, C, eps);
}

Status conv(RunCtx& c, const ConvS2& k, const float* x, float* y, const Geometry& g) {
  return c.be.conv3x3s2(x, k.w.ptr<float>(), k.b.ptr<float>(), y, g.B, g.H, g.W, g.C, k.w.dim(3));
}

Geometry halved(const Geometry& g, int64_t C) { return {g.B, conv_s2_out(g.H), conv_s2_out(g.W), C}; }

}  // namespace

// ---- ImageInput ---------------------------------------------------------------------------------

Status ImageInput::check(const CallInputs& in, Geometry* g) const {
  const Tensor& x = in.input;
  const std::string what = family_ + " forward: " + (C_ == 3 ? "pixels" : "x");
  if (!x.storage) return make_error(Code::ARG, what + " is missing");
  if (x.dtype != DType::F32) return make_error(Code::DTYPE, what + " must be f32, got " + x.desc());
  if (x.ndim() != 4 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) < 1 || x.dim(3) != C_)
    return make_error(Code::SHAPE, what + " must be f32 [B >= 1, H, W, " + std::to_string(C_) + "] (channels last), got " +
                                       x.desc());
  if (x.device() != dev_) return make_error(Code::DEVICE, what + " on " + x.device().str() + ", model on " + dev_.str());
  if (in.has_state || in.decode) return make_error(Code::ARG, family_ + ": an image model keeps no state");
  *g = Geometry{x.dim(0), x.dim(1), x.dim(2), C_};
  return Status::Ok();
}

Status ImageInput::run(RunCtx& c, Residual& r) const {
  r.has_pending = false;
  return c.be.copy(r.x, c.in.input.raw(), c.in.input.nbytes());
}

// ---- Stem ---------------------------------------------------------------------------------------

Geometry Stem::output(const Geometry& in) const { return halved(halved(in, c1_.w.dim(3)), c2_.w.dim(3)); }

void Stem::scratch(Arena& a, const Geometry& g) const { a.f32(halved(g, c1_.w.dim(3)).rows() * c1_.w.dim(3)); }

Status Stem::run(RunCtx& c, Residual& r) const {
  const Geometry g1 = halved(r.g, c1_.w.dim(3)), g2 = halved(g1, c2_.w.dim(3));
  float* y = c.ws.f32(g1.rows() * g1.C);
  // conv1 → LN → GELU (in place), then conv2 → LN into the stream
  MK_RETURN_IF_ERROR(conv(c, c1_, r.x, y, r.g));
  MK_RETURN_IF_ERROR(ln(c, n1_, y, y, g1.rows(), g1.C, eps_));
  MK_RETURN_IF_ERROR(c.be.gelu_gate(y, g1.C, nullptr, 0, y, g1.C, g1.rows(), g1.C));
  MK_RETURN_IF_ERROR(conv(c, c2_, y, r.x, g1));
  return ln(c, n2_, r.x, r.x, g2.rows(), g2.C, eps_);
}

// ---- GatedCnn -----------------------------------------------------------------------------------

GatedCnn::Bufs GatedCnn::bufs(Arena& a, int64_t rows) const {
  const int64_t h = gated_hidden(C_);
  Bufs b;
  b.t = a.f32(rows * C_);
  b.X = a.f32(rows * 2 * h);
  b.U = a.f32(rows * h);
  return b;
}

// x [B, H, W, C] is the stream, updated in place.
Status GatedCnn::run(RunCtx& c, Residual& r) const {
  const int64_t N = r.g.rows(), C = C_, h = gated_hidden(C), ic = h - C;
  const Bufs s = bufs(c.ws, N);
  if (r.has_pending) {  // a residual add of its own: fold the stream first
    MK_RETURN_IF_ERROR(c.be.add(r.x, r.pending, r.x, N * C, N * C));
    r.has_pending = false;
  }
  float* x = r.x;
  // g, i, c = split(fc1(norm(x)), [h, h - C, C]): X [N, 2h]
  MK_RETURN_IF_ERROR(ln(c, w_.norm, x, s.t, N, C, eps_));
  MK_RETURN_IF_ERROR(c.be.gemm(s.t, C, w_.fc1, w_.fc1_b.ptr<float>(), s.X, 2 * h, N));
  // c' = dwconv7(c), written straight into U's last C columns (where concat(i, c') puts it)
  MK_RETURN_IF_ERROR(c.be.dwconv7(s.X + 2 * h - C, 2 * h, w_.conv_w.ptr<float>(), w_.conv_b.ptr<float>(), s.U + ic, h,
                                  r.g.B, r.g.H, r.g.W, C));
  // U = gelu(g) ⊙ concat(i, c'): the i part reads X, the c' part is gated in place
  MK_RETURN_IF_ERROR(c.be.gelu_gate(s.X, 2 * h, s.X + h, 2 * h, s.U, h, N, ic));
  MK_RETURN_IF_ERROR(c.be.gelu_gate(s.X + ic, 2 * h, s.U + ic, h, s.U + ic, h, N, C));
  // x = fc2(U) + x
  MK_RETURN_IF_ERROR(c.be.gemm(s.U, h, w_.fc2, w_.fc2_b.ptr<float>(), s.t, C, N));
  return c.be.add(x, s.t, x, N * C, N * C);
}

// ---- Downsample ---------------------------------------------------------------------------------

Geometry Downsample::output(const Geometry& in) const { return halved(in, conv_.w.dim(3)); }

Status Downsample::run(RunCtx& c, Residual& r) const {
  const Geometry o = output(r.g);
  MK_RETURN_IF_ERROR(conv(c, conv_, r.x, r.alt, r.g));
  MK_RETURN_IF_ERROR(ln(c, norm_, r.alt, r.alt, o.rows(), o.C, eps_));
  std::swap(r.x, r.alt);
  return Status::Ok();
}

// ---- PooledHead ---------------------------------------------------------------------------------

void PooledHead::scratch(Arena& a, const Geometry& g) const {
  a.f32(2 * g.B * g.C);
  a.f32(2 * g.B * fc1_.dim(0));
}

Status PooledHead::run(RunCtx& c, Residual& r, float* out) const {
  const int64_t B = r.g.B, C = r.g.C, F = fc1_.dim(0);
  float* p0 = c.ws.f32(2 * B * C);
  float* h0 = c.ws.f32(2 * B * F);
  float *p1 = p0 + B * C, *h1 = h0 + B * F;
  MK_RETURN_IF_ERROR(c.be.mean_pool(r.x, p0, B, r.g.T(), C));
  MK_RETURN_IF_ERROR(ln(c, norm_, p0, p1, B, C, eps_));
  MK_RETURN_IF_ERROR(c.be.gemm(p1, C, fc1_, fc1_b_.ptr<float>(), h0, F, B));
  MK_RETURN_IF_ERROR(c.be.gelu_gate(h0, F, nullptr, 0, h0, F, B, F));
  MK_RETURN_IF_ERROR(ln(c, norm2_, h0, h1, B, F, eps_));
  return c.be.gemm(h1, F, fc2_, fc2_b_.ptr<float>(), out, fc2_.dim(0), B);
}

// ---- StreamOutput -------------------------------------------------------------------------------

Status StreamOutput::run(RunCtx& c, Residual& r, float* out) const {
  const int64_t n = r.g.rows() * r.g.C;
  if (r.has_pending) return c.be.add(r.x, r.pending, out, n, n);
  return c.be.copy(out, r.x, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace mk
