// Helpers for op checks: each failure names the op, the input and its dtype/shape.
#pragma once
#include <initializer_list>
#include <string>

#include "ops/op.h"

namespace mk {

inline Status check_dtype(const char* op, const char* what, const Tensor& t,
                          std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype == d) return Status::Ok();
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : "/") + std::string(dtype_name(d));
  return make_error(Code::DTYPE, std::string(op) + ": " + what + " must be " + names + ", got " + t.desc());
}

inline Status check_ndim(const char* op, const char* what, const Tensor& t, int lo, int hi) {
  if (t.ndim() >= lo && t.ndim() <= hi) return Status::Ok();
  return make_error(Code::SHAPE, std::string(op) + ": " + what + " must have " + std::to_string(lo) +
                                     (lo == hi ? "" : ".." + std::to_string(hi)) + " dims, got " + t.desc());
}

inline Status shape_error(const char* op, const std::string& msg) {
  return make_error(Code::SHAPE, std::string(op) + ": " + msg);
}

// An optional f32 vector input (absent = ok) of length D: a weight, a bias.
inline Status check_vec(const char* op, const char* what, const Tensor* t, int64_t D) {
  if (!t) return Status::Ok();
  MK_RETURN_IF_ERROR(check_dtype(op, what, *t, {DType::F32}));
  if (t->ndim() != 1 || t->dim(0) != D)
    return shape_error(op, std::string(what) + " " + t->desc() + " must be [" + std::to_string(D) + "]");
  return Status::Ok();
}

// Rows of a tensor viewed as [rows, last dim].
inline int64_t rows_of(const Tensor& t) { return t.ndim() == 0 ? 1 : t.numel() / std::max<int64_t>(t.dim(-1), 1); }

}  // namespace mk
