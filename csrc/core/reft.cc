#include "core/reft.h"

#include <vector>

#include "core/tensor.h"

namespace mk {

Status check_reft_tensors(const std::string& where, const Tensor& rows, const Tensor& editor, const Tensor& R,
                          const Tensor& W, const Tensor& b, int64_t C) {
  const auto dtype = [&](const char* name, const Tensor& t, const char* want) {
    return make_error(Code::DTYPE, where + ": " + name + " must be " + want + ", got " + t.desc());
  };
  const auto shape = [&](const char* name, const Tensor& t, const std::string& want) {
    return make_error(Code::SHAPE, where + ": " + name + " must be " + want + ", got " + t.desc());
  };
  if (rows.dtype != DType::I32) return dtype("rows", rows, "i32 [n]");
  if (rows.ndim() != 1) return shape("rows", rows, "[n]");
  const int64_t n = rows.dim(0);
  const std::string ns = "[n=" + std::to_string(n) + "]";
  if (editor.dtype != DType::I32) return dtype("editor", editor, ("i32 " + ns).c_str());
  if (editor.shape != Shape{n}) return shape("editor", editor, ns);
  if (R.dtype != DType::F32 && R.dtype != DType::BF16) return dtype("R", R, "f32 or bf16");
  if (R.ndim() != 3 || R.dim(2) != C) return shape("R", R, "[E, r, C=" + std::to_string(C) + "]");
  const int64_t E = R.dim(0), r = R.dim(1);
  const std::string er = "[E=" + std::to_string(E) + ", r=" + std::to_string(r);
  if (W.dtype != R.dtype) return dtype("W", W, (std::string(dtype_name(R.dtype)) + " (R's dtype)").c_str());
  if (W.shape != R.shape) return shape("W", W, er + ", C=" + std::to_string(C) + "] (R's shape)");
  if (b.dtype != DType::F32) return dtype("b", b, ("f32 " + er + "]").c_str());
  if (b.shape != Shape{E, r}) return shape("b", b, er + "]");
  return reft_can_run(E, r, C, R.dtype, where);
}

Status check_stream_rows(const std::string& where, const int32_t* rows, int64_t n, int64_t N, const int32_t* editor,
                         int64_t E) {
  std::vector<char> seen(static_cast<size_t>(N), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i] < 0 || rows[i] >= N || seen[rows[i]])
      return make_error(Code::ARG, where + ": row " + std::to_string(rows[i]) + " is outside [0, " + std::to_string(N) +
                                       ") or repeated");
    seen[rows[i]] = 1;
    if (editor && (editor[i] < 0 || editor[i] >= E))
      return make_error(Code::ARG, where + ": editor index " + std::to_string(editor[i]) + " (of row " +
                                       std::to_string(rows[i]) + ") is outside [0, " + std::to_string(E) + ")");
  }
  return Status::Ok();
}

}  // namespace mk
