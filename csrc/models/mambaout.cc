#include "models/mambaout.h"

#include <algorithm>
#include <memory>
#include <string>

#include "models/backend.h"

namespace mk {
namespace {

Status expect(const Tensor& t, const std::string& where, const Shape& shape, bool weight, Device dev) {
  if (!t.storage) return make_error(Code::ARG, "mambaout: missing tensor " + where);
  if (t.device() != dev) return make_error(Code::DEVICE, "mambaout: " + where + " is on " + t.device().str() + ", model on " + dev.str());
  if (weight ? !is_float(t.dtype) : t.dtype != DType::F32)
    return make_error(Code::DTYPE, "mambaout: " + where + " has dtype " + dtype_name(t.dtype));
  if (t.shape != shape) return make_error(Code::SHAPE, "mambaout: " + where + " is " + t.desc() + ", expected " + shape_str(shape));
  return Status::Ok();
}

Status expect_norm(const LayerNormW& n, const std::string& where, int64_t C, Device dev) {
  MK_RETURN_IF_ERROR(expect(n.w, where + ".weight", {C}, false, dev));
  return expect(n.b, where + ".bias", {C}, false, dev);
}

Status expect_conv(const ConvS2& c, const std::string& where, int64_t Ci, int64_t Co, Device dev) {
  MK_RETURN_IF_ERROR(expect(c.w, where + ".weight", {3, 3, Ci, Co}, false, dev));
  return expect(c.b, where + ".bias", {Co}, false, dev);
}

}  // namespace

Status gated_block_validate(const GatedBlock& b, int64_t C, Device dev, const std::string& where) {
  const int64_t h = gated_hidden(C);
  MK_RETURN_IF_ERROR(expect_norm(b.norm, where + ".norm", C, dev));
  MK_RETURN_IF_ERROR(expect(b.fc1, where + ".fc1.weight", {2 * h, C}, true, dev));
  MK_RETURN_IF_ERROR(expect(b.fc1_b, where + ".fc1.bias", {2 * h}, false, dev));
  MK_RETURN_IF_ERROR(expect(b.conv_w, where + ".conv.weight", {7, 7, C}, false, dev));
  MK_RETURN_IF_ERROR(expect(b.conv_b, where + ".conv.bias", {C}, false, dev));
  MK_RETURN_IF_ERROR(expect(b.fc2, where + ".fc2.weight", {C, h}, true, dev));
  return expect(b.fc2_b, where + ".fc2.bias", {C}, false, dev);
}

Status mambaout_validate(const MambaOutModel& m) {
  const size_t S = m.dims.size();
  if (S < 1 || S > 8 || m.depths.size() != S || m.stages.size() != S || m.classes < 1 || !(m.eps > 0 && m.eps < 1))
    return make_error(Code::ARG, "mambaout: need 1..8 stages with as many dims, depths and stage weights, classes >= 1");
  for (size_t i = 0; i < S; ++i)
    if (m.dims[i] < 2 || m.dims[i] > 65536 || m.depths[i] < 0 || m.depths[i] > 1024 ||
        static_cast<int64_t>(m.stages[i].blocks.size()) != m.depths[i])
      return make_error(Code::ARG, "mambaout: stage " + std::to_string(i) + " has dim " + std::to_string(m.dims[i]) +
                                       ", depth " + std::to_string(m.depths[i]) + " and " +
                                       std::to_string(m.stages[i].blocks.size()) + " blocks");
  const int64_t C0 = m.dims[0], C3 = m.dims[S - 1];
  MK_RETURN_IF_ERROR(expect_conv(m.stem1, "stem.conv1", 3, C0 / 2, m.dev));
  MK_RETURN_IF_ERROR(expect_norm(m.stem_norm1, "stem.norm1", C0 / 2, m.dev));
  MK_RETURN_IF_ERROR(expect_conv(m.stem2, "stem.conv2", C0 / 2, C0, m.dev));
  MK_RETURN_IF_ERROR(expect_norm(m.stem_norm2, "stem.norm2", C0, m.dev));
  for (size_t i = 0; i < S; ++i) {
    const std::string p = "stages." + std::to_string(i);
    if (i > 0) {
      MK_RETURN_IF_ERROR(expect_conv(m.stages[i].down, p + ".downsample.conv", m.dims[i - 1], m.dims[i], m.dev));
      MK_RETURN_IF_ERROR(expect_norm(m.stages[i].down_norm, p + ".downsample.norm", m.dims[i], m.dev));
    }
    for (size_t j = 0; j < m.stages[i].blocks.size(); ++j)
      MK_RETURN_IF_ERROR(gated_block_validate(m.stages[i].blocks[j], m.dims[i], m.dev, p + ".blocks." + std::to_string(j)));
  }
  MK_RETURN_IF_ERROR(expect_norm(m.head_norm, "head.norm", C3, m.dev));
  MK_RETURN_IF_ERROR(expect(m.head_fc1, "head.pre_logits.fc.weight", {4 * C3, C3}, true, m.dev));
  MK_RETURN_IF_ERROR(expect(m.head_fc1_b, "head.pre_logits.fc.bias", {4 * C3}, false, m.dev));
  MK_RETURN_IF_ERROR(expect_norm(m.head_norm2, "head.pre_logits.norm", 4 * C3, m.dev));
  MK_RETURN_IF_ERROR(expect(m.head_fc2, "head.fc.weight", {m.classes, 4 * C3}, true, m.dev));
  return expect(m.head_fc2_b, "head.fc.bias", {m.classes}, false, m.dev);
}

namespace {

struct Kernels {
  Backend& be;        // gemm, finish
  VisionBackend& vb;  // the image kernels
};

Status ln(Kernels& k, const LayerNormW& n, const float* x, float* y, int64_t rows, int64_t C, float eps) {
  return k.vb.layernorm(x, n.w.ptr<float>(), n.b.ptr<float>(), y, rows, C, eps);
}

// Scratch of one block on N = B·H·W pixels: t [N, C], fc1 output X [N, 2h], gate output U [N, h].
struct BlockScratch {
  float *t, *X, *U;
};

// x [B, H, W, C] is the residual stream, updated in place.
Status run_block(Kernels& k, const GatedBlock& b, float* x, int64_t B, int64_t H, int64_t W, int64_t C, float eps,
                 const BlockScratch& s) {
  const int64_t N = B * H * W, h = gated_hidden(C), ic = h - C;
  // g, i, c = split(fc1(norm(x)), [h, h - C, C]): X [N, 2h]
  MK_RETURN_IF_ERROR(ln(k, b.norm, x, s.t, N, C, eps));
  MK_RETURN_IF_ERROR(k.be.gemm(s.t, C, b.fc1, &b.fc1_b, s.X, 2 * h, N));
  // c' = dwconv7(c), written straight into U's last C columns (where concat(i, c') puts it)
  MK_RETURN_IF_ERROR(k.vb.dwconv7(s.X + 2 * h - C, 2 * h, b.conv_w.ptr<float>(), b.conv_b.ptr<float>(), s.U + ic, h,
                                  B, H, W, C));
  // U = gelu(g) ⊙ concat(i, c'): the i part reads X, the c' part is gated in place
  MK_RETURN_IF_ERROR(k.vb.gelu_gate(s.X, 2 * h, s.X + h, 2 * h, s.U, h, N, ic));
  MK_RETURN_IF_ERROR(k.vb.gelu_gate(s.X + ic, 2 * h, s.U + ic, h, s.U + ic, h, N, C));
  // x = fc2(U) + x
  MK_RETURN_IF_ERROR(k.be.gemm(s.U, h, b.fc2, &b.fc2_b, s.t, C, N));
  return k.vb.add(x, s.t, x, N * C);
}

// Sized (in floats) for the largest stage that uses it.
struct Scratch {
  Tensor t, X, U;
  Status create(Device dev, int64_t nt, int64_t nx, int64_t nu) {
    MK_RETURN_IF_ERROR(Tensor::create(dev, DType::F32, {nt}, &t));
    MK_RETURN_IF_ERROR(Tensor::create(dev, DType::F32, {nx}, &X));
    return Tensor::create(dev, DType::F32, {nu}, &U);
  }
  BlockScratch ptrs() const { return {t.ptr<float>(), X.ptr<float>(), U.ptr<float>()}; }
};

Status make_kernels(Device dev, std::unique_ptr<Backend>* be, std::unique_ptr<VisionBackend>* vb) {
  MK_RETURN_IF_ERROR(make_backend(dev, be));
  return make_vision_backend(dev, vb);
}

}  // namespace

Status gated_block_forward(const GatedBlock& b, int64_t C, float eps, const Tensor& x, Tensor* y) {
  const Device dev = x.device();
  std::unique_ptr<Backend> be;
  std::unique_ptr<VisionBackend> vb;
  MK_RETURN_IF_ERROR(make_kernels(dev, &be, &vb));
  Kernels k{*be, *vb};
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), N = B * H * W;
  Scratch s;
  const int64_t h = gated_hidden(C);
  MK_RETURN_IF_ERROR(s.create(dev, N * C, N * 2 * h, N * h));
  MK_RETURN_IF_ERROR(Tensor::create(dev, DType::F32, x.shape, y));
  if (N == 0) return Status::Ok();
  // the block updates the residual stream in place: start from a copy of x
  if (dev.is_cuda()) MK_RETURN_IF_ERROR(gpu::copy_d2d(dev.index, y->raw(), x.raw(), x.nbytes()));
  else std::copy(x.ptr<float>(), x.ptr<float>() + N * C, y->ptr<float>());
  MK_RETURN_IF_ERROR(run_block(k, b, y->ptr<float>(), B, H, W, C, eps, s.ptrs()));
  return be->finish("mambaout gated block");
}

Status mambaout_forward(const MambaOutModel& m, const Tensor& px, Tensor* logits) {
  std::unique_ptr<Backend> be;
  std::unique_ptr<VisionBackend> vb;
  MK_RETURN_IF_ERROR(make_kernels(m.dev, &be, &vb));
  Kernels k{*be, *vb};
  const size_t S = m.dims.size();
  const int64_t B = px.dim(0), C0 = m.dims[0], C3 = m.dims[S - 1], F = 4 * C3;
  // sizes: the stem halves twice, each later stage once more
  const int64_t H1 = (px.dim(1) + 1) / 2, W1 = (px.dim(2) + 1) / 2;
  std::vector<int64_t> Hs(S), Ws(S);
  int64_t act = B * H1 * W1 * (C0 / 2), nx = 1, nu = 1;
  for (size_t i = 0; i < S; ++i) {
    Hs[i] = ((i == 0 ? H1 : Hs[i - 1]) + 1) / 2, Ws[i] = ((i == 0 ? W1 : Ws[i - 1]) + 1) / 2;
    const int64_t N = B * Hs[i] * Ws[i];
    act = std::max(act, N * m.dims[i]);
    nx = std::max(nx, N * 2 * gated_hidden(m.dims[i])), nu = std::max(nu, N * gated_hidden(m.dims[i]));
  }
  // cur / nxt: the residual stream and a conv's output; block scratch sized for the widest stage
  Tensor cur, nxt, pooled, hid;
  Scratch s;
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {act}, &cur));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {act}, &nxt));
  MK_RETURN_IF_ERROR(s.create(m.dev, act, nx, nu));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {2, B, C3}, &pooled));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {2, B, F}, &hid));
  MK_RETURN_IF_ERROR(Tensor::create(m.dev, DType::F32, {B, m.classes}, logits));
  float *x = cur.ptr<float>(), *y = nxt.ptr<float>();
  // stem: conv1 → LN → GELU → conv2 → LN
  MK_RETURN_IF_ERROR(k.vb.conv3x3s2(px.ptr<float>(), m.stem1.w.ptr<float>(), m.stem1.b.ptr<float>(), y, B, px.dim(1),
                                    px.dim(2), 3, C0 / 2));
  MK_RETURN_IF_ERROR(ln(k, m.stem_norm1, y, y, B * H1 * W1, C0 / 2, m.eps));
  MK_RETURN_IF_ERROR(k.vb.gelu_gate(y, C0 / 2, nullptr, 0, y, C0 / 2, B * H1 * W1, C0 / 2));
  MK_RETURN_IF_ERROR(k.vb.conv3x3s2(y, m.stem2.w.ptr<float>(), m.stem2.b.ptr<float>(), x, B, H1, W1, C0 / 2, C0));
  MK_RETURN_IF_ERROR(ln(k, m.stem_norm2, x, x, B * Hs[0] * Ws[0], C0, m.eps));
  for (size_t i = 0; i < S; ++i) {
    const MambaOutStage& st = m.stages[i];
    const int64_t C = m.dims[i], N = B * Hs[i] * Ws[i];
    if (i > 0) {  // downsample: conv → LN, into the other buffer
      MK_RETURN_IF_ERROR(k.vb.conv3x3s2(x, st.down.w.ptr<float>(), st.down.b.ptr<float>(), y, B, Hs[i - 1], Ws[i - 1],
                                        m.dims[i - 1], C));
      MK_RETURN_IF_ERROR(ln(k, st.down_norm, y, y, N, C, m.eps));
      std::swap(x, y);
    }
    for (const GatedBlock& b : st.blocks) MK_RETURN_IF_ERROR(run_block(k, b, x, B, Hs[i], Ws[i], C, m.eps, s.ptrs()));
  }
  // head: mean over H, W → LN → fc1 → GELU → LN → fc
  float *p0 = pooled.ptr<float>(), *p1 = p0 + B * C3, *h0 = hid.ptr<float>(), *h1 = h0 + B * F;
  MK_RETURN_IF_ERROR(k.vb.mean_pool(x, p0, B, Hs[S - 1] * Ws[S - 1], C3));
  MK_RETURN_IF_ERROR(ln(k, m.head_norm, p0, p1, B, C3, m.eps));
  MK_RETURN_IF_ERROR(k.be.gemm(p1, C3, m.head_fc1, &m.head_fc1_b, h0, F, B));
  MK_RETURN_IF_ERROR(k.vb.gelu_gate(h0, F, nullptr, 0, h0, F, B, F));
  MK_RETURN_IF_ERROR(ln(k, m.head_norm2, h0, h1, B, F, m.eps));
  MK_RETURN_IF_ERROR(k.be.gemm(h1, F, m.head_fc2, &m.head_fc2_b, logits->ptr<float>(), m.classes, B));
  return be->finish("mambaout forward");
}

}  // namespace mk
