// Embedding lookup: y[i, :] = table[ids[i], :] widened to f32.
//
// Design: one block per output row (block-stride loop over rows beyond the launch cap); the row's
// id is read once and the threads copy the D columns with coalesced loads. An id outside [0, V)
// writes a zero row and raises *bad_flag, so a bad token never reads out of bounds and the host can
// report it after the fact. Concurrent plain stores of the same value 1 to the flag are benign.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.h"
#include "cuda/half.cuh"
#include "cuda/launch.cuh"
#include "cuda/kernels.h"

namespace mk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

template <typename T>
__global__ void embedding_kernel(const int32_t* ids, int64_t n, const T* table, int64_t V,
                                 int64_t D, float* y, int32_t* bad_flag) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const int64_t id = ids[row];
    float* yr = y + row * D;
    if (id < 0 || id >= V) {
      for (int64_t j = threadIdx.x; j < D; j += blockDim.x) yr[j] = 0.0f;
      if (threadIdx.x == 0 && bad_flag != nullptr) *bad_flag = 1;
      continue;
    }
    const T* tr = table + id * D;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) yr[j] = to_f32(tr[j]);
  }
}

template <typename T>
Status launch(const int32_t* ids, int64_t n, const void* table, int64_t V, int64_t D, float* y,
              int32_t* bad_flag, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>(n < kMaxBlocks ? n : kMaxBlocks);
  launch_kernel("embedding_kernel", embedding_kernel<T>, blocks, kThreads, 0, s, ids, n, static_cast<const T*>(table), V, D, y,
                                                  bad_flag);
  return check_launch("embedding");
}

}  // namespace

Status embedding(const int32_t* ids, int64_t n, const void* table, DType tdt, int64_t V, int64_t D,
                 float* y, int32_t* bad_flag, void* stream) {
  if (n < 0 || V < 0 || D < 1)
    return make_error(Code::ARG, "embedding: bad sizes n=" + std::to_string(n) +
                                     " V=" + std::to_string(V) + " D=" + std::to_string(D));
  if (!is_float(tdt))
    return make_error(Code::DTYPE,
                      std::string("embedding: table must be f32/f16/bf16, got ") + dtype_name(tdt));
  auto s = static_cast<cudaStream_t>(stream);
  // The flag reports this call only: clear it first, in stream order.
  if (bad_flag != nullptr) MK_CUDA_CHECK(cudaMemsetAsync(bad_flag, 0, sizeof(int32_t), s));
  if (n == 0) return Status::Ok();
  if (!ids || !y || (!table && V > 0)) return make_error(Code::ARG, "embedding: null pointer");
  switch (tdt) {
    case DType::F32: return launch<float>(ids, n, table, V, D, y, bad_flag, s);
    case DType::F16: return launch<__half>(ids, n, table, V, D, y, bad_flag, s);
    default: return launch<__nv_bfloat16>(ids, n, table, V, D, y, bad_flag, s);
  }
}

}  // namespace mk::cuda
