#include <string>

#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {

Status embedding(const int32_t* ids, int64_t n, const void* table, DType tdt, int64_t V, int64_t D,
                 float* y) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V)
      return make_error(Code::ARG, "embedding: token id " + std::to_string(ids[i]) + " at position " +
                                       std::to_string(i) + " is outside [0, " + std::to_string(V) + ")");
  const int es = dtype_size(tdt);
  parallel_for(n, 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i)
      convert_host(static_cast<const char*>(table) + ids[i] * D * es, tdt, y + i * D, DType::F32, D);
  });
  return Status::Ok();
}

}  // namespace mk::cpu
