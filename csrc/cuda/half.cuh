// Widening the weight and K/V cache element types to f32 in device code (the GEMM, embedding,
// attention and reft kernels read f32, f16 or bf16 as they are stored).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace mk::cuda {

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

}  // namespace mk::cuda
