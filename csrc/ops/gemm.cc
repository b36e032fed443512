// gemm: y[..., N] = x[..., K] · W[N, K]^T (+ bias[N]). x f32; W f32/f16/bf16; bias f32.
#include "cpu/gemm.h"
#include "cuda/kernels.h"
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

Status run_cpu(const OpCall& c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  const int64_t M = rows_of(x), N = w.dim(0), K = w.dim(1);
  if (M == 0) return Status::Ok();
  cpu::gemm(x.ptr<float>(), K, w.raw(), w.dtype, c.in[2] ? c.in[2]->ptr<float>() : nullptr,
            c.out[0].ptr<float>(), N, M, N, K);
  return Status::Ok();
}

#ifdef MAMBAKIT_CUDA
Status run_cuda(const OpCall& c) {
  const Tensor &x = *c.in[0], &w = *c.in[1];
  const int64_t M = rows_of(x), N = w.dim(0), K = w.dim(1);
  if (M == 0) return Status::Ok();
  return cuda::gemm(x.ptr<float>(), K, w.raw(), w.dtype, c.in[2] ? c.in[2]->ptr<float>() : nullptr,
                    c.out[0].ptr<float>(), N, M, N, K, stream_of(x));
}
#endif

OpRegistrar reg({"gemm", 3, 0b100, check, run_cpu, MK_CUDA_IMPL(run_cuda)});

}  // namespace
}  // namespace mk
