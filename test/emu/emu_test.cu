// Self-tests of the SIMT emulator (csrc/emu/): CUDA-style kernels compiled through cuda_emu.h.
// Correct kernels must give the right answer in every schedule; planted bugs must each be caught.
// Build and run: test/emu/run.sh (plain, then with -fsanitize=address,undefined).
// Prints one PASS/FAIL (or SKIP) line per test; exits non-zero on any failure.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cuda/launch.cuh"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#endif

namespace {

using mk::emu::Schedule;
const Schedule kSchedules[] = {Schedule::Forward, Schedule::Reverse, Schedule::Random};

int g_failed = 0;
void report(const char* status, const std::string& name, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", status, name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  if (std::strcmp(status, "FAIL") == 0) ++g_failed;
}
void check(bool ok, const std::string& name, const std::string& detail = "") {
  report(ok ? "PASS" : "FAIL", name, detail);
}

// ---- device memory helpers ----------------------------------------------------------------------

template <class T>
T* dev_alloc(size_t n) {
  void* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) {
    std::printf("FAIL cudaMalloc\n");
    std::exit(1);
  }
  return static_cast<T*>(p);
}
template <class T>
T* to_dev(const std::vector<T>& h) {
  T* d = dev_alloc<T>(h.size());
  cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}
template <class T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

// The error a launch left (configuration error or sticky kernel error) and its message; clears it.
struct Err {
  cudaError_t code;
  std::string msg;
};
Err take_error() {
  const cudaError_t e = cudaGetLastError();
  Err r{e, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e)};
  mk::emu::clear_sticky_error();
  return r;
}
bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// Expects the launch(es) in f to fail with `code` and a message containing `what`.
void expect_error(const std::string& name, cudaError_t code, const char* what, const std::function<void()>& f) {
  f();
  const Err e = take_error();
  check(e.code == code && contains(e.msg, what), name, e.msg);
}

// ---- kernels: correct ---------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum_down(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Shared memory + shuffles + a global atomic: out += sum(x).
__global__ void reduce_kernel(const float* x, int n, float* out) {
  __shared__ float sh[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int i = blockIdx.x * blockDim.x + tid;
  float v = i < n ? x[i] : 0.0f;
  v = warp_sum_down(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < static_cast<int>(blockDim.x >> 5) ? sh[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) t += __shfl_xor_sync(0xffffffffu, t, off);
    if (lane == 0) atomicAdd(out, t);
  }
}

// A block-local histogram in shared memory, merged into the global one with atomics.
__global__ void histogram_kernel(const int* x, int n, int* hist) {
  __shared__ int local[64];
  for (int b = threadIdx.x; b < 64; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    atomicAdd(&local[x[i] & 63], 1);
  __syncthreads();
  for (int b = threadIdx.x; b < 64; b += blockDim.x) atomicAdd(&hist[b], local[b]);
}

// out[i] = s[(t + 1) % n] after staging x in shared memory; kSync = false is the planted bug.
template <bool kSync>
__global__ void rotate_kernel(const float* x, float* out) {
  __shared__ float s[128];
  const int t = threadIdx.x, n = blockDim.x, base = blockIdx.x * n;
  s[t] = x[base + t];
  if (kSync) __syncthreads();
  out[base + t] = s[(t + 1) % n];
}

// Shuffles of 32- and 64-bit values with a width: out[k][lane] for the variants below.
template <class T>
__global__ void shfl_width_kernel(T* out, int width) {
  const int lane = threadIdx.x & 31;
  const T v = static_cast<T>(100 + lane);
  out[0 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 3, width);
  out[1 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3, width);
  out[2 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 5, width);
  out[3 * 32 + lane] = __shfl_sync(0xffffffffu, v, 3, width);
  out[4 * 32 + lane] = __shfl_sync(0xffffffffu, v, lane + 7, width);  // srcLane beyond width wraps
}

__global__ void vote_kernel(unsigned* out) {
  const int lane = threadIdx.x & 31;
  out[0 * 32 + lane] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[1 * 32 + lane] = __any_sync(0xffffffffu, lane == 17);
  out[2 * 32 + lane] = __all_sync(0xffffffffu, lane < 32);
  out[3 * 32 + lane] = __all_sync(0xffffffffu, lane != 9);
  out[4 * 32 + lane] = __match_any_sync(0xffffffffu, lane % 3);
  out[5 * 32 + lane] = __match_any_sync(0xffffffffu, static_cast<long long>(lane / 8) << 40);
  if (lane < 16) {  // a sub-warp collective on its own mask, while the other half skips it
    out[6 * 32 + lane] = __ballot_sync(0x0000ffffu, lane & 1);
  } else {
    out[6 * 32 + lane] = __match_any_sync(0xffff0000u, lane < 24 ? 1.5f : -2.0f);
  }
  int pred = -1;
  out[7 * 32 + lane] = __match_all_sync(0xffffffffu, 42, &pred) + (pred == 1 ? 1000u : 0u);
  out[8 * 32 + lane] = static_cast<unsigned>(__syncthreads_count(lane < 5));
}

// One warp: D = A * B + C through wmma; A row- or column-major per kA, B per kB.
template <class T, class LA, class LB>
__global__ void wmma_kernel(const T* a, const T* b, const float* c, float* d_row, float* d_col) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LA> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LB> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
  wmma::mma_sync(acc, fa, fb, acc);
  for (int i = 0; i < acc.num_elements; ++i) acc.x[i] *= 2.0f;  // layout-independent elementwise op
  wmma::store_matrix_sync(d_row, acc, 16, wmma::mem_row_major);
  wmma::store_matrix_sync(d_col, acc, 16, wmma::mem_col_major);
}

// wmma from shared memory with a padded pitch, as gemm.cu does (ldm = 24 halves = 48 bytes).
__global__ void wmma_shared_kernel(const __half* a, const __half* b, float* d, int offset) {
  using namespace nvcuda;
  __shared__ __align__(128) __half sa[16 * 24];
  __shared__ __align__(128) __half sb[16 * 24];
  for (int e = threadIdx.x; e < 256; e += 32) {
    sa[(e / 16) * 24 + e % 16] = a[e];
    sb[(e / 16) * 24 + e % 16] = b[e];
  }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(fa, sa + offset, 24);
  wmma::load_matrix_sync(fb, sb, 24);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

__global__ void copy_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i];
}

__global__ void scale_kernel(float* y, float s, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] *= s;
}

// Each thread modifies its by-value parameter: other threads must not see it.
__global__ void param_copy_kernel(int* out, int base) {
  base += static_cast<int>(threadIdx.x);
  out[threadIdx.x] = base;
}

// Dynamic shared memory: reads before writes see the per-block 0xFF poison (NaN as f32).
__global__ void dyn_shared_kernel(float* out) {
  MK_DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x;
  const bool was_nan = isnan(buf[t]);
  buf[t] = static_cast<float>(t + blockIdx.x);
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = was_nan ? buf[blockDim.x - 1 - t] : -1.0f;
}

// 3-D blocks: threadIdx/blockIdx decomposition, warps from the linear thread index.
__global__ void dims_kernel(int* out) {
  const int lin = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int blk = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int n = blockDim.x * blockDim.y * blockDim.z;
  const int lane0 = __shfl_sync(0xffffffffu, lin, 0);  // the warp's first linear index
  out[blk * n + lin] = blk * 100000 + lin * 100 + (lin - lane0);
}

// ---- kernels: planted bugs ----------------------------------------------------------------------

// Lanes 16-31 are not in the mask they pass.
__global__ void bad_mask_self_kernel(float* out) {
  float v = threadIdx.x;
  v += __shfl_xor_sync(0x0000ffffu, v, 16);
  out[threadIdx.x] = v;
}
// Only lanes 0-15 take part (mask 0xffff), but lanes 8-15 read lanes 16-23.
__global__ void bad_mask_source_kernel(float* out) {
  float v = threadIdx.x;
  if (threadIdx.x < 16) v += __shfl_down_sync(0x0000ffffu, v, 8);
  out[threadIdx.x] = v;
}
// Half the warp passes the full mask, the other half a half mask, at the same reduction.
__global__ void bad_mask_mismatch_kernel(float* out) {
  const unsigned mask = threadIdx.x < 16 ? 0xffffffffu : 0xffff0000u;
  float v = threadIdx.x;
  v += __shfl_xor_sync(mask, v, 1);
  out[threadIdx.x] = v;
}
// A full-warp shuffle in a block of 48 threads: warp 1 has only 16 lanes.
__global__ void partial_warp_kernel(float* out) {
  float v = threadIdx.x;
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}
// A lane leaves before the shuffle its warp waits at.
__global__ void exit_before_shfl_kernel(float* out) {
  if (threadIdx.x == 7) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
// One branch returns early, the rest wait at __syncthreads.
__global__ void divergent_barrier_kernel(float* out, int n) {
  __shared__ float s[128];
  if (static_cast<int>(threadIdx.x) >= n) return;
  s[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[n - 1 - threadIdx.x];
}
// __syncthreads inside a branch taken by some threads of a warp, a warp shuffle in the other.
__global__ void barrier_vs_shfl_kernel(float* out) {
  float v = 1.0f;
  if (threadIdx.x < 32 && (threadIdx.x & 1)) __syncthreads();
  else v = __shfl_xor_sync(0xffffffffu, v, 2);
  out[threadIdx.x] = v;
}
// Off-by-one index into a static shared array (64 floats, index up to 64).
[[maybe_unused]] __global__ void oob_shared_kernel(float* out) {
  __shared__ float s[64];
  s[threadIdx.x + 1] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}
// A spin-wait for another thread of the same block: __nanosleep lets it run.
__global__ void spin_kernel(int* out) {
  __shared__ volatile int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  if (threadIdx.x == 1) {
    while (flag == 0) __nanosleep(100);
    out[0] = 1;
  } else if (threadIdx.x == 0) {
    flag = 1;
  }
}

__global__ void trap_kernel(int n) {
  if (static_cast<int>(threadIdx.x) == n) __trap();
}

__global__ void read_kernel(const float* x, float* out, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += x[i];
  out[0] = s;
}

// ---- tests --------------------------------------------------------------------------------------

void test_reduction() {
  const int n = 1 << 16;
  std::vector<float> h(n);
  double want = 0;
  for (int i = 0; i < n; ++i) {
    h[i] = static_cast<float>((i * 7919) % 13);
    want += h[i];
  }
  float* x = to_dev(h);
  float* out = dev_alloc<float>(1);
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 12345);
    cudaMemset(out, 0, sizeof(float));
    ::mk::cuda::launch_kernel("reduce_kernel", reduce_kernel, (n + 255) / 256, 256, 0, 0, x, n, out);
    const cudaError_t e = cudaGetLastError();
    const float got = to_host(out, 1)[0];
    check(e == cudaSuccess && got == want, std::string("reduction (shared + shuffle + atomic), ") + mk::emu::schedule_name(s),
          "sum " + std::to_string(got) + ", want " + std::to_string(want));
  }
  cudaFree(x);
  cudaFree(out);
}

void test_histogram() {
  const int n = 50000;
  std::vector<int> h(n), want(64, 0);
  for (int i = 0; i < n; ++i) {
    h[i] = (i * 2654435761u) >> 7;
    ++want[h[i] & 63];
  }
  int* x = to_dev(h);
  int* hist = dev_alloc<int>(64);
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 777);
    cudaMemset(hist, 0, 64 * sizeof(int));
    ::mk::cuda::launch_kernel("histogram_kernel", histogram_kernel, 37, 96, 0, 0, x, n, hist);
    const cudaError_t e = cudaGetLastError();
    check(e == cudaSuccess && to_host(hist, 64) == want, std::string("atomicAdd histogram, ") + mk::emu::schedule_name(s));
  }
  cudaFree(x);
  cudaFree(hist);
}

void test_missing_barrier() {
  const int bs = 128, blocks = 4, n = bs * blocks;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i * 3 + 1);
  float* x = to_dev(h);
  float* out = dev_alloc<float>(n);
  auto wrong_count = [&](bool sync) {
    if (sync) ::mk::cuda::launch_kernel("rotate_kernel", rotate_kernel<true>, blocks, bs, 0, 0, x, out);
    else ::mk::cuda::launch_kernel("rotate_kernel", rotate_kernel<false>, blocks, bs, 0, 0, x, out);
    const std::vector<float> o = to_host(out, n);
    int wrong = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < bs; ++t) wrong += o[b * bs + t] != h[b * bs + (t + 1) % bs];
    return wrong;
  };
  std::string detail;
  bool caught = false, correct_ok = true;
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 99);
    const int bad = wrong_count(false), good = wrong_count(true);
    caught = caught || bad > 0;
    correct_ok = correct_ok && good == 0;
    detail += std::string(detail.empty() ? "" : ", ") + mk::emu::schedule_name(s) + " " + std::to_string(bad) + "/" +
              std::to_string(n) + " wrong";
  }
  check(correct_ok, "rotate with __syncthreads: right in every schedule");
  check(caught, "PLANTED missing __syncthreads: wrong result in some schedule", detail);
  cudaFree(x);
  cudaFree(out);
}

void test_shfl_width() {
  auto run = [](auto zero, const char* type) {
    using T = decltype(zero);
    T* out = dev_alloc<T>(5 * 32);
    for (int width : {16, 8, 32}) {
      ::mk::cuda::launch_kernel("shfl_width_kernel", shfl_width_kernel<T>, 1, 32, 0, 0, out, width);
      const std::vector<T> o = to_host(out, 5 * 32);
      int bad = 0;
      for (int l = 0; l < 32; ++l) {
        const int base = l & ~(width - 1), in = l - base;
        const int up = in >= 3 ? l - 3 : l, down = in + 3 < width ? l + 3 : l;
        const int x = (l ^ 5) <= base + width - 1 ? (l ^ 5) : l;  // PTX: valid if <= the segment's last lane
        const int idx = base + (3 & (width - 1)), wrap = base + ((l + 7) & (width - 1));
        const int want[5] = {up, down, x, idx, wrap};
        for (int k = 0; k < 5; ++k) bad += o[k * 32 + l] != static_cast<T>(100 + want[k]);
      }
      check(cudaGetLastError() == cudaSuccess && bad == 0,
            std::string("__shfl_up/down/xor/idx_sync width ") + std::to_string(width) + ", " + type,
            std::to_string(bad) + " wrong");
    }
    cudaFree(out);
  };
  run(0, "int");
  run(0u, "unsigned");
  run(0.0f, "float");
  run(0.0, "double");
  run(0ll, "long long");
}

void test_votes() {
  unsigned* out = dev_alloc<unsigned>(9 * 32);
  ::mk::cuda::launch_kernel("vote_kernel", vote_kernel, 1, 32, 0, 0, out);
  const cudaError_t e = cudaGetLastError();
  const std::vector<unsigned> o = to_host(out, 9 * 32);
  unsigned ballot = 0, half_ballot = 0;
  for (int l = 0; l < 32; ++l) ballot |= (l % 3 == 0 ? 1u : 0u) << l;
  for (int l = 0; l < 16; ++l) half_ballot |= (l & 1u) << l;
  int bad_vote = 0, bad_match = 0;
  for (int l = 0; l < 32; ++l) {
    bad_vote += o[l] != ballot;
    bad_vote += o[32 + l] != 1u;
    bad_vote += o[64 + l] != 1u;
    bad_vote += o[96 + l] != 0u;
    unsigned m3 = 0, m8 = 0;
    for (int k = 0; k < 32; ++k) {
      m3 |= (k % 3 == l % 3 ? 1u : 0u) << k;
      m8 |= (k / 8 == l / 8 ? 1u : 0u) << k;
    }
    bad_match += o[128 + l] != m3;
    bad_match += o[160 + l] != m8;
    const unsigned half = l < 16 ? half_ballot : (l < 24 ? 0x00ff0000u : 0xff000000u);
    bad_vote += o[192 + l] != half;
    bad_match += o[224 + l] != 0xffffffffu + 1000u;
    bad_vote += o[256 + l] != 5u;
  }
  check(e == cudaSuccess && bad_vote == 0, "__ballot_sync/__any_sync/__all_sync/__syncthreads_count (full and half masks)",
        std::to_string(bad_vote) + " wrong");
  check(e == cudaSuccess && bad_match == 0, "__match_any_sync (32/64-bit, float) and __match_all_sync",
        std::to_string(bad_match) + " wrong");
  cudaFree(out);
}

template <class T, class LA, class LB>
void test_wmma_one(const char* name, float tol) {
  std::vector<T> a(256), b(256);
  std::vector<float> c(256), ref_row(256);
  std::vector<float> af(256), bf(256);
  for (int i = 0; i < 256; ++i) {
    af[i] = static_cast<float>((i * 37) % 17 - 8) / 8.0f + 0.01f * (i % 5);
    bf[i] = static_cast<float>((i * 11) % 13 - 6) / 4.0f - 0.02f * (i % 3);
    c[i] = static_cast<float>(i % 7) - 3.0f;
  }
  constexpr bool a_row = std::is_same_v<LA, nvcuda::wmma::row_major>, b_row = std::is_same_v<LB, nvcuda::wmma::row_major>;
  // a holds A (16x16) in LA order, b holds B in LB order; the reference uses the rounded values.
  for (int i = 0; i < 256; ++i) {
    if constexpr (std::is_same_v<T, __half>) {
      a[i] = __float2half_rn(af[i]);
      b[i] = __float2half_rn(bf[i]);
      af[i] = __half2float(a[i]);
      bf[i] = __half2float(b[i]);
    } else {
      a[i] = __float2bfloat16_rn(af[i]);
      b[i] = __float2bfloat16_rn(bf[i]);
      af[i] = __bfloat162float(a[i]);
      bf[i] = __bfloat162float(b[i]);
    }
  }
  auto A = [&](int i, int k) { return af[a_row ? i * 16 + k : k * 16 + i]; };
  auto B = [&](int k, int j) { return bf[b_row ? k * 16 + j : j * 16 + k]; };
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double s = c[i * 16 + j];
      for (int k = 0; k < 16; ++k) s += static_cast<double>(A(i, k)) * B(k, j);
      ref_row[i * 16 + j] = static_cast<float>(2.0 * s);
    }
  T* da = to_dev(a);
  T* db = to_dev(b);
  float* dc = to_dev(c);
  float* d_row = dev_alloc<float>(256);
  float* d_col = dev_alloc<float>(256);
  ::mk::cuda::launch_kernel("wmma_kernel", (wmma_kernel<T, LA, LB>), 1, 32, 0, 0, da, db, dc, d_row, d_col);
  const cudaError_t e = cudaGetLastError();
  const std::vector<float> r = to_host(d_row, 256), cl = to_host(d_col, 256);
  double worst = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      worst = std::max(worst, std::fabs(r[i * 16 + j] - ref_row[i * 16 + j]) / (1.0 + std::fabs(ref_row[i * 16 + j])));
      worst = std::max(worst, std::fabs(cl[j * 16 + i] - ref_row[i * 16 + j]) / (1.0 + std::fabs(ref_row[i * 16 + j])));
    }
  check(e == cudaSuccess && worst <= tol, std::string("wmma 16x16x16 ") + name + " vs a plain loop",
        "max rel error " + std::to_string(worst));
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  cudaFree(d_row);
  cudaFree(d_col);
}

void test_wmma() {
  using namespace nvcuda::wmma;
  test_wmma_one<__nv_bfloat16, row_major, col_major>("bf16 (A row, B col)", 1e-6f);
  test_wmma_one<__half, row_major, col_major>("f16 (A row, B col)", 1e-6f);
  test_wmma_one<__nv_bfloat16, col_major, row_major>("bf16 (A col, B row)", 1e-6f);
  test_wmma_one<__half, col_major, row_major>("f16 (A col, B row)", 1e-6f);

  std::vector<__half> a(256), b(256);
  for (int i = 0; i < 256; ++i) {
    a[i] = __float2half_rn(static_cast<float>(i % 5));
    b[i] = __float2half_rn(i / 16 == i % 16 ? 1.0f : 0.0f);  // identity
  }
  __half* da = to_dev(a);
  __half* db = to_dev(b);
  float* d = dev_alloc<float>(256);
  ::mk::cuda::launch_kernel("wmma_shared_kernel", wmma_shared_kernel, 1, 32, 0, 0, da, db, d, 0);
  const std::vector<float> r = to_host(d, 256);
  bool ok = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 256; ++i) ok = ok && r[i] == static_cast<float>(i % 5);
  check(ok, "wmma from shared memory with a padded pitch (A x I = A)");
  expect_error("PLANTED wmma::load_matrix_sync on a pointer that is not 32-byte aligned", cudaErrorMisalignedAddress,
               "not 256-bit (32-byte) aligned", [&] { ::mk::cuda::launch_kernel("wmma_shared_kernel", wmma_shared_kernel, 1, 32, 0, 0, da, db, d, 8); });
  cudaFree(da);
  cudaFree(db);
  cudaFree(d);
}

void test_planted_warp_bugs() {
  float* out = dev_alloc<float>(64);
  expect_error("PLANTED wrong shuffle mask (lanes outside their own mask)", cudaErrorLaunchFailure,
               "does not include the calling lane", [&] { ::mk::cuda::launch_kernel("bad_mask_self_kernel", bad_mask_self_kernel, 1, 32, 0, 0, out); });
  expect_error("PLANTED wrong shuffle mask (reads a lane outside the mask)", cudaErrorLaunchFailure,
               "which is not in the mask", [&] { ::mk::cuda::launch_kernel("bad_mask_source_kernel", bad_mask_source_kernel, 1, 32, 0, 0, out); });
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 5);
    expect_error(std::string("PLANTED mismatched shuffle masks within a warp, ") + mk::emu::schedule_name(s),
                 cudaErrorLaunchFailure, "its last warp collective was __shfl_xor_sync(mask 0xffff0000)",
                 [&] { ::mk::cuda::launch_kernel("bad_mask_mismatch_kernel", bad_mask_mismatch_kernel, 1, 32, 0, 0, out); });
  }
  mk::emu::set_schedule(Schedule::Forward);
  expect_error("PLANTED full-mask shuffle in a partial warp (48 threads)", cudaErrorLaunchFailure, "does not exist",
               [&] { ::mk::cuda::launch_kernel("partial_warp_kernel", partial_warp_kernel, 1, 48, 0, 0, out); });
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 6);
    expect_error(std::string("PLANTED lane exits before a full-warp shuffle, ") + mk::emu::schedule_name(s),
                 cudaErrorLaunchFailure, "exited", [&] { ::mk::cuda::launch_kernel("exit_before_shfl_kernel", exit_before_shfl_kernel, 1, 32, 0, 0, out); });
  }
  mk::emu::set_schedule(Schedule::Forward);
  cudaFree(out);
}

void test_planted_divergent_barrier() {
  float* out = dev_alloc<float>(128);
  for (Schedule s : kSchedules) {
    mk::emu::set_schedule(s, 8);
    expect_error(std::string("PLANTED divergent __syncthreads (early return), ") + mk::emu::schedule_name(s),
                 cudaErrorLaunchFailure, "divergent __syncthreads",
                 [&] { ::mk::cuda::launch_kernel("divergent_barrier_kernel", divergent_barrier_kernel, 2, 128, 0, 0, out, 100); });
    expect_error(std::string("PLANTED __syncthreads in a branch, a shuffle in the other, ") + mk::emu::schedule_name(s),
                 cudaErrorLaunchFailure, "__syncthreads", [&] { ::mk::cuda::launch_kernel("barrier_vs_shfl_kernel", barrier_vs_shfl_kernel, 1, 64, 0, 0, out); });
  }
  mk::emu::set_schedule(Schedule::Forward);
  ::mk::cuda::launch_kernel("divergent_barrier_kernel", divergent_barrier_kernel, 2, 128, 0, 0, out, 128);  // every thread reaches the barrier
  check(cudaGetLastError() == cudaSuccess, "the same kernel without the early return runs");
  cudaFree(out);
}

// The out-of-bounds kernel runs in a child process: AddressSanitizer ends it with a report.
void test_planted_oob_shared() {
#if defined(HAVE_ASAN)
  int pipefd[2];
  if (pipe(pipefd) != 0) return report("FAIL", "PLANTED out-of-range shared index", "pipe");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    float* out = dev_alloc<float>(64);
    ::mk::cuda::launch_kernel("oob_shared_kernel", oob_shared_kernel, 1, 64, 0, 0, out);
    std::_Exit(0);  // not caught
  }
  close(pipefd[1]);
  std::string err;
  char buf[4096];
  for (ssize_t k; (k = read(pipefd[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(k));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool asan = contains(err, "AddressSanitizer: global-buffer-overflow");
  const bool ubsan = contains(err, "out of bounds for type");
  std::string first;
  for (const char* key : {"runtime error: index", "ERROR: AddressSanitizer"}) {
    const size_t p = err.find(key);
    if (p != std::string::npos) first += (first.empty() ? "" : " | ") + err.substr(p, err.find('\n', p) - p);
  }
  check(asan && !(WIFEXITED(status) && WEXITSTATUS(status) == 0),
        "PLANTED out-of-range shared index, caught by AddressSanitizer" + std::string(ubsan ? " (and UBSan bounds)" : ""),
        first);
#else
  report("SKIP", "PLANTED out-of-range shared index",
         "needs -fsanitize=address (global redzones around the static shared array) or -fsanitize=bounds; "
         "without them the stray store lands in a neighbouring static unreported");
#endif
}

void test_launch_limits() {
  float* out = dev_alloc<float>(2048);
  expect_error("PLANTED over-limit launch (1025 threads)", cudaErrorInvalidConfiguration, "1025 threads, more than 1024",
               [&] { ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, 1, 1025, 0, 0, out, out, 1); });
  expect_error("PLANTED block (32, 32, 2) = 2048 threads", cudaErrorInvalidConfiguration, "2048 threads",
               [&] { ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, 1, dim3(32, 32, 2), 0, 0, out, out, 1); });
  expect_error("PLANTED grid.y = 65536", cudaErrorInvalidConfiguration, "exceeds the limits",
               [&] { ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, dim3(1, 65536), 32, 0, 0, out, out, 1); });
  expect_error("PLANTED zero-sized grid", cudaErrorInvalidConfiguration, "zero dimension",
               [&] { ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, 0, 32, 0, 0, out, out, 1); });
  expect_error("PLANTED 64 KiB of dynamic shared memory without the opt-in", cudaErrorInvalidValue,
               "cudaFuncSetAttribute", [&] { ::mk::cuda::launch_kernel("dyn_shared_kernel", dyn_shared_kernel, 1, 32, 64 * 1024, 0, out); });
  ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, 1, 1024, 0, 0, out, out, 1);
  check(cudaGetLastError() == cudaSuccess, "1024 threads launch");
  // A configuration error is not sticky: the next call works.
  check(cudaMemset(out, 0, 4) == cudaSuccess, "a configuration error is not sticky");
  cudaFuncSetAttribute(reinterpret_cast<const void*>(&dyn_shared_kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                       64 * 1024);
  ::mk::cuda::launch_kernel("dyn_shared_kernel", dyn_shared_kernel, 1, 32, 64 * 1024, 0, out);
  check(cudaGetLastError() == cudaSuccess, "64 KiB of dynamic shared memory after cudaFuncSetAttribute");
  cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  const int optin = static_cast<int>(p.sharedMemPerBlockOptin);
  const cudaError_t ea = cudaFuncSetAttribute(reinterpret_cast<const void*>(&dyn_shared_kernel),
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, optin + 1);
  (void)cudaGetLastError();
  expect_error(std::string("PLANTED dynamic shared memory beyond the opt-in limit of ") + p.name, cudaErrorInvalidValue,
               "more than the", [&] { ::mk::cuda::launch_kernel("dyn_shared_kernel", dyn_shared_kernel, 1, 32, optin + 16, 0, out); });
  check(ea == cudaErrorInvalidValue, "cudaFuncSetAttribute beyond the opt-in limit fails");
  cudaFree(out);
}

void test_memory() {
  float* x = dev_alloc<float>(100);
  const std::vector<float> h = to_host(x, 100);
  bool all_nan = true;
  for (float v : h) all_nan = all_nan && std::isnan(v);
  check(all_nan, "uninitialized device memory reads as NaN (cudaMemcpy)");
  float* out = dev_alloc<float>(1);
  ::mk::cuda::launch_kernel("read_kernel", read_kernel, 1, 1, 0, 0, x, out, 100);
  check(std::isnan(to_host(out, 1)[0]), "uninitialized device memory reads as NaN (in a kernel)");
  std::vector<float> big(101, 1.0f);
  const cudaError_t e = cudaMemcpy(x, big.data(), 101 * sizeof(float), cudaMemcpyHostToDevice);
  const Err er = take_error();
  check(e == cudaErrorInvalidValue && contains(er.msg, "runs past the end"), "PLANTED copy past the end of an allocation",
        er.msg);
  const cudaError_t e2 = cudaMemcpy(big.data(), x, 4, cudaMemcpyHostToDevice);
  const Err er2 = take_error();
  check(e2 == cudaErrorInvalidValue && contains(er2.msg, "not device memory"), "PLANTED copy with the wrong kind", er2.msg);
  cudaFree(x);
  const cudaError_t e3 = cudaFree(x);
  const Err er3 = take_error();
  check(e3 == cudaErrorInvalidValue, "PLANTED double cudaFree", er3.msg);
  void* huge = nullptr;
  const cudaError_t e4 = cudaMalloc(&huge, size_t{1} << 50);
  const Err er4 = take_error();
  check(e4 == cudaErrorMemoryAllocation && huge == nullptr, "cudaMalloc beyond the emulated memory", er4.msg);
  cudaFree(out);
}

void test_params_dims_dynshared() {
  int* o = dev_alloc<int>(64);
  ::mk::cuda::launch_kernel("param_copy_kernel", param_copy_kernel, 1, 64, 0, 0, o, 1000);
  const std::vector<int> h = to_host(o, 64);
  bool ok = true;
  for (int t = 0; t < 64; ++t) ok = ok && h[t] == 1000 + t;
  check(ok, "by-value kernel parameters are per thread");
  cudaFree(o);

  const dim3 grid(2, 3, 2), block(8, 4, 3);
  const int nb = 12, nt = 96;
  int* d = dev_alloc<int>(nb * nt);
  ::mk::cuda::launch_kernel("dims_kernel", dims_kernel, grid, block, 0, 0, d);
  const std::vector<int> hd = to_host(d, nb * nt);
  ok = cudaGetLastError() == cudaSuccess;
  for (int b = 0; b < nb; ++b)
    for (int t = 0; t < nt; ++t) ok = ok && hd[b * nt + t] == b * 100000 + t * 100 + t % 32;
  check(ok, "3-D grid and block: built-ins, warps from the linear thread index");
  cudaFree(d);

  float* f = dev_alloc<float>(3 * 64);
  ::mk::cuda::launch_kernel("dyn_shared_kernel", dyn_shared_kernel, 3, 64, 64 * sizeof(float), 0, f);
  const std::vector<float> hf = to_host(f, 3 * 64);
  ok = cudaGetLastError() == cudaSuccess;
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 64; ++t) ok = ok && hf[b * 64 + t] == static_cast<float>(63 - t + b);
  check(ok, "MK_DYNAMIC_SHARED: per-launch buffer, poisoned (NaN) before every block");
  cudaFree(f);

  int* s = dev_alloc<int>(1);
  for (Schedule sc : kSchedules) {
    mk::emu::set_schedule(sc, 3);
    cudaMemset(s, 0, 4);
    ::mk::cuda::launch_kernel("spin_kernel", spin_kernel, 1, 64, 0, 0, s);
    check(cudaGetLastError() == cudaSuccess && to_host(s, 1)[0] == 1,
          std::string("spin-wait with __nanosleep on another thread, ") + mk::emu::schedule_name(sc));
  }
  mk::emu::set_schedule(Schedule::Forward);
  cudaFree(s);
}

void test_sticky_and_trap() {
  float* x = dev_alloc<float>(4);
  ::mk::cuda::launch_kernel("trap_kernel", trap_kernel, 2, 32, 0, 0, 5);
  const cudaError_t e1 = cudaGetLastError();
  const cudaError_t e2 = cudaGetLastError();  // sticky: not reset
  void* p = nullptr;
  const cudaError_t e3 = cudaMalloc(&p, 16);
  const cudaError_t e4 = cudaStreamSynchronize(nullptr);
  const std::string msg = cudaGetErrorString(e1);
  check(e1 == cudaErrorLaunchFailure && e2 == e1 && e3 == e1 && e4 == e1 && contains(msg, "__trap() called") &&
            contains(msg, "block (0, 0, 0)") && contains(msg, "thread (5, 0, 0)"),
        "a kernel fault is sticky and named (kernel, block, thread)", msg);
  mk::emu::clear_sticky_error();
  cudaFree(x);
}

// True when y[0] is still 0: a capture only records the work. (Device memory is host memory here,
// so a plain read looks at it without a copy.)
bool to_host_peek_zero(const float* y) {
  float v = -1;
  std::memcpy(&v, y, sizeof v);
  return v == 0.0f;
}

void test_graphs() {
  const int n = 1000;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i);
  float* x = to_dev(h);
  float* y = dev_alloc<float>(n);
  float* z = dev_alloc<float>(n);
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaMemsetAsync(y, 0, n * sizeof(float), s);
  cudaStreamSynchronize(s);
  cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, (n + 127) / 128, 128, 0, s, x, y, n);
  ::mk::cuda::launch_kernel("scale_kernel", scale_kernel, (n + 127) / 128, 128, 0, s, y, 2.0f, n);
  cudaMemcpyAsync(z, y, n * sizeof(float), cudaMemcpyDeviceToDevice, s);
  cudaMemsetAsync(y, 0, sizeof(float), s);
  void* m = nullptr;
  const cudaError_t em = cudaMalloc(&m, 64);  // relaxed mode: allowed during the capture
  const bool untouched = to_host_peek_zero(y);
  cudaGraph_t g = nullptr;
  const cudaError_t ee = cudaStreamEndCapture(s, &g);
  cudaGraphExec_t ge = nullptr;
  const cudaError_t ei = cudaGraphInstantiate(&ge, g, 0);
  cudaGraphDestroy(g);
  bool ok = em == cudaSuccess && ee == cudaSuccess && ei == cudaSuccess && untouched;
  for (int rep = 0; rep < 2; ++rep) {
    ok = ok && cudaGraphLaunch(ge, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess;
    const std::vector<float> hz = to_host(z, n), hy = to_host(y, n);
    for (int i = 0; i < n; ++i) ok = ok && hz[i] == 2.0f * h[i] && hy[i] == (i == 0 ? 0.0f : 2.0f * h[i]);
  }
  check(ok, "stream capture (2 kernels, a D2D copy, a memset; cudaMalloc in relaxed mode) and 2 graph replays");
  cudaGraphExecDestroy(ge);
  cudaFree(m);

  // Synchronizing a capturing stream fails and invalidates the capture, as on a GPU.
  cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
  ::mk::cuda::launch_kernel("copy_kernel", copy_kernel, 1, 128, 0, s, x, y, n);
  const cudaError_t es = cudaStreamSynchronize(s);
  const cudaError_t ee2 = cudaStreamEndCapture(s, &g);
  (void)cudaGetLastError();
  check(es == cudaErrorStreamCaptureUnsupported && ee2 == cudaErrorStreamCaptureInvalidated && g == nullptr,
        "PLANTED cudaStreamSynchronize during capture invalidates it");
  cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
  const cudaError_t eh = cudaMemcpyAsync(z, h.data(), 4, cudaMemcpyHostToDevice, s);
  const cudaError_t em2 = cudaMalloc(&m, 64);
  cudaStreamEndCapture(s, &g);
  (void)cudaGetLastError();
  check(eh == cudaErrorStreamCaptureUnsupported && em2 == cudaErrorStreamCaptureUnsupported,
        "PLANTED host-to-device copy and cudaMalloc (global mode) during capture fail");
  cudaStreamDestroy(s);
  cudaFree(x);
  cudaFree(y);
  cudaFree(z);
}

void test_device_props() {
  int n = 0;
  cudaDeviceProp p;
  const char* arch = std::getenv("MAMBAKIT_EMU_ARCH");
  const int sm = arch ? std::atoi(arch) : 90;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n >= 1 && cudaGetDeviceProperties(&p, 0) == cudaSuccess &&
                  p.major * 10 + p.minor == sm && p.maxThreadsPerBlock == 1024 && p.sharedMemPerBlock == 48 * 1024 &&
                  p.warpSize == 32 && (sm != 90 || p.multiProcessorCount == 132);
  check(ok, std::string("device properties: ") + p.name);
}

// Two host threads launch kernels on their own streams while a third allocates, copies and queries
// the device: launches are serialized by the device lock, and every result is right.
void test_threads() {
  const int n = 4096, reps = 40;
  std::vector<float> h(n);
  float want = 0;
  for (int i = 0; i < n; ++i) {
    h[i] = static_cast<float>(i % 10);
    want += h[i];
  }
  float* x = to_dev(h);
  bool ok[2] = {true, true};
  auto launcher = [&](int id) {
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    float* out = dev_alloc<float>(1);
    for (int r = 0; r < reps; ++r) {
      cudaMemsetAsync(out, 0, sizeof(float), s);
      ::mk::cuda::launch_kernel("reduce_kernel", reduce_kernel, n / 256, 256, 0, s, x, n, out);
      float got = -1;
      cudaMemcpyAsync(&got, out, sizeof got, cudaMemcpyDeviceToHost, s);
      ok[id] = ok[id] && cudaStreamSynchronize(s) == cudaSuccess && got == want;
    }
    cudaFree(out);
    cudaStreamDestroy(s);
  };
  bool other_ok = true;
  auto other = [&] {
    for (int r = 0; r < 200; ++r) {
      int count = 0;
      cudaDeviceProp p;
      void* m = nullptr;
      other_ok = other_ok && cudaGetDeviceCount(&count) == cudaSuccess && count >= 1 &&
                 cudaGetDeviceProperties(&p, 0) == cudaSuccess && cudaMalloc(&m, 1024) == cudaSuccess &&
                 cudaMemcpy(m, h.data(), 1024, cudaMemcpyHostToDevice) == cudaSuccess && cudaFree(m) == cudaSuccess;
    }
  };
  std::thread a(launcher, 0), b(launcher, 1), c(other);
  a.join();
  b.join();
  c.join();
  check(ok[0] && ok[1] && other_ok, "two host threads launching on their own streams, a third allocating and querying");
  cudaFree(x);
}

// Timing: a 1M-thread reduction (4096 blocks of 256 threads: 5 + 5 shuffles, 1 barrier each).
void bench() {
  const int n = 1 << 20;
  std::vector<float> h(n, 1.0f);
  float* x = to_dev(h);
  float* out = dev_alloc<float>(1);
  mk::emu::set_schedule(Schedule::Forward);
  cudaMemset(out, 0, 4);
  const mk::emu::Stats s0 = mk::emu::stats();
  const auto t0 = std::chrono::steady_clock::now();
  ::mk::cuda::launch_kernel("reduce_kernel", reduce_kernel, n / 256, 256, 0, 0, x, n, out);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const mk::emu::Stats s1 = mk::emu::stats();
  const double sw = static_cast<double>(s1.switches - s0.switches);
  const bool ok = cudaGetLastError() == cudaSuccess && to_host(out, 1)[0] == static_cast<float>(n);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%.3f s, %.0f resumes (%.1f per thread), %.0f ns per resume+yield, %.0f collectives",
                sec, sw, sw / n, 1e9 * sec / sw, static_cast<double>(s1.collectives - s0.collectives));
  check(ok, "timing: 1M-thread reduction", buf);
  cudaFree(x);
  cudaFree(out);
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  test_device_props();
  test_reduction();
  test_histogram();
  test_missing_barrier();
  test_shfl_width();
  test_votes();
  test_wmma();
  test_planted_warp_bugs();
  test_planted_divergent_barrier();
  test_planted_oob_shared();
  test_launch_limits();
  test_memory();
  test_params_dims_dynshared();
  test_sticky_and_trap();
  test_graphs();
  test_threads();
  bench();
  std::printf("%s: %d failure(s)\n", g_failed ? "FAILED" : "ALL PASSED", g_failed);
  return g_failed ? 1 : 0;
}
