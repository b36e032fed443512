// embedding(ids i32 [...], table [V, D] f32/f16/bf16) -> f32 [..., D]. An id outside [0, V) is
// E_ARG naming the id (CUDA: a device flag read back after the gather).
#include "ops/check.h"

namespace mk {
namespace {

Status check(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor &ids = *in[0], &table = *in[1];
  MK_RETURN_IF_ERROR(check_dtype("embedding", "ids", ids, {DType::I32}));
  MK_RETURN_IF_ERROR(check_dtype("embedding", "table", table, {DType::F32, DType::F16, DType::BF16}));
  MK_RETURN_IF_ERROR(check_ndim("embedding", "table", table, 2, 2));
  MK_RETURN_IF_ERROR(check_ndim("embedding", "ids", ids, 0, 7));
  Shape s = ids.shape;
  s.push_back(table.dim(1));
  out->push_back({DType::F32, s});
  return Status::Ok();
}

Status run(const OpCall& c) {
  const Tensor &ids = *c.in[0], &t = *c.in[1];
  Tensor flag;  // the CUDA kernel's out-of-range flag, read back at once (verify)
  if (ids.device().is_cuda()) MK_RETURN_IF_ERROR(Tensor::create(ids.device(), DType::I32, {1}, &flag));
  return c.be.embedding(ids.ptr<int32_t>(), ids.numel(), t, c.out[0].ptr<float>(),
                        flag.storage ? flag.ptr<int32_t>() : nullptr, true);
}

OpRegistrar reg({"embedding", 2, 0, check, run});

}  // namespace
}  // namespace mk
