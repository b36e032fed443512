#include "plan/edit.h"

#include <string>
#include <vector>

#include "plan/plan.h"

namespace mk {
namespace {
std::string where_of(const Edit& e) { return "edit after block " + std::to_string(e.after); }
}  // namespace

Status check_edit(const Edit& e, int64_t n_blocks, Device dev, int64_t C) {
  const std::string where = where_of(e);
  if (e.after < 0 || e.after >= n_blocks)
    return make_error(Code::ARG, "edit: after=" + std::to_string(e.after) + " is not a block index in [0, " +
                                     std::to_string(n_blocks) + ")");
  if (e.op == EditOp::REFT) {
    for (const Tensor* t : {&e.rows, &e.editor, &e.R, &e.W, &e.b})
      if (!t->storage) return make_error(Code::ARG, where + ": a reft edit needs rows, editor, R, W and b");
    MK_RETURN_IF_ERROR(check_reft_tensors(where, e.rows, e.editor, e.R, e.W, e.b, C));
    for (const Tensor* t : {&e.rows, &e.editor, &e.R, &e.W, &e.b})
      if (t->device() != dev) return make_error(Code::DEVICE, where + ": rows, editor, R, W and b must be on " + dev.str() + ", got " + t->desc());
    return Status::Ok();
  }
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
  const bool reft = e.op == EditOp::REFT;
  std::vector<int32_t> r(static_cast<size_t>(n)), ed(reft ? static_cast<size_t>(n) : 0);
  MK_RETURN_IF_ERROR(be.to_host(r.data(), e.rows.raw(), e.rows.nbytes()));
  if (reft) MK_RETURN_IF_ERROR(be.to_host(ed.data(), e.editor.raw(), e.editor.nbytes()));
  return check_stream_rows(where_of(e), r.data(), n, rows, reft ? ed.data() : nullptr, reft ? e.R.dim(0) : 0);
}

Status apply_edit(Backend& be, const Edit& e, Residual& r) {
  const int64_t n = e.rows.dim(0), C = r.g.C;
  switch (e.op) {
    case EditOp::ADD: {
      float* y = r.has_pending ? r.pending : r.x;  // stream = x + pending: adding to either is the same edit
      return be.row_add(y, C, e.rows.ptr<int32_t>(), n, e.values.ptr<float>(), e.values.ndim() == 2 ? C : 0, C);
    }
    case EditOp::REFT:
      return be.reft({r.x, r.has_pending ? r.pending : nullptr, C, e.rows.ptr<int32_t>(), e.editor.ptr<int32_t>(), n,
                      e.R.raw(), e.W.raw(), e.R.dtype, e.b.ptr<float>(), e.R.dim(0), e.R.dim(1), C, e.formula, e.act});
  }
  return make_error(Code::ARG, "edit: unknown op");
}

}  // namespace mk
