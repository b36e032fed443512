#include "plan/edit.h"

#include <string>
#include <vector>

#include "plan/plan.h"

namespace mk {

Status check_edit(const Edit& e, int64_t n_blocks, Device dev, int64_t C) {
  const std::string where = "edit after block " + std::to_string(e.after);
  if (e.after < 0 || e.after >= n_blocks)
    return make_error(Code::ARG, "edit: after=" + std::to_string(e.after) + " is not a block index in [0, " +
                                     std::to_string(n_blocks) + ")");
  if (!e.rows.storage || !e.values.storage) return make_error(Code::ARG, where + ": rows and values are required");
  if (e.rows.dtype != DType::I32 || e.rows.ndim() != 1)
    return make_error(Code::SHAPE, where + ": rows must be i32 [n], got " + e.rows.desc());
  const int64_t n = e.rows.dim(0);
  const bool one = e.values.ndim() == 1 && e.values.dim(0) == C;
  const bool each = e.values.ndim() == 2 && e.values.dim(0) == n && e.values.dim(1) == C;
  if (e.values.dtype != DType::F32 || !(one || each))
    return make_error(Code::SHAPE, where + ": values must be f32 [" + std::to_string(C) + "] or [n=" + std::to_string(n) +
                                       ", " + std::to_string(C) + "], got " + e.values.desc());
  if (e.rows.device() != dev || e.values.device() != dev)
    return make_error(Code::DEVICE, where + ": rows and values must be on " + dev.str());
  return Status::Ok();
}

Status check_edit_rows(Backend& be, const Edit& e, int64_t rows) {
  const int64_t n = e.rows.dim(0);
  std::vector<int32_t> r(static_cast<size_t>(n));
  MK_RETURN_IF_ERROR(be.to_host(r.data(), e.rows.raw(), e.rows.nbytes()));
  std::vector<char> seen(static_cast<size_t>(rows), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (r[i] < 0 || r[i] >= rows || seen[r[i]])
      return make_error(Code::ARG, "edit after block " + std::to_string(e.after) + ": row " + std::to_string(r[i]) +
                                       " is outside [0, " + std::to_string(rows) + ") or repeated");
    seen[r[i]] = 1;
  }
  return Status::Ok();
}

Status apply_edit(Backend& be, const Edit& e, Residual& r) {
  const int64_t n = e.rows.dim(0), C = r.g.C;
  float* y = r.has_pending ? r.pending : r.x;  // stream = x + pending: adding to either is the same edit
  switch (e.op) {
    case EditOp::ADD:
      return be.row_add(y, C, e.rows.ptr<int32_t>(), n, e.values.ptr<float>(), e.values.ndim() == 2 ? C : 0, C);
  }
  return make_error(Code::ARG, "edit: unknown op");
}

}  // namespace mk
