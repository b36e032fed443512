// softmax(x f32 [..., D]) over the last dim; argmax(x) -> i32 [...] (first maximum; NaN wins).
#include "ops/check.h"

namespace mk {
namespace {

Status check_softmax(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  MK_RETURN_IF_ERROR(check_dtype("softmax", "x", *in[0], {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("softmax", "x", *in[0], 1, 8));
  out->push_back({DType::F32, in[0]->shape});
  return Status::Ok();
}

Status check_argmax(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("argmax", "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("argmax", "x", x, 1, 8));
  if (x.dim(-1) == 0) return shape_error("argmax", "x " + x.desc() + " has an empty last dim");
  Shape s(x.shape.begin(), x.shape.end() - 1);
  out->push_back({DType::I32, s});
  return Status::Ok();
}

Status softmax(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return c.be.softmax(x.ptr<float>(), c.out[0].ptr<float>(), rows_of(x), x.dim(-1));
}
Status argmax(const OpCall& c) {
  const Tensor& x = *c.in[0];
  return c.be.argmax(x.ptr<float>(), c.out[0].ptr<int32_t>(), rows_of(x), x.dim(-1));
}

OpRegistrar r_softmax({"softmax", 1, 0, check_softmax, softmax});
OpRegistrar r_argmax({"argmax", 1, 0, check_argmax, argmax});

}  // namespace
}  // namespace mk
