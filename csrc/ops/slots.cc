// A data-movement op for the batch scheduler:
//   zero_slot(state [L, S, ...], attr slot) -> nothing; zeroes state[:, slot] in place (a freed
//     decode slot starts the next sequence from the zero state)
#include "ops/check.h"

namespace mk {
namespace {

Status check_zero(const Inputs& in, const Attrs& a, std::vector<OutSpec>*) {
  const Tensor& t = *in[0];
  MK_RETURN_IF_ERROR(check_ndim("zero_slot", "state", t, 2, 8));
  const double s = a.get("slot", -1);
  if (!(s >= 0 && s < t.dim(1) && s == static_cast<int64_t>(s)))
    return shape_error("zero_slot", "slot " + std::to_string(s) + " outside [0, " + std::to_string(t.dim(1)) + ") of state " + t.desc());
  return Status::Ok();
}

Status zero_impl(const OpCall& c) {
  const Tensor& t = *c.in[0];
  const int64_t L = t.dim(0), S = t.dim(1), slot = static_cast<int64_t>(c.attrs.get("slot", 0));
  const size_t slot_bytes = t.nbytes() / static_cast<size_t>(L * S);
  for (int64_t l = 0; l < L; ++l)
    MK_RETURN_IF_ERROR(c.be.zero(static_cast<char*>(t.raw()) + (l * S + slot) * slot_bytes, slot_bytes));
  return Status::Ok();
}

OpRegistrar r_zero({"zero_slot", 1, 0, check_zero, zero_impl});

}  // namespace
}  // namespace mk
