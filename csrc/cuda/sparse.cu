// Sparse-model kernels on CUDA (definitions in cpu/sparse.h, launchers in cuda/sparse.cuh): router
// softmax + top-k, the counting sort by group, the weighted combine and SwiGLU. The grouped GEMM
// lives in gemm.cu (it shares the dense GEMM's kernels).
//
// Nothing here synchronizes with the host: group sizes and offsets stay on the device.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "cuda/check.h"
#include "cuda/launch.cuh"
#include "cuda/sparse.cuh"
#include "cuda/warp.cuh"

namespace mk::cuda {
namespace {

constexpr int64_t kMaxGridX = 2147483647;
constexpr int kEwThreads = 256;
constexpr int64_t kEwMaxBlocks = 65535;  // grid-stride loops cover the rest

unsigned ew_grid(int64_t n) {
  const int64_t b = (n + kEwThreads - 1) / kEwThreads;
  return static_cast<unsigned>(b < kEwMaxBlocks ? b : kEwMaxBlocks);
}


// ---- router: softmax + top-k --------------------------------------------------------------------

constexpr int kRouterWarps = 8;  // rows per block

// One warp per row; lane l holds p[l + 32 j], j < J (J = ceil(G / 32) rounded up to 1/2/4/8), so
// loads are coalesced and the row lives in registers for the k arg-max rounds. Order for top-k:
// larger p wins, equal p goes to the lower index (a strict total order on (p, index), so the tree
// reduction equals the CPU's left-to-right scan). NaN p never wins; when only NaN are left the
// lowest untaken index is chosen, which is what the CPU scan does (nothing compares > NaN).
template <int J>
__global__ void __launch_bounds__(kRouterWarps * 32)
    router_kernel(const float* __restrict__ logits, int64_t T, int G, int k, bool renorm,
                  int32_t* __restrict__ ids, float* __restrict__ weights,
                  int32_t* __restrict__ counts) {
  const int lane = threadIdx.x & 31;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouterWarps + (threadIdx.x >> 5);
  if (t >= T) return;  // uniform per warp
  const float* l = logits + t * G;
  float p[J];
  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int i = lane + 32 * j;
    p[j] = i < G ? l[i] : -INFINITY;
    mx = fmaxf(mx, p[j]);
  }
  mx = warp_max(mx);
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int i = lane + 32 * j;
    p[j] = i < G ? expf(p[j] - mx) : 0.0f;
    s += p[j];
  }
  s = warp_sum(s);
#pragma unroll
  for (int j = 0; j < J; ++j) p[j] /= s;

  unsigned taken = 0;  // bit j: p[j] of this lane already chosen (or past G)
#pragma unroll
  for (int j = 0; j < J; ++j)
    if (lane + 32 * j >= G) taken |= 1u << j;
  float chosen = 0.0f, my_w = 0.0f;
  int my_id = 0;
  for (int r = 0; r < k; ++r) {
    float bv = -INFINITY;
    int bi = INT_MAX, lowest = INT_MAX;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      if (taken & (1u << j)) continue;
      const int i = lane + 32 * j;
      lowest = min(lowest, i);
      if (p[j] > bv || (p[j] == bv && i < bi)) {  // false for NaN; i ascends, so ties keep lower
        bv = p[j];
        bi = i;
      }
    }
    // larger p first, then the lower index; INT_MAX (nothing left in a lane, or only NaN) never wins
    warp_best(bv, bi, [](float ov, int oi, float v, int i) {
      return oi != INT_MAX && (i == INT_MAX || ov > v || (ov == v && oi < i));
    });
    lowest = warp_min(lowest);
    const int win = bi != INT_MAX ? bi : lowest;  // k <= G: some index is always untaken
    // The owner lane of `win` broadcasts its p (bv is -inf when only NaN were left).
    float mine = 0.0f;
#pragma unroll
    for (int j = 0; j < J; ++j)
      if (lane + 32 * j == win) mine = p[j];
    const float pwin = __shfl_sync(0xffffffffu, mine, win & 31);
    if ((win & 31) == lane) taken |= 1u << (win >> 5);
    chosen += pwin;  // j order, as the CPU
    if (lane == r) {  // lane r keeps round r's choice; lanes < k write once at the end
      my_id = win;
      my_w = pwin;
    }
  }
  if (lane < k) {
    ids[t * k + lane] = my_id;
    weights[t * k + lane] = renorm ? my_w / chosen : my_w;
    if (counts != nullptr) atomicAdd(counts + my_id, 1);
  }
}

template <int J>
void launch_router(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm, int32_t* ids,
                   float* weights, int32_t* counts, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((T + kRouterWarps - 1) / kRouterWarps);
  launch_kernel("router_kernel", router_kernel<J>, blocks, kRouterWarps * 32, 0, s, logits, T, static_cast<int>(G),
                                                        static_cast<int>(k), renorm, ids, weights,
                                                        counts);
}

// ---- group sort ---------------------------------------------------------------------------------

// One block of 1024 threads does the whole counting sort, so there is no cross-block dependency and
// no host round trip (the offsets never leave the device). The sorted sizes are small (tokens x k,
// at most a few hundred thousand pairs), so one block finishes in microseconds; the histogram and
// the cursors live in shared memory (kSortMaxG ints).
constexpr int kSortThreads = 1024;
constexpr int kSortMaxG = static_cast<int>(kMaxGroups);
constexpr int kSortPer = kSortMaxG / kSortThreads;  // scan entries per thread: 4

// Warp-aggregated atomicAdd of 1 per valid lane to ctr[key]: lanes with the same key elect one
// leader that adds their count, so few groups (Mixture-of-Mamba: 2 or 3) do not serialize 32
// atomics on one address. Returns the old value plus the lane's rank among its key's lanes.
// Called by all 32 lanes together (key < 0: invalid lane, no add, result unused).
__device__ __forceinline__ int warp_add(int* ctr, int key) {
  const int lane = threadIdx.x & 31;
  const unsigned same = __match_any_sync(0xffffffffu, key);
  const int leader = __ffs(static_cast<int>(same)) - 1;
  int old = 0;
  if (key >= 0 && lane == leader) old = atomicAdd(ctr + key, __popc(same));
  old = __shfl_sync(0xffffffffu, old, leader);
  return old + __popc(same & ((1u << lane) - 1u));
}

__global__ void __launch_bounds__(kSortThreads)
    group_sort_kernel(const int32_t* __restrict__ gid, int64_t n, int k, int G,
                      int32_t* __restrict__ offsets, int32_t* __restrict__ src,
                      int32_t* __restrict__ pos, int32_t* __restrict__ bad_flag) {
  __shared__ int hist[kSortMaxG];  // counts, then the per-group write cursors
  __shared__ int wsum[kSortThreads / 32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int g = tid; g < G; g += kSortThreads) hist[g] = 0;
  __syncthreads();
  bool bad = false;
  // The loops step whole warps (i0 is uniform per warp) so warp_add sees all 32 lanes.
  for (int64_t i0 = tid - lane; i0 < n; i0 += kSortThreads) {
    const int64_t i = i0 + lane;
    int key = -1;
    if (i < n) {
      const int32_t g = gid[i];
      if (g >= 0 && g < G) {
        key = g;
      } else {
        pos[i] = -1;  // left out of every group
        bad = true;
      }
    }
    warp_add(hist, key);
  }
  if (bad && bad_flag != nullptr) *bad_flag = 1;  // same value from every writer: benign
  __syncthreads();

  // Exclusive scan: thread tid owns entries [tid * kSortPer, +kSortPer) (those < G).
  int local[kSortPer];
  int run = 0;
#pragma unroll
  for (int e = 0; e < kSortPer; ++e) {
    const int g = tid * kSortPer + e;
    local[e] = run;
    run += g < G ? hist[g] : 0;
  }
  int incl = run;  // inclusive warp scan of the per-thread totals
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int o = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += o;
  }
  if (lane == 31) wsum[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = wsum[lane];  // kSortThreads / 32 == 32 warps
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int o = __shfl_up_sync(0xffffffffu, w, off);
      if (lane >= off) w += o;
    }
    wsum[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int base = (warp > 0 ? wsum[warp - 1] : 0) + incl - run;  // exclusive start of this thread
#pragma unroll
  for (int e = 0; e < kSortPer; ++e) {
    const int g = tid * kSortPer + e;
    if (g < G) {
      offsets[g] = base + local[e];
      hist[g] = base + local[e];  // only this thread touches entry g between the barriers
    }
  }
  if (tid == 0) offsets[G] = wsum[31];  // the number of valid pairs
  __syncthreads();

  for (int64_t i0 = tid - lane; i0 < n; i0 += kSortThreads) {
    const int64_t i = i0 + lane;
    int key = -1;
    if (i < n) {
      const int32_t g = gid[i];
      if (g >= 0 && g < G) key = g;
    }
    const int p = warp_add(hist, key);
    if (key >= 0) {
      src[p] = static_cast<int32_t>(i / k);
      pos[i] = p;
    }
  }
}

// ---- combine, SwiGLU ----------------------------------------------------------------------------

// out[t, d] = sum_j w[t, j] y[pos[t k + j], d]; kVec: 4 columns per thread (D, ldy, ldo % 4 == 0
// and both pointers 16-B aligned). Terms are added in j order, as on the CPU.
template <bool kVec>
__global__ void combine_kernel(const float* __restrict__ y, int64_t ldy,
                               const int32_t* __restrict__ pos, const float* __restrict__ weights,
                               int64_t T, int k, int64_t D, float* __restrict__ out, int64_t ldo) {
  constexpr int V = kVec ? 4 : 1;
  const int64_t cols = D / V, total = T * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t t = e / cols, d = (e % cols) * V;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.0f;
    for (int j = 0; j < k; ++j) {
      const int32_t p = pos[t * k + j];
      if (p < 0) continue;  // a pair left out by group_sort (bad id)
      const float g = weights != nullptr ? weights[t * k + j] : 1.0f;
      const float* yr = y + static_cast<int64_t>(p) * ldy + d;
      if constexpr (kVec) {
        const float4 q = *reinterpret_cast<const float4*>(yr);
        acc[0] += g * q.x; acc[1] += g * q.y; acc[2] += g * q.z; acc[3] += g * q.w;
      } else {
        acc[0] += g * yr[0];
      }
    }
    float* o = out + t * ldo + d;
    if constexpr (kVec)
      *reinterpret_cast<float4*>(o) = make_float4(acc[0], acc[1], acc[2], acc[3]);
    else
      o[0] = acc[0];
  }
}

// In place: thread (r, f) reads x[r, f] and x[r, F + f] and writes only x[r, f] (f < F), so no
// element it writes is read by another thread.
__global__ void swiglu_kernel(float* x, int64_t ld, int64_t n, int64_t F) {
  const int64_t total = n * F, stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    float* row = x + (e / F) * ld;
    const int64_t f = e % F;
    const float a = row[f];
    row[f] = a / (1.0f + expf(-a)) * row[F + f];  // silu_f(a) * up, as cpu/kernels.h
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

Status router_topk(const float* logits, int64_t T, int64_t G, int64_t k, bool renorm,
                   int32_t* ids, float* weights, int32_t* counts, void* stream) {
  MK_RETURN_IF_ERROR(router_can_run(G, k));
  if (T < 0) return make_error(Code::ARG, "router_topk: negative T");
  if (T == 0) return Status::Ok();
  if (!logits || !ids || !weights) return make_error(Code::ARG, "router_topk: null pointer");
  if ((T + kRouterWarps - 1) / kRouterWarps > kMaxGridX)
    return make_error(Code::ARG, "router_topk: T=" + std::to_string(T) + " too large");
  auto s = static_cast<cudaStream_t>(stream);
  if (G <= 32) launch_router<1>(logits, T, G, k, renorm, ids, weights, counts, s);
  else if (G <= 64) launch_router<2>(logits, T, G, k, renorm, ids, weights, counts, s);
  else if (G <= 128) launch_router<4>(logits, T, G, k, renorm, ids, weights, counts, s);
  else launch_router<8>(logits, T, G, k, renorm, ids, weights, counts, s);
  return check_launch("router_topk");
}

Status group_sort(const int32_t* gid, int64_t rows, int64_t k, int64_t G, int32_t* offsets,
                  int32_t* src, int32_t* pos, int32_t* bad_flag, void* stream) {
  if (rows < 0 || k < 1 || G < 1 || G > kSortMaxG || (rows > 0 && k > INT32_MAX / rows))
    return make_error(Code::ARG, "group_sort: bad sizes rows=" + std::to_string(rows) + " k=" +
                                     std::to_string(k) + " G=" + std::to_string(G) +
                                     " (G in [1, " + std::to_string(kSortMaxG) +
                                     "], rows*k <= 2^31-1)");
  const int64_t n = rows * k;
  if (!offsets || (n > 0 && (!gid || !src || !pos)))
    return make_error(Code::ARG, "group_sort: null pointer");
  // n == 0 still launches: the kernel writes offsets[0..G] = 0 (no host-side memset needed).
  launch_kernel("group_sort_kernel", group_sort_kernel, 1, kSortThreads, 0, static_cast<cudaStream_t>(stream), gid, n, static_cast<int>(k), static_cast<int>(G), offsets, src, pos, bad_flag);
  return check_launch("group_sort");
}

Status combine(const float* y, int64_t ldy, const int32_t* pos, const float* weights, int64_t T,
               int64_t k, int64_t D, float* out, int64_t ldo, void* stream) {
  if (T < 0 || k < 1 || k > INT_MAX || D < 1 || ldy < D || ldo < D)
    return make_error(Code::ARG, "combine: bad sizes T=" + std::to_string(T) + " k=" +
                                     std::to_string(k) + " D=" + std::to_string(D) + " ldy=" +
                                     std::to_string(ldy) + " ldo=" + std::to_string(ldo));
  if (T == 0) return Status::Ok();
  if (!y || !pos || !out) return make_error(Code::ARG, "combine: null pointer");
  auto s = static_cast<cudaStream_t>(stream);
  const bool vec = D % 4 == 0 && ldy % 4 == 0 && ldo % 4 == 0 && aligned16(y) && aligned16(out);
  if (vec)
    launch_kernel("combine_kernel", combine_kernel<true>, ew_grid(T * (D / 4)), kEwThreads, 0, s, y, ldy, pos, weights, T, static_cast<int>(k), D, out, ldo);
  else
    launch_kernel("combine_kernel", combine_kernel<false>, ew_grid(T * D), kEwThreads, 0, s, y, ldy, pos, weights, T,
                                                                 static_cast<int>(k), D, out, ldo);
  return check_launch("combine");
}

Status swiglu(float* x, int64_t ld, int64_t n, int64_t F, void* stream) {
  if (n < 0 || F < 1 || ld < 2 * F)
    return make_error(Code::ARG, "swiglu: bad sizes n=" + std::to_string(n) + " F=" +
                                     std::to_string(F) + " ld=" + std::to_string(ld) +
                                     " (ld >= 2F)");
  if (n == 0) return Status::Ok();
  if (!x) return make_error(Code::ARG, "swiglu: null pointer");
  launch_kernel("swiglu_kernel", swiglu_kernel, ew_grid(n * F), kEwThreads, 0, static_cast<cudaStream_t>(stream), x, ld, n, F);
  return check_launch("swiglu");
}

}  // namespace mk::cuda
