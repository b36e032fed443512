// The sparse-model ops (definitions in cpu/sparse.h):
//   router_topk(logits f32 [T, G]; k, renorm) -> ids i32 [T, k], weights f32 [T, k], counts i32 [G]
//   group_sort(gid i32 [rows, k]; groups) -> offsets i32 [G+1], src i32 [rows*k], pos i32 [rows, k]
//   grouped_gemm(x f32 [R, K], w [G, N, K], offsets i32 [G+1], src? i32 [n], bias? f32 [G, N],
//                dst? i32 [n]; act) -> y f32 [n, N]   (n = src ? len(src) : R; dst: a permutation of [0, n))
//   combine(y f32 [n, D], pos i32 [T, k], weights? f32 [T, k]) -> out f32 [T, D]
// The model plans call the kernels directly; these ops expose them for tests and eager use.
// Eager grouped_gemm validates the index arrays on the host (after a read-back on CUDA): a bad
// offset or row index must be an error, not an out-of-bounds access.
#include <algorithm>
#include <string>
#include <vector>

#include "core/sparse.h"
#include "ops/check.h"

namespace mk {
namespace {

std::string s(int64_t v) { return std::to_string(v); }

Status check_router(const Inputs& in, const Attrs& a, std::vector<OutSpec>* out) {
  const Tensor& l = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("router_topk", "logits", l, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("router_topk", "logits", l, 2, 2));
  const int64_t G = l.dim(1), k = static_cast<int64_t>(a.get("k", 1));
  if (G < 1 || G > kRouterMaxExperts)
    return shape_error("router_topk", "logits " + l.desc() + ": expert count must be in [1, " + s(kRouterMaxExperts) + "]");
  if (!router_can_run(G, k).ok())
    return make_error(Code::ARG, "router_topk: k=" + s(k) + " must be in [1, min(" + s(kRouterMaxK) + ", experts=" + s(G) + ")]");
  out->push_back({DType::I32, {l.dim(0), k}});
  out->push_back({DType::F32, {l.dim(0), k}});
  out->push_back({DType::I32, {G}});
  return Status::Ok();
}

Status router(const OpCall& c) {
  const Tensor& l = *c.in[0];
  MK_RETURN_IF_ERROR(c.be.zero(c.out[2].raw(), c.out[2].nbytes()));  // the kernel accumulates counts
  return c.be.router_topk(l.ptr<float>(), l.dim(0), l.dim(1), c.out[0].dim(1), c.attrs.get("renorm", 0) != 0,
                          c.out[0].ptr<int32_t>(), c.out[1].ptr<float>(), c.out[2].ptr<int32_t>());
}

Status check_sort(const Inputs& in, const Attrs& a, std::vector<OutSpec>* out) {
  const Tensor& g = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("group_sort", "gid", g, {DType::I32}));
  MK_RETURN_IF_ERROR(check_ndim("group_sort", "gid", g, 1, 2));
  const int64_t G = static_cast<int64_t>(a.get("groups", 0));
  MK_RETURN_IF_ERROR(group_sort_can_run(G));
  const int64_t rows = g.dim(0), k = g.ndim() == 2 ? g.dim(1) : 1;
  out->push_back({DType::I32, {G + 1}});
  out->push_back({DType::I32, {rows * k}});
  out->push_back({DType::I32, {rows, k}});
  return Status::Ok();
}

Status sort(const OpCall& c) {
  const Tensor& g = *c.in[0];
  const int64_t k = g.ndim() == 2 ? g.dim(1) : 1;
  Tensor flag;  // the CUDA kernel's out-of-range flag, read back at once (verify)
  if (g.device().is_cuda()) MK_RETURN_IF_ERROR(Tensor::create(g.device(), DType::I32, {1}, &flag));
  return c.be.group_sort(g.ptr<int32_t>(), g.dim(0), k, c.out[0].numel() - 1, c.out[0].ptr<int32_t>(),
                         c.out[1].ptr<int32_t>(), c.out[2].ptr<int32_t>(), flag.storage ? flag.ptr<int32_t>() : nullptr,
                         true);
}

Status check_grouped(const Inputs& in, const Attrs& a, std::vector<OutSpec>* out) {
  const char* op = "grouped_gemm";
  const Tensor &x = *in[0], &w = *in[1], &off = *in[2];
  MK_RETURN_IF_ERROR(check_dtype(op, "x", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "x", x, 2, 2));
  MK_RETURN_IF_ERROR(check_dtype(op, "w", w, {DType::F32, DType::F16, DType::BF16}));
  MK_RETURN_IF_ERROR(check_ndim(op, "w", w, 3, 3));
  const int64_t G = w.dim(0), N = w.dim(1), K = w.dim(2);
  if (G < 1 || N < 1 || K < 1) return shape_error(op, "w " + w.desc() + " must be [G, N, K] with all dims >= 1");
  if (x.dim(1) != K) return shape_error(op, "x " + x.desc() + " and w " + w.desc() + " disagree on K");
  MK_RETURN_IF_ERROR(check_dtype(op, "offsets", off, {DType::I32}));
  if (off.ndim() != 1 || off.dim(0) != G + 1) return shape_error(op, "offsets " + off.desc() + " must be [G+1 = " + s(G + 1) + "]");
  int64_t n = x.dim(0);
  if (in[3]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "src", *in[3], {DType::I32}));
    MK_RETURN_IF_ERROR(check_ndim(op, "src", *in[3], 1, 1));
    n = in[3]->dim(0);
  }
  if (in[4]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "bias", *in[4], {DType::F32}));
    if (in[4]->ndim() != 2 || in[4]->dim(0) != G || in[4]->dim(1) != N)
      return shape_error(op, "bias " + in[4]->desc() + " must be [" + s(G) + ", " + s(N) + "]");
  }
  if (in[5]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "dst", *in[5], {DType::I32}));
    if (in[5]->ndim() != 1 || in[5]->dim(0) != n) return shape_error(op, "dst " + in[5]->desc() + " must be [" + s(n) + "]");
  }
  const double act = a.get("act", 0);
  if (act != 0 && act != 1 && act != 2 && act != 3)
    return make_error(Code::ARG, "grouped_gemm: act must be 0 (none), 1 (relu), 2 (gelu) or 3 (silu)");
  out->push_back({DType::F32, {n, N}});
  return Status::Ok();
}

// offsets start at 0, never decrease and end at n; src rows in [0, R); dst a permutation of [0, n).
Status validate_indices(const std::vector<int32_t>& off, const std::vector<int32_t>& src,
                        const std::vector<int32_t>& dst, int64_t R, int64_t n) {
  const char* op = "grouped_gemm";
  if (off.front() != 0 || off.back() != n)
    return make_error(Code::ARG, std::string(op) + ": offsets must run from 0 to n=" + s(n) + ", got " + s(off.front()) +
                                     " .. " + s(off.back()));
  for (size_t g = 0; g + 1 < off.size(); ++g)
    if (off[g + 1] < off[g]) return make_error(Code::ARG, std::string(op) + ": offsets decrease at group " + s(g));
  for (size_t p = 0; p < src.size(); ++p)
    if (src[p] < 0 || src[p] >= R)
      return make_error(Code::ARG, std::string(op) + ": src[" + s(p) + "]=" + s(src[p]) + " is outside [0, " + s(R) + ")");
  std::vector<char> seen(dst.size(), 0);
  for (size_t p = 0; p < dst.size(); ++p) {
    if (dst[p] < 0 || dst[p] >= n || seen[dst[p]])
      return make_error(Code::ARG, std::string(op) + ": dst must be a permutation of [0, " + s(n) + "), bad at " + s(p));
    seen[dst[p]] = 1;
  }
  return Status::Ok();
}

Status host_copy(Backend& be, const Tensor* t, std::vector<int32_t>* out) {
  if (!t) return Status::Ok();
  out->resize(static_cast<size_t>(t->numel()));
  return be.to_host(out->data(), t->raw(), t->nbytes());
}

Status validate_grouped(const OpCall& c) {
  std::vector<int32_t> off, src, dst;
  MK_RETURN_IF_ERROR(host_copy(c.be, c.in[2], &off));
  MK_RETURN_IF_ERROR(host_copy(c.be, c.in[3], &src));
  MK_RETURN_IF_ERROR(host_copy(c.be, c.in[5], &dst));
  return validate_indices(off, src, dst, c.in[0]->dim(0), c.out[0].dim(0));
}

Status grouped(const OpCall& c) {
  MK_RETURN_IF_ERROR(validate_grouped(c));
  const Tensor &x = *c.in[0], &w = *c.in[1];
  return c.be.grouped_gemm(x.ptr<float>(), x.dim(1), c.in[3] ? c.in[3]->ptr<int32_t>() : nullptr, w,
                           c.in[4] ? c.in[4]->ptr<float>() : nullptr, c.in[2]->ptr<int32_t>(), c.out[0].dim(0),
                           static_cast<Act>(static_cast<int>(c.attrs.get("act", 0))), c.out[0].ptr<float>(), w.dim(1),
                           c.in[5] ? c.in[5]->ptr<int32_t>() : nullptr);
}

Status check_combine(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const char* op = "combine";
  const Tensor &y = *in[0], &pos = *in[1];
  MK_RETURN_IF_ERROR(check_dtype(op, "y", y, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "y", y, 2, 2));
  MK_RETURN_IF_ERROR(check_dtype(op, "pos", pos, {DType::I32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "pos", pos, 2, 2));
  if (pos.numel() != y.dim(0)) return shape_error(op, "pos " + pos.desc() + " must hold one entry per row of y " + y.desc());
  if (in[2]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "weights", *in[2], {DType::F32}));
    if (in[2]->shape != pos.shape) return shape_error(op, "weights " + in[2]->desc() + " must match pos " + pos.desc());
  }
  out->push_back({DType::F32, {pos.dim(0), y.dim(1)}});
  return Status::Ok();
}

Status validate_pos(const OpCall& c) {
  std::vector<int32_t> pos;
  MK_RETURN_IF_ERROR(host_copy(c.be, c.in[1], &pos));
  const int64_t n = c.in[0]->dim(0);
  for (size_t i = 0; i < pos.size(); ++i)
    if (pos[i] < 0 || pos[i] >= n)
      return make_error(Code::ARG, "combine: pos[" + s(i) + "]=" + s(pos[i]) + " is outside [0, " + s(n) + ")");
  return Status::Ok();
}

Status combine(const OpCall& c) {
  MK_RETURN_IF_ERROR(validate_pos(c));
  const Tensor &y = *c.in[0], &pos = *c.in[1];
  return c.be.combine(y.ptr<float>(), y.dim(1), pos.ptr<int32_t>(), c.in[2] ? c.in[2]->ptr<float>() : nullptr,
                      pos.dim(0), pos.dim(1), y.dim(1), c.out[0].ptr<float>(), y.dim(1));
}

OpRegistrar r_router({"router_topk", 1, 0, check_router, router});
OpRegistrar r_sort({"group_sort", 1, 0, check_sort, sort});
OpRegistrar r_grouped({"grouped_gemm", 6, 0b111000, check_grouped, grouped});
OpRegistrar r_combine({"combine", 3, 0b100, check_combine, combine});

}  // namespace
}  // namespace mk
