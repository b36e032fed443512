// add, mul (b broadcasts over leading dims: b's shape is a suffix of a's), silu, softplus, gelu,
// cast (between float dtypes; attr dtype = target dtype id).
#include "cpu/kernels.h"
#include "cuda/kernels.h"
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
Status binary_cpu(const OpCall& c) {
  const Tensor &a = *c.in[0], &b = *c.in[1];
  if (a.numel() == 0) return Status::Ok();
  (kAdd ? cpu::add : cpu::mul)(a.ptr<float>(), b.ptr<float>(), c.out[0].ptr<float>(), a.numel(), b.numel());
  return Status::Ok();
}

constexpr const char* kUnaryNames[] = {"silu", "softplus", "gelu"};

template <int kOp>
Status check_unary(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype(kUnaryNames[kOp], "x", *in[0], {DType::F32}));
  out->push_back({DType::F32, in[0]->shape});
  return Status::Ok();
}

template <int kOp>
Status unary_cpu(const OpCall& c) {
  if (c.in[0]->numel() == 0) return Status::Ok();
  cpu::unary(static_cast<cpu::Unary>(kOp), c.in[0]->ptr<float>(), c.out[0].ptr<float>(), c.in[0]->numel());
  return Status::Ok();
}

Status check_cast(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype("cast", "x", *in[0], {DType::F32, DType::F16, DType::BF16}));
  const double id = attrs.get("dtype", -1);
  const DType to = static_cast<DType>(static_cast<int>(id));
  if (!(id == 0 || id == 1 || id == 2)) return make_error(Code::DTYPE, "cast: target dtype must be f32/f16/bf16");
  out->push_back({to, in[0]->shape});
  return Status::Ok();
}

Status cast_cpu(const OpCall& c) {
  cpu::cast(c.in[0]->raw(), c.in[0]->dtype, c.out[0].raw(), c.out[0].dtype, c.in[0]->numel());
  return Status::Ok();
}

#ifdef MAMBAKIT_CUDA
template <bool kAdd>
Status binary_cuda(const OpCall& c) {
  const Tensor &a = *c.in[0], &b = *c.in[1];
  if (a.numel() == 0) return Status::Ok();
  return (kAdd ? cuda::add : cuda::mul)(a.ptr<float>(), b.ptr<float>(), c.out[0].ptr<float>(), a.numel(),
                                        b.numel(), stream_of(*c.in[0]));
}
template <int kOp>
Status unary_cuda(const OpCall& c) {
  if (c.in[0]->numel() == 0) return Status::Ok();
  return cuda::unary(static_cast<cuda::Unary>(kOp), c.in[0]->ptr<float>(), c.out[0].ptr<float>(),
                     c.in[0]->numel(), stream_of(*c.in[0]));
}
Status cast_cuda(const OpCall& c) {
  if (c.in[0]->numel() == 0) return Status::Ok();
  return cuda::cast(c.in[0]->raw(), c.in[0]->dtype, c.out[0].raw(), c.out[0].dtype, c.in[0]->numel(),
                    stream_of(*c.in[0]));
}
#endif

OpRegistrar r_add({"add", 2, 0, check_add, binary_cpu<true>, MK_CUDA_IMPL(binary_cuda<true>)});
OpRegistrar r_mul({"mul", 2, 0, check_mul, binary_cpu<false>, MK_CUDA_IMPL(binary_cuda<false>)});
OpRegistrar r_silu({"silu", 1, 0, check_unary<0>, unary_cpu<0>, MK_CUDA_IMPL(unary_cuda<0>)});
OpRegistrar r_softplus({"softplus", 1, 0, check_unary<1>, unary_cpu<1>, MK_CUDA_IMPL(unary_cuda<1>)});
OpRegistrar r_gelu({"gelu", 1, 0, check_unary<2>, unary_cpu<2>, MK_CUDA_IMPL(unary_cuda<2>)});
OpRegistrar r_cast({"cast", 1, 0, check_cast, cast_cpu, MK_CUDA_IMPL(cast_cuda)});

}  // namespace
}  // namespace mk
