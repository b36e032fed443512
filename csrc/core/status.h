// Status: how native code reports failure. Never abort the Node process; return a Status and let
// binding/ turn it into a JS Error with `code`.
#pragma once
#include <string>
#include <utility>

namespace mk {

enum class Code { OK = 0, SHAPE, DTYPE, DEVICE, OOM, CUDA, FORMAT, ARG };

inline const char* code_name(Code c) {
  switch (c) {
    case Code::OK: return "OK";
    case Code::SHAPE: return "E_SHAPE";
    case Code::DTYPE: return "E_DTYPE";
    case Code::DEVICE: return "E_DEVICE";
    case Code::OOM: return "E_OOM";
    case Code::CUDA: return "E_CUDA";
    case Code::FORMAT: return "E_FORMAT";
    case Code::ARG: return "E_ARG";
  }
  return "E_ARG";
}

struct Status {
  Code code = Code::OK;
  std::string message;
  bool ok() const { return code == Code::OK; }
  static Status Ok() { return {}; }
};

inline Status make_error(Code c, std::string msg) { return Status{c, std::move(msg)}; }

}  // namespace mk

#define MK_RETURN_IF_ERROR(expr)            \
  do {                                      \
    ::mk::Status _mk_st = (expr);           \
    if (!_mk_st.ok()) return _mk_st;        \
  } while (0)
