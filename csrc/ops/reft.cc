// Representation editors as an eager op, for edit sites outside a plan (a projector's output) and the
// kernel tests (semantics: core/reft.h):
//   reft(h f32 [..., C] (rows N = the leading dims flattened), rows i32 [n], editor i32 [n], R [E, r, C],
//        W [E, r, C] (f32 or bf16, one dtype), b f32 [E, r]) -> f32 of h's shape: h with rows[i] edited by
//        editor[i], every other row copied
//   attrs formula (core/reft.h ReftFormula: 0 pyreft, 1 mrt), activation (ReftAct: 0 identity … 4 tanh).
// Rows must be distinct and in [0, N), editor indices in [0, E) (read back and checked before the kernel).
#include <cmath>
#include <vector>

#include "core/reft.h"
#include "ops/check.h"

namespace mk {
namespace {

bool enum_attr(const Attrs& at, const char* k, int count) {
  const double v = at.get(k, 0);
  return v >= 0 && v < count && v == std::floor(v);
}

Status check_reft(const Inputs& in, const Attrs& at, std::vector<OutSpec>* out) {
  const Tensor& h = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("reft", "h", h, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("reft", "h", h, 2, 8));
  MK_RETURN_IF_ERROR(check_reft_tensors("reft", *in[1], *in[2], *in[3], *in[4], *in[5], h.dim(-1)));
  if (!enum_attr(at, "formula", kReftFormulas) || !enum_attr(at, "activation", kReftActs))
    return make_error(Code::ARG, "reft: formula must be 0 (pyreft) or 1 (mrt), activation an id in [0, 5)");
  out->push_back({DType::F32, h.shape});
  return Status::Ok();
}

Status reft(const OpCall& c) {
  const Tensor &h = *c.in[0], &rows = *c.in[1], &editor = *c.in[2], &R = *c.in[3];
  const int64_t n = rows.dim(0), N = rows_of(h), C = h.dim(-1);
  std::vector<int32_t> r(static_cast<size_t>(n)), e(static_cast<size_t>(n));  // from JS: checked before a kernel reads them
  if (n > 0) {
    MK_RETURN_IF_ERROR(c.be.to_host(r.data(), rows.raw(), rows.nbytes()));
    MK_RETURN_IF_ERROR(c.be.to_host(e.data(), editor.raw(), editor.nbytes()));
  }
  MK_RETURN_IF_ERROR(check_stream_rows("reft", r.data(), n, N, e.data(), R.dim(0)));
  MK_RETURN_IF_ERROR(c.be.copy(c.out[0].raw(), h.raw(), h.nbytes()));
  return c.be.reft({c.out[0].ptr<float>(), nullptr, C, rows.ptr<int32_t>(), editor.ptr<int32_t>(), n, R.raw(),
                    c.in[4]->raw(), R.dtype, c.in[5]->ptr<float>(), R.dim(0), R.dim(1), C,
                    static_cast<ReftFormula>(static_cast<int>(c.attrs.get("formula", 0))),
                    static_cast<ReftAct>(static_cast<int>(c.attrs.get("activation", 0)))});
}

OpRegistrar r_reft({"reft", 6, 0, check_reft, reft});

}  // namespace
}  // namespace mk
