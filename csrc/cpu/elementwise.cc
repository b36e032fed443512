#include <algorithm>

#include "core/threadpool.h"
#include "cpu/kernels.h"

namespace mk::cpu {
namespace {
constexpr int64_t kGrain = 1 << 14;  // below this, threading costs more than it saves
}

void add(const float* a, const float* b, float* y, int64_t n, int64_t nb) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    if (nb == n) {
      for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i];
    } else {
      for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i % nb];
    }
  });
}

void mul(const float* a, const float* b, float* y, int64_t n, int64_t nb) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    if (nb == n) {
      for (int64_t i = s; i < e; ++i) y[i] = a[i] * b[i];
    } else {
      for (int64_t i = s; i < e; ++i) y[i] = a[i] * b[i % nb];
    }
  });
}

void unary(Unary op, const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain / 4, [&](int64_t s, int64_t e) {
    switch (op) {
      case Unary::SILU: for (int64_t i = s; i < e; ++i) y[i] = silu_f(x[i]); break;
      case Unary::SOFTPLUS: for (int64_t i = s; i < e; ++i) y[i] = softplus_f(x[i]); break;
      case Unary::GELU: for (int64_t i = s; i < e; ++i) y[i] = gelu_f(x[i]); break;
    }
  });
}

void cast(const void* x, DType xdt, void* y, DType ydt, int64_t n) {
  const int xs = dtype_size(xdt), ys = dtype_size(ydt);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    convert_host(static_cast<const char*>(x) + s * xs, xdt, static_cast<char*>(y) + s * ys, ydt, e - s);
  });
}

}  // namespace mk::cpu

namespace mk::cpu {

void row_add(float* y, int64_t ldy, const int32_t* rows, int64_t n, const float* v, int64_t ldv, int64_t C) {
  parallel_for(n, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      float* yr = y + static_cast<int64_t>(rows[i]) * ldy;
      const float* vr = v + i * ldv;
      for (int64_t c = 0; c < C; ++c) yr[c] += vr[c];
    }
  });
}

}  // namespace mk::cpu
