// The diffusion sampler's per-position picks as an eager op (lib/diffusion/ calls it on the model's
// logits each step; semantics: core/denoise.h):
//   denoise_pick(logits f32 [..., V] (rows of V: R = numel / V), rows i32 [n]) -> x0 i32 [n], conf u8 [n, 8]
//     attrs uncond_offset (guidance: row r's unconditional logits are row r + uncond_offset of the same
//     tensor, the guided batch [cond; uncond]; absent or -1: none), cfg (guidance scale), temperature,
//     seed, step (integers < 2^32), random (0/1), col0 / cols (decide among columns [col0, col0 + cols)
//     only, x0 counted from col0; default all).
//   conf holds n float64 values (raw little-endian bytes: the tensor dtypes have no f64).
#include <cmath>
#include <vector>

#include "core/denoise.h"
#include "ops/check.h"

namespace mk {
namespace {

bool u32_attr(const Attrs& at, const char* k) {
  const double v = at.get(k, 0);
  return v >= 0 && v < 4294967296.0 && v == std::floor(v);
}

Status check_pick(const Inputs& in, const Attrs& at, std::vector<OutSpec>* out) {
  const char* op = "denoise_pick";
  const Tensor &c = *in[0], &rows = *in[1];
  MK_RETURN_IF_ERROR(check_dtype(op, "logits", c, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "logits", c, 2, 8));
  const double off = at.get("uncond_offset", -1);
  if (!(off == -1 || (off >= 1 && off < static_cast<double>(rows_of(c)) && off == std::floor(off))))
    return make_error(Code::ARG, "denoise_pick: uncond_offset must be -1 or an integer in [1, " + std::to_string(rows_of(c)) + ")");
  MK_RETURN_IF_ERROR(check_dtype(op, "rows", rows, {DType::I32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "rows", rows, 1, 1));
  if (c.dim(-1) < 1) return shape_error(op, "logits " + c.desc() + " has no columns");
  const double cfg = at.get("cfg", 0), T = at.get("temperature", 0);
  if (!(cfg >= 0 && std::isfinite(cfg)) || !(T >= 0 && std::isfinite(T)) || !u32_attr(at, "seed") || !u32_attr(at, "step"))
    return make_error(Code::ARG, "denoise_pick: cfg and temperature must be finite and >= 0, seed and step integers in [0, 2^32)");
  const double col0 = at.get("col0", 0), cols = at.get("cols", static_cast<double>(c.dim(-1)) - col0);
  if (!(col0 >= 0 && cols >= 1 && col0 + cols <= static_cast<double>(c.dim(-1)) && col0 == std::floor(col0) && cols == std::floor(cols)))
    return make_error(Code::ARG, "denoise_pick: columns [" + std::to_string(col0) + ", +" + std::to_string(cols) + ") outside the " +
                                     std::to_string(c.dim(-1)) + " columns of " + c.desc());
  out->push_back({DType::I32, {rows.dim(0)}});
  out->push_back({DType::U8, {rows.dim(0), 8}});
  return Status::Ok();
}

Status pick(const OpCall& c) {
  const Tensor &cond = *c.in[0], &rows = *c.in[1];
  const int64_t n = rows.dim(0), off = static_cast<int64_t>(c.attrs.get("uncond_offset", -1));
  const int64_t R = off > 0 ? rows_of(cond) - off : rows_of(cond);  // rows (that have an unconditional twin)
  std::vector<int32_t> r(static_cast<size_t>(n));  // rows come from JS: check them before a kernel reads them
  if (n > 0) MK_RETURN_IF_ERROR(c.be.to_host(r.data(), rows.raw(), r.size() * sizeof(int32_t)));
  for (int32_t v : r)
    if (v < 0 || v >= R) return make_error(Code::ARG, "denoise_pick: row " + std::to_string(v) + " outside [0, " + std::to_string(R) + ")");
  const int64_t ld = cond.dim(-1), col0 = static_cast<int64_t>(c.attrs.get("col0", 0));
  const int64_t V = static_cast<int64_t>(c.attrs.get("cols", static_cast<double>(ld - col0)));
  DenoiseArgs a{cond.ptr<float>() + col0, off > 0 ? cond.ptr<float>() + off * ld + col0 : nullptr, rows.ptr<int32_t>(), n, V,
                off > 0 ? c.attrs.get("cfg", 0) : 0, c.attrs.get("temperature", 0),
                static_cast<uint32_t>(c.attrs.get("seed", 0)), static_cast<uint32_t>(c.attrs.get("step", 0)),
                c.attrs.get("random", 0) != 0, c.out[0].ptr<int32_t>(), c.out[1].ptr<double>(), ld};
  return c.be.denoise_pick(a);
}

OpRegistrar r_pick({"denoise_pick", 2, 0, check_pick, pick});

}  // namespace
}  // namespace mk
