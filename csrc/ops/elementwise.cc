// add, mul (b broadcasts over leading dims: b's shape is a suffix of a's), silu, softplus, gelu,
// cast (between float dtypes; attr dtype = target dtype id).
#include "ops/check.h"

namespace mk {
namespace {

Status check_binary(const char* op, const Inputs& in, std::vector<OutSpec>* out) {
  const Tensor &a = *in[0], &b = *in[1];
  MK_RETURN_IF_ERROR(check_dtype(op, "a", a, {DType::F32}));
  MK_RETURN_IF_ERROR(check_dtype(op, "b", b, {DType::F32}));
  bool suffix = b.ndim() <= a.ndim();
  for (int i = 1; suffix && i <= b.ndim(); ++i) suffix = a.dim(-i) == b.dim(-i);
  if (!suffix)
    return shape_error(op, "b " + b.desc() + " must equal a " + a.desc() + " or a suffix of its shape");
  out->push_back({DType::F32, a.shape});
  return Status::Ok();
}
Status check_add(const Inputs& in, const Attrs&, std::vector<OutSpec>* o) { return check_binary("add", in, o); }
Status check_mul(const Inputs& in, const Attrs&, std::vector<OutSpec>* o) { return check_binary("mul", in, o); }

template <bool kAdd>
Status binary(const OpCall& c) {
  const Tensor &a = *c.in[0], &b = *c.in[1];
  const float *pa = a.ptr<float>(), *pb = b.ptr<float>();
  float* y = c.out[0].ptr<float>();
  return kAdd ? c.be.add(pa, pb, y, a.numel(), b.numel()) : c.be.mul(pa, pb, y, a.numel(), b.numel());
}

constexpr const char* kUnaryNames[] = {"silu", "softplus", "gelu"};

template <int kOp>
Status check_unary(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype(kUnaryNames[kOp], "x", *in[0], {DType::F32}));
  out->push_back({DType::F32, in[0]->shape});
  return Status::Ok();
}

template <int kOp>
Status unary(const OpCall& c) {
  return c.be.unary(static_cast<Unary>(kOp), c.in[0]->ptr<float>(), c.out[0].ptr<float>(), c.in[0]->numel());
}

Status check_cast(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype("cast", "x", *in[0], {DType::F32, DType::F16, DType::BF16}));
  const double id = attrs.get("dtype", -1);
  const DType to = static_cast<DType>(static_cast<int>(id));
  if (!(id == 0 || id == 1 || id == 2)) return make_error(Code::DTYPE, "cast: target dtype must be f32/f16/bf16");
  out->push_back({to, in[0]->shape});
  return Status::Ok();
}

Status cast(const OpCall& c) {
  return c.be.cast(c.in[0]->raw(), c.in[0]->dtype, c.out[0].raw(), c.out[0].dtype, c.in[0]->numel());
}

OpRegistrar r_add({"add", 2, 0, check_add, binary<true>});
OpRegistrar r_mul({"mul", 2, 0, check_mul, binary<false>});
OpRegistrar r_silu({"silu", 1, 0, check_unary<0>, unary<0>});
OpRegistrar r_softplus({"softplus", 1, 0, check_unary<1>, unary<1>});
OpRegistrar r_gelu({"gelu", 1, 0, check_unary<2>, unary<2>});
OpRegistrar r_cast({"cast", 1, 0, check_cast, cast});

}  // namespace
}  // namespace mk
