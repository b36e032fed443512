// Sparse-model kernels on the CPU; definitions in cpu/sparse.h.
#include "cpu/sparse.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "cpu/gemm.h"
#include "cpu/kernels.h"

namespace mk::cpu {

void router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids,
                 float* weights, int32_t* counts) {
  parallel_for(T, std::max<int64_t>(1, 4096 / G), [&](int64_t t0, int64_t t1) {
    float p[kRouterMaxExperts];
    bool taken[kRouterMaxExperts];
    for (int64_t t = t0; t < t1; ++t) {
      const float* l = logits + t * G;
      float mx = l[0];
      for (int64_t g = 1; g < G; ++g) mx = std::max(mx, l[g]);
      float sum = 0.f;
      for (int64_t g = 0; g < G; ++g) sum += (p[g] = std::exp(l[g] - mx));
      for (int64_t g = 0; g < G; ++g) p[g] /= sum, taken[g] = false;
      float chosen = 0.f;
      for (int64_t j = 0; j < k; ++j) {
        int64_t best = -1;  // strict '>' while scanning upwards: ties go to the lower index
        for (int64_t g = 0; g < G; ++g)
          if (!taken[g] && (best < 0 || p[g] > p[best])) best = g;
        taken[best] = true;
        ids[t * k + j] = static_cast<int32_t>(best);
        weights[t * k + j] = p[best];
        chosen += p[best];
      }
      if (renorm)
        for (int64_t j = 0; j < k; ++j) weights[t * k + j] /= chosen;
    }
  });
  if (counts)  // serial: T*k increments cost less than merging per-thread histograms
    for (int64_t i = 0; i < T * k; ++i) ++counts[ids[i]];
}

Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets,
                  int32_t* src, int32_t* pos) {
  const int64_t n = rows * k;
  std::fill(offsets, offsets + G + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (gid[i] < 0 || gid[i] >= G)
      return make_error(Code::ARG, "group id " + std::to_string(gid[i]) + " at row " + std::to_string(i / k) +
                                       " is outside [0, " + std::to_string(G) + ")");
    ++offsets[gid[i] + 1];
  }
  for (int64_t g = 0; g < G; ++g) offsets[g + 1] += offsets[g];
  std::vector<int32_t> cursor(offsets, offsets + G);
  for (int64_t i = 0; i < n; ++i) {  // in input order: stable
    const int32_t p = cursor[gid[i]]++;
    src[p] = static_cast<int32_t>(i / k);
    pos[i] = p;
  }
  return Status::Ok();
}

namespace {

// (unary() splits its own work across the pool, so it is called per row here, never inside a
// parallel_for: the pool does not nest.)
void apply_act(Act act, float* y, int64_t ldy, int64_t rows, int64_t N) {
  if (act == Act::NONE) return;
  if (act == Act::RELU) {
    parallel_for(rows, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < N; ++c) y[r * ldy + c] = std::max(y[r * ldy + c], 0.f);
    });
    return;
  }
  const Unary op = act == Act::GELU ? Unary::GELU : Unary::SILU;
  if (ldy == N) return unary(op, y, y, rows * N);
  for (int64_t r = 0; r < rows; ++r) unary(op, y + r * ldy, y + r * ldy, N);
}

// dst[r, 0:width] = base[(map ? map[r] : r), 0:width], rows [0, n).
void gather_rows(const float* base, int64_t ld, const int32_t* map, int64_t n, int64_t width, float* dst) {
  parallel_for(n, std::max<int64_t>(1, 16384 / width), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy_n(base + map[r] * ld, width, dst + r * width);
  });
}

}  // namespace

void grouped_gemm(const float* x, int64_t ldx, const int32_t* src, const void* w, DType wdt,
                  const float* bias, const int32_t* offsets, int64_t G, int64_t n, int64_t N,
                  int64_t K, Act act, float* y, int64_t ldy, const int32_t* dst) {
  if (n <= 0) return;
  // Gathered input and to-be-scattered output live in per-thread buffers of the executor thread:
  // they grow to the largest call and are reused, so the hot path does not allocate.
  thread_local std::vector<float> xbuf, ybuf;
  const float* xs = x;
  int64_t ldxs = ldx;
  if (src) {
    xbuf.resize(static_cast<size_t>(n * K));
    gather_rows(x, ldx, src, n, K, xbuf.data());
    xs = xbuf.data(), ldxs = K;
  }
  float* ys = y;
  int64_t ldys = ldy;
  if (dst) {
    ybuf.resize(static_cast<size_t>(n * N));
    ys = ybuf.data(), ldys = N;
  }
  const size_t wbytes = static_cast<size_t>(N * K) * dtype_size(wdt);
  // Groups of at most a few rows (decode) go to the GEMV batch as one parallel job; larger ones
  // to the blocked GEMM one by one. An unused expert/modality's weight is never read.
  std::vector<GemvProblem> small;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t r0 = offsets[g], cnt = offsets[g + 1] - r0;
    if (cnt <= 0) continue;
    const void* wg = static_cast<const char*>(w) + g * wbytes;
    const float* bg = bias ? bias + g * N : nullptr;
    if (cnt <= kGemvBatchMaxM)
      small.push_back({xs + r0 * ldxs, ldxs, wg, bg, ys + r0 * ldys, ldys, cnt});
    else
      gemm(xs + r0 * ldxs, ldxs, wg, wdt, bg, ys + r0 * ldys, ldys, cnt, N, K);
  }
  gemv_batch(small.data(), static_cast<int64_t>(small.size()), wdt, N, K);
  if (act != Act::NONE && offsets[G] > offsets[0]) apply_act(act, ys, ldys, n, N);
  if (dst)
    parallel_for(n, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::copy_n(ys + r * N, N, y + dst[r] * ldy);
    });
}

void combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
             int64_t k, int64_t D, float* out, int64_t ldo) {
  parallel_for(T, std::max<int64_t>(1, 16384 / (D * k)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out + t * ldo;
      for (int64_t j = 0; j < k; ++j) {
        const float* yr = y + static_cast<int64_t>(pos[t * k + j]) * ldy;
        const float g = weights ? weights[t * k + j] : 1.f;
        if (j == 0)
          for (int64_t d = 0; d < D; ++d) o[d] = g * yr[d];
        else
          for (int64_t d = 0; d < D; ++d) o[d] += g * yr[d];
      }
    }
  });
}

void swiglu(float* x, int64_t ld, int64_t n, int64_t F) {
  parallel_for(n, std::max<int64_t>(1, 16384 / F), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * ld;
      for (int64_t f = 0; f < F; ++f) row[f] = silu_f(row[f]) * row[F + f];
    }
  });
}

}  // namespace mk::cpu
