// The sparse-model kernel family's limits (router, group sort), shared by the CPU and CUDA kernels,
// the op table and the model plans. Definitions of the kernels: cpu/sparse.h.
#pragma once
#include <cstdint>
#include <string>

#include "core/act.h"
#include "core/status.h"

namespace mk {

constexpr int64_t kRouterMaxExperts = 256;  // one warp's registers / a stack array per row
constexpr int64_t kRouterMaxK = 8;
constexpr int64_t kMaxGroups = 4096;        // group_sort's counters live in one block's shared memory

inline Status router_can_run(int64_t G, int64_t k) {
  if (G < 1 || G > kRouterMaxExperts || k < 1 || k > kRouterMaxK || k > G)
    return make_error(Code::ARG, "router_topk: experts=" + std::to_string(G) + " k=" + std::to_string(k) +
                                     " (experts in [1, 256], top-k in [1, min(8, experts)])");
  return Status::Ok();
}
inline Status group_sort_can_run(int64_t G) {
  if (G < 1 || G > kMaxGroups)
    return make_error(Code::ARG, "group_sort: groups=" + std::to_string(G) + " must be in [1, 4096]");
  return Status::Ok();
}

}  // namespace mk
