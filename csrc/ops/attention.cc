// Attention kernels as eager ops (tests and research; the transformer plans call them directly):
//   attention(q [B,Tq,H,hd], k [S,Tk,KVH,hd], v [S,Tk,KVH,hd], bias? [B,Tk], slots? i32 [B]) -> o [B,Tq,H,hd]
//     k, v f32/bf16/f16 (one dtype); attr scale (default 1/sqrt(hd)); row b reads slot slots[b] (or b)
//   rope_kv(q [B,T,H,hd], k [B,T,KVH,hd], v [B,T,KVH,hd]) -> q' [B,T,H,hd], kc [B,P,KVH,hd], vc [B,P,KVH,hd]
//     attrs theta (default 10000), pos0 (default 0), kv_dtype (0 f32, 1 f16, 2 bf16); P = pos0 + T,
//     cache positions before pos0 zero.
#include <cmath>

#include "core/attn.h"
#include "ops/check.h"

namespace mk {
namespace {

Status check_attention(const Inputs& in, const Attrs&, std::vector<OutSpec>* out) {
  const char* op = "attention";
  const Tensor &q = *in[0], &k = *in[1], &v = *in[2];
  MK_RETURN_IF_ERROR(check_dtype(op, "q", q, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim(op, "q", q, 4, 4));
  MK_RETURN_IF_ERROR(check_dtype(op, "k", k, {DType::F32, DType::BF16, DType::F16}));
  MK_RETURN_IF_ERROR(check_ndim(op, "k", k, 4, 4));
  const int64_t B = q.dim(0), Tq = q.dim(1), H = q.dim(2), hd = q.dim(3), S = k.dim(0), Tk = k.dim(1), KVH = k.dim(2);
  if (k.dim(3) != hd) return shape_error(op, "k " + k.desc() + " must have head dim " + std::to_string(hd) + " (q " + q.desc() + ")");
  if (v.dtype != k.dtype || v.shape != k.shape) return shape_error(op, "v " + v.desc() + " must match k " + k.desc());
  MK_RETURN_IF_ERROR(attn_can_run(H, KVH, hd, B));
  if (in[3]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "bias", *in[3], {DType::F32}));
    if (in[3]->shape != Shape{B, Tk}) return shape_error(op, "bias " + in[3]->desc() + " must be " + shape_str({B, Tk}));
  }
  if (in[4]) {
    MK_RETURN_IF_ERROR(check_dtype(op, "slots", *in[4], {DType::I32}));
    if (in[4]->shape != Shape{B}) return shape_error(op, "slots " + in[4]->desc() + " must be [" + std::to_string(B) + "]");
  } else if (S != B) {
    return shape_error(op, "k " + k.desc() + " must have one slot per batch row (" + std::to_string(B) + ") without slots");
  }
  out->push_back({DType::F32, {B, Tq, H, hd}});
  return Status::Ok();
}

Status attention(const OpCall& c) {
  const Tensor &q = *c.in[0], &k = *c.in[1];
  const int64_t B = q.dim(0), Tq = q.dim(1), H = q.dim(2), hd = q.dim(3), Tk = k.dim(1), KVH = k.dim(2);
  if (c.in[4] && B > 0) {  // slots come from JS: check them on the host before any kernel reads them
    std::vector<int32_t> s(static_cast<size_t>(B));
    MK_RETURN_IF_ERROR(c.be.to_host(s.data(), c.in[4]->raw(), s.size() * sizeof(int32_t)));
    for (int32_t v : s)
      if (v < 0 || v >= k.dim(0))
        return make_error(Code::ARG, "attention: slot " + std::to_string(v) + " outside [0, " + std::to_string(k.dim(0)) + ")");
  }
  const float scale = static_cast<float>(c.attrs.get("scale", 1.0 / std::sqrt(static_cast<double>(hd))));
  AttnArgs a{q.ptr<float>(), H * hd, k.raw(), c.in[2]->raw(), k.dtype, Tk * KVH * hd,
             c.in[4] ? c.in[4]->ptr<int32_t>() : nullptr, c.in[3] ? c.in[3]->ptr<float>() : nullptr, Tk,
             c.out[0].ptr<float>(), H * hd, B, Tq, Tk, H, KVH, hd, scale};
  return c.be.attention(a);
}

DType kv_dtype(const Attrs& at) {
  const int v = static_cast<int>(at.get("kv_dtype", 0));
  return v == 1 ? DType::F16 : v == 2 ? DType::BF16 : DType::F32;
}

Status check_rope(const Inputs& in, const Attrs& at, std::vector<OutSpec>* out) {
  const char* op = "rope_kv";
  const Tensor &q = *in[0], &k = *in[1], &v = *in[2];
  for (const auto& [t, name] : {std::pair{&q, "q"}, std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    MK_RETURN_IF_ERROR(check_dtype(op, name, *t, {DType::F32}));
    MK_RETURN_IF_ERROR(check_ndim(op, name, *t, 4, 4));
  }
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), hd = q.dim(3), KVH = k.dim(2);
  if (k.dim(0) != B || k.dim(1) != T || k.dim(3) != hd || v.shape != k.shape)
    return shape_error(op, "k " + k.desc() + " and v " + v.desc() + " must be [" + std::to_string(B) + ", " + std::to_string(T) +
                               ", KVH, " + std::to_string(hd) + "] like q " + q.desc());
  MK_RETURN_IF_ERROR(rope_can_run(hd));
  MK_RETURN_IF_ERROR(attn_can_run(H, KVH, hd, B));
  const double pos0 = at.get("pos0", 0), theta = at.get("theta", 10000);
  if (pos0 < 0 || pos0 != std::floor(pos0) || !(theta > 0))
    return make_error(Code::ARG, "rope_kv: pos0 must be a non-negative integer and theta > 0");
  const int64_t P = static_cast<int64_t>(pos0) + T;
  out->push_back({DType::F32, {B, T, H, hd}});
  out->push_back({kv_dtype(at), {B, P, KVH, hd}});
  out->push_back({kv_dtype(at), {B, P, KVH, hd}});
  return Status::Ok();
}

Status rope(const OpCall& c) {
  const Tensor &q = *c.in[0], &k = *c.in[1];
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), hd = q.dim(3), KVH = k.dim(2);
  const int64_t pos0 = static_cast<int64_t>(c.attrs.get("pos0", 0)), P = pos0 + T;
  Tensor table;
  MK_RETURN_IF_ERROR(make_rope_table(q.device(), c.attrs.get("theta", 10000), hd, P, &table));
  MK_RETURN_IF_ERROR(c.be.copy(c.out[0].raw(), q.raw(), q.nbytes()));
  MK_RETURN_IF_ERROR(c.be.zero(c.out[1].raw(), c.out[1].nbytes()));
  MK_RETURN_IF_ERROR(c.be.zero(c.out[2].raw(), c.out[2].nbytes()));
  RopeArgs a{c.out[0].ptr<float>(), H * hd, k.ptr<float>(), c.in[2]->ptr<float>(), KVH * hd, c.out[1].raw(),
             c.out[2].raw(), c.out[1].dtype, P * KVH * hd, nullptr, table.ptr<float>(), B, T, H, KVH, hd, pos0};
  MK_RETURN_IF_ERROR(c.be.rope_kv(a));
  return c.be.finish("rope_kv");  // the table dies with this scope
}

OpRegistrar r_attention({"attention", 5, 0b11000, check_attention, attention});
OpRegistrar r_rope({"rope_kv", 3, 0, check_rope, rope});

}  // namespace
}  // namespace mk
