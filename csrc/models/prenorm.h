// The pre-norm every residual block of the token families starts with (Mamba, MoE, attention, MLP).
#pragma once
#include "plan/plan.h"

namespace mk {

// x̂ = RMSNorm(stream) into xn; folds a pending block output into x on the way.
inline Status prenorm(RunCtx& c, Residual& r, const Tensor& w, float* xn, float eps) {
  const int64_t rows = r.g.rows(), D = r.g.C;
  if (!r.has_pending) return c.be.rmsnorm(r.x, nullptr, w.ptr<float>(), xn, nullptr, rows, D, eps);
  r.has_pending = false;
  return c.be.rmsnorm(r.pending, r.x, w.ptr<float>(), xn, r.x, rows, D, eps);
}

}  // namespace mk
