// sample(logits f32 [B, V], prev? i32 [B, P]) -> ids i32 [B], logprob f32 [B]
//   attrs: temperature (0 = greedy), top_k (0 = off), top_p (1 = off), min_p (0 = off),
//          repetition_penalty (1 = off), seed, step (uint32). Definition: core/sample.h.
#include <cmath>
#include <string>

#include "core/sample.h"
#include "ops/check.h"

namespace mk {
namespace {

Status arg_error(const std::string& msg) { return make_error(Code::ARG, "sample: " + msg); }

Status parse(const Attrs& a, SampleParams* p) {
  const double t = a.get("temperature", 1.0), k = a.get("top_k", 0.0), tp = a.get("top_p", 1.0),
               mp = a.get("min_p", 0.0), rp = a.get("repetition_penalty", 1.0),
               seed = a.get("seed", 0.0), step = a.get("step", 0.0);
  if (!(t >= 0 && std::isfinite(t))) return arg_error("temperature must be finite and >= 0, got " + std::to_string(t));
  if (!(k >= 0 && k <= 2147483647.0 && k == std::floor(k)))
    return arg_error("top_k must be an integer >= 0, got " + std::to_string(k));
  if (!(tp > 0 && tp <= 1)) return arg_error("top_p must be in (0, 1], got " + std::to_string(tp));
  if (!(mp >= 0 && mp <= 1)) return arg_error("min_p must be in [0, 1], got " + std::to_string(mp));
  if (!(rp > 0 && std::isfinite(rp)))
    return arg_error("repetition_penalty must be finite and > 0, got " + std::to_string(rp));
  if (!(seed >= 0 && seed <= 4294967295.0 && seed == std::floor(seed)))
    return arg_error("seed must be an integer in [0, 2^32), got " + std::to_string(seed));
  if (!(step >= 0 && step <= 4294967295.0 && step == std::floor(step)))
    return arg_error("step must be an integer in [0, 2^32), got " + std::to_string(step));
  p->temperature = static_cast<float>(t);
  if (t > 0 && p->temperature == 0.f) return arg_error("temperature " + std::to_string(t) + " underflows f32");
  p->top_k = static_cast<int64_t>(k);
  p->top_p = tp;
  p->min_p = static_cast<float>(mp);
  p->penalty = static_cast<float>(rp);
  if (!(p->penalty > 0.f && std::isfinite(p->penalty)))
    return arg_error("repetition_penalty " + std::to_string(rp) + " is out of f32 range");
  p->seed = static_cast<uint32_t>(seed);
  p->step = static_cast<uint32_t>(step);
  return Status::Ok();
}

Status check(const Inputs& in, const Attrs& attrs, std::vector<OutSpec>* out) {
  const Tensor& x = *in[0];
  MK_RETURN_IF_ERROR(check_dtype("sample", "logits", x, {DType::F32}));
  MK_RETURN_IF_ERROR(check_ndim("sample", "logits", x, 2, 2));
  const int64_t B = x.dim(0), V = x.dim(1);
  if (V < 1 || V > 2147483647) return shape_error("sample", "logits " + x.desc() + " must have 1 <= V < 2^31");
  if (in[1]) {
    const Tensor& pv = *in[1];
    MK_RETURN_IF_ERROR(check_dtype("sample", "prev", pv, {DType::I32}));
    if (pv.ndim() != 2 || pv.dim(0) != B)
      return shape_error("sample", "prev " + pv.desc() + " must be [B=" + std::to_string(B) + ", P]");
  }
  if (in[2]) {
    const Tensor& k = *in[2];
    MK_RETURN_IF_ERROR(check_dtype("sample", "keys", k, {DType::I32}));
    if (k.ndim() != 2 || k.dim(0) != B || k.dim(1) != 2)
      return shape_error("sample", "keys " + k.desc() + " must be [B=" + std::to_string(B) + ", 2] (seed, step per row)");
  }
  SampleParams p;
  MK_RETURN_IF_ERROR(parse(attrs, &p));
  out->push_back({DType::I32, {B}});
  out->push_back({DType::F32, {B}});
  return Status::Ok();
}

// The call's sizes, the prev pointer (null when absent or empty) and the parameters, per backend.
struct Call {
  int64_t B, V, P;
  const int32_t* prev;
  SampleParams p;
};
Status unpack(const OpCall& c, Call* k) {
  const Tensor& x = *c.in[0];
  MK_RETURN_IF_ERROR(parse(c.attrs, &k->p));
  k->p.keys = c.in[2] ? c.in[2]->ptr<int32_t>() : nullptr;
  k->B = x.dim(0), k->V = x.dim(1), k->P = c.in[1] ? c.in[1]->dim(1) : 0;
  k->prev = k->P > 0 ? c.in[1]->ptr<int32_t>() : nullptr;
  return Status::Ok();
}

Status run(const OpCall& c) {
  Call k;
  MK_RETURN_IF_ERROR(unpack(c, &k));
  return c.be.sample(c.in[0]->ptr<float>(), k.prev, c.out[0].ptr<int32_t>(), c.out[1].ptr<float>(), k.B, k.V, k.P, k.p);
}

OpRegistrar reg({"sample", 3, 0b110, check, run});

}  // namespace
}  // namespace mk
