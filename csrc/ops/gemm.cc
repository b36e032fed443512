// gemm: y[..., N] = x[..., K] · W[N, K]^T (+ bias[N]). x f32; W f32/f16/bf16; bias f32.
#include "ops/check.h"

namespace mk {
namespace {

Status check(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor &x = *in[0], &w = *in[1];
  MK_RETURN_IF_ERROR(check_dtype("gemm", "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_dtype("gemm", "w", w, {DType::F32, DType::F16, DType::BF16}));
  MK_RETURN_IF_ERROR(check_ndim("gemm", "x", x, 1, 8));
  MK_RETURN_IF_ERROR(check_ndim("gemm", "w", w, 2, 2));
  if (x.dim(-1) != w.dim(1) || w.dim(1) == 0 || w.dim(0) == 0)
    return shape_error("gemm", "x " + x.desc() + " and w " + w.desc() + " disagree on K (x[..., K] · w[N, K]^T)");
  if (in[2]) {
    MK_RETURN_IF_ERROR(check_dtype("gemm", "bias", *in[2], {DType::F32}));
    if (in[2]->ndim() != 1 || in[2]->dim(0) != w.dim(0))
      return shape_error("gemm", "bias " + in[2]->desc() + " must be [" + std::to_string(w.dim(0)) + "]");
  }
  Shape s = x.shape;
  s.back() = w.dim(0);
  out->push_back({DType::F32, s});
  return Status::Ok();
}

Status run(const OpCall& c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  return c.be.gemm(x.ptr<float>(), w.dim(1), w, c.in[2] ? c.in[2]->ptr<float>() : nullptr, c.out[0].ptr<float>(),
                   w.dim(0), rows_of(x));
}

OpRegistrar reg({"gemm", 3, 0b100, check, run});

}  // namespace
}  // namespace mk
