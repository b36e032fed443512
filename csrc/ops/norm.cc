// rmsnorm(x, w, residual?) -> y (and s = x + residual when a residual is given); attr eps.
// layernorm(x, w, b?) -> y; attr eps.
#include "ops/check.h"

namespace mk {
namespace {

Status check_eps(const char* op, const Attrs& a) {
  const double eps = a.get("eps", 1e-5);
  if (!(eps >= 0 && eps < 1)) return make_error(Code::ARG, std::string(op) + ": eps must be in [0, 1)");
  return Status::Ok();
}

Status check_rms(const Inputs& in, const Attrs& a, std::vector<OutSpec>* out) {
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("rmsnorm", "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("rmsnorm", "x", x, 1, 8));
  MK_RETURN_IF_ERROR(check_vec("rmsnorm", "w", in[1], x.dim(-1)));
  MK_RETURN_IF_ERROR(check_eps("rmsnorm", a));
  out->push_back({DType::F32, x.shape});
  if (in[2]) {
    MK_RETURN_IF_ERROR(check_dtype("rmsnorm", "residual", *in[2], {DType::F32}));
    if (in[2]->shape != x.shape)
      return shape_error("rmsnorm", "residual " + in[2]->desc() + " must match x " + x.desc());
    out->push_back({DType::F32, x.shape});
  }
  return Status::Ok();
}

Status check_ln(const Inputs& in, const Attrs& a, std::vector<OutSpec>* out) {
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("layernorm", "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("layernorm", "x", x, 1, 8));
  MK_RETURN_IF_ERROR(check_vec("layernorm", "w", in[1], x.dim(-1)));
  MK_RETURN_IF_ERROR(check_vec("layernorm", "b", in[2], x.dim(-1)));
  MK_RETURN_IF_ERROR(check_eps("layernorm", a));
  out->push_back({DType::F32, x.shape});
  return Status::Ok();
}

struct NormArgs {
  const float *x, *w, *extra;  // extra: residual (rmsnorm) or bias (layernorm), may be null
  float *y, *sum;
  int64_t rows, D;
  float eps;
};
NormArgs unpack(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return {x.ptr<float>(), c.in[1]->ptr<float>(), c.in[2] ? c.in[2]->ptr<float>() : nullptr,
          c.out[0].ptr<float>(), c.out.size() > 1 ? c.out[1].ptr<float>() : nullptr,
          rows_of(x), x.dim(-1), static_cast<float>(c.attrs.get("eps", 1e-5))};
}

Status rms(const OpCall& c) {
  NormArgs a = unpack(c);
  return c.be.rmsnorm(a.x, a.extra, a.w, a.y, a.sum, a.rows, a.D, a.eps);
}
Status ln(const OpCall& c) {
  NormArgs a = unpack(c);
  return c.be.layernorm(a.x, a.w, a.extra, a.y, a.rows, a.D, a.eps);
}

OpRegistrar r_rms({"rmsnorm", 3, 0b100, check_rms, rms});
OpRegistrar r_ln({"layernorm", 3, 0b100, check_ln, ln});

}  // namespace
}  // namespace mk
