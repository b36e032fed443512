// embedding(ids i32 [...], table [V, D] f32/f16/bf16) -> f32 [..., D]. An id outside [0, V) is
// E_ARG naming the id (CUDA: a device flag read back after the gather).
#include "cpu/kernels.h"
#include "cuda/kernels.h"
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

Status run_cpu(const OpCall& c) {
  const Tensor &ids = *c.in[0], &t = *c.in[1];
  return cpu::embedding(ids.ptr<int32_t>(), ids.numel(), t.raw(), t.dtype, t.dim(0), t.dim(1), c.out[0].ptr<float>());
}

#ifdef MAMBAKIT_CUDA
Status run_cuda(const OpCall& c) {
  const Tensor &ids = *c.in[0], &t = *c.in[1];
  if (ids.numel() == 0) return Status::Ok();
  Tensor flag;
  MK_RETURN_IF_ERROR(Tensor::create(ids.device(), DType::I32, {1}, &flag));
  const int dev = ids.device().index;
  MK_RETURN_IF_ERROR(cuda::embedding(ids.ptr<int32_t>(), ids.numel(), t.raw(), t.dtype, t.dim(0), t.dim(1),
                                     c.out[0].ptr<float>(), flag.ptr<int32_t>(), gpu::stream(dev)));
  int32_t bad = 0;
  MK_RETURN_IF_ERROR(gpu::copy_d2h(dev, &bad, flag.raw(), sizeof bad));
  if (bad) return make_error(Code::ARG, "embedding: a token id is outside [0, " + std::to_string(t.dim(0)) + ")");
  return Status::Ok();
}
#endif

OpRegistrar reg({"embedding", 2, 0, check, run_cpu, MK_CUDA_IMPL(run_cuda)});

}  // namespace
}  // namespace mk
