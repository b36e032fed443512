// CUDA's device-side language for g++: force-include this first when compiling a .cu file as C++
//   g++ -x c++ -std=c++17 -include csrc/emu/cuda_emu.h -DMAMBAKIT_CUDA_EMU=1 -I/usr/local/cuda/include ...
// and link csrc/emu/simt.cc and csrc/emu/runtime_emu.cc instead of libcudart. The kernels then
// run on the CPU with CUDA's execution model emulated (csrc/emu/README.md): one fiber per CUDA
// thread, barriers and warp collectives as checked rendezvous points, launches checked against an
// emulated sm_90 device.
//
// What comes from where: <cuda_runtime.h>, <cuda_fp16.h> and <cuda_bf16.h> are NVIDIA's own
// headers in host mode (dim3, vector types, the runtime's declarations, half/bfloat16 conversions
// with round-to-nearest-even); __global__, __device__, __host__, __forceinline__, __align__ come
// out of them as host attributes. This file adds what host mode lacks: __shared__, the built-in
// variables, barriers, warp collectives, atomics, bit and memory intrinsics, a few math functions,
// nvcuda::wmma (wmma.h); kernels launch through mk::cuda::launch_kernel (csrc/cuda/launch.cuh).
#pragma once

#if defined(__CUDACC__)
#error "cuda_emu.h is for compiling .cu files with a host compiler; nvcc compiles them natively"
#endif
#ifndef MAMBAKIT_CUDA_EMU
#define MAMBAKIT_CUDA_EMU 1
#endif

// __shared__ is `static`, defined before the CUDA headers (host_defines.h keeps a __shared__ that is
// already defined). The blocks of a launch run one after another on the launching OS thread, so one
// static array per declaration is exactly one block's shared memory, shared by the block's fibers.
// Being ordinary globals, shared arrays get AddressSanitizer's global redzones: an out-of-bounds
// shared access is reported under -fsanitize=address (and an out-of-range constant-size array index
// by -fsanitize=bounds, part of -fsanitize=undefined). Caveat: statics start zeroed and keep the
// previous block's values, where a GPU's shared memory starts as garbage.
#define __shared__ static

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>  // the global isnan/isinf/signbit CUDA device code calls unqualified
#include <mma.h>   // empty outside nvcc; included so that a later #include <mma.h> changes nothing

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simt.h"

#ifndef __launch_bounds__
#define __launch_bounds__(...)  // host_defines.h defines it only for nvcc
#endif

// ---- built-in variables: the running fiber's ---------------------------------------------------
#define threadIdx (static_cast<const uint3&>(::mk::emu::detail::g_cur.thread_idx))
#define blockIdx (static_cast<const uint3&>(::mk::emu::detail::g_cur.block_idx))
#define blockDim (static_cast<const dim3&>(::mk::emu::detail::g_cur.block_dim))
#define gridDim (static_cast<const dim3&>(::mk::emu::detail::g_cur.grid_dim))
static constexpr int warpSize = 32;

// ---- barriers -----------------------------------------------------------------------------------
// A barrier over the block: the fiber waits until every thread of the block waits here. A thread
// that exits while others wait, or reaches the barrier after another thread exited, is a divergent
// barrier: the launch fails with cudaErrorLaunchFailure and a message naming block and thread.
inline void __syncthreads() { ::mk::emu::detail::block_barrier(0, 0); }
inline int __syncthreads_count(int p) { return ::mk::emu::detail::block_barrier(1, p); }
inline int __syncthreads_and(int p) { return ::mk::emu::detail::block_barrier(2, p); }
inline int __syncthreads_or(int p) { return ::mk::emu::detail::block_barrier(3, p); }

// Memory fences are no-ops: the fibers of a block run one at a time on one OS thread and blocks run
// one after another, so every store is visible to every later load (sequential consistency). The
// emulator therefore cannot catch a missing fence (weak ordering between SMs) or an inter-block race.
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// Spin-waits on another thread of the block must sleep or they never let it run: this yields.
inline void __nanosleep(unsigned) { ::mk::emu::detail::yield_now(); }
[[noreturn]] inline void __trap() { ::mk::emu::detail::lane_fail(cudaErrorLaunchFailure, "__trap() called"); }
[[noreturn]] inline void __brkpt() { ::mk::emu::detail::lane_fail(cudaErrorLaunchFailure, "__brkpt() called"); }

// ---- warp collectives ---------------------------------------------------------------------------
// Each is a rendezvous of the lanes named by the mask (the calling lane must be one of them): it
// completes when all of them wait at the same operation with the same mask (and width), which is
// what sm_70+ requires. A lane of the mask that exited or waits at __syncthreads, lanes whose masks
// name each other but differ, a shuffle reading a lane outside the mask: cudaErrorLaunchFailure.
namespace mk::emu::detail {

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "a warp operand of at most 64 bits");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

inline uint64_t collective(uint32_t op, unsigned mask, uint64_t value, int arg = 0, int width = 32) {
  Collective c;
  c.op = op;
  c.mask = mask;
  c.value = value;
  c.arg = arg;
  c.width = width;
  warp_collective(c);
  return c.result;
}

template <class T>
inline T shfl(uint32_t op, unsigned mask, T v, int arg, int width) {
  const uint32_t o = sizeof(T) > 4 ? op + (kShflIdx64 - kShflIdx) : op;
  return from_bits<T>(collective(o, mask, to_bits(v), arg, width));
}

template <class T>
inline unsigned match(uint32_t op32, unsigned mask, T v) {
  return static_cast<unsigned>(collective(sizeof(T) > 4 ? op32 + 1 : op32, mask, to_bits(v)));
}

}  // namespace mk::emu::detail

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::mk::emu::detail::collective(::mk::emu::detail::kSyncWarp, mask, 0);
}

#define MK_EMU_SHFL(T)                                                                          \
  inline T __shfl_sync(unsigned m, T v, int src, int w = warpSize) {                            \
    return ::mk::emu::detail::shfl<T>(::mk::emu::detail::kShflIdx, m, v, src, w);               \
  }                                                                                              \
  inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = warpSize) {                      \
    return ::mk::emu::detail::shfl<T>(::mk::emu::detail::kShflUp, m, v, static_cast<int>(d), w); \
  }                                                                                              \
  inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = warpSize) {                    \
    return ::mk::emu::detail::shfl<T>(::mk::emu::detail::kShflDown, m, v, static_cast<int>(d), w); \
  }                                                                                              \
  inline T __shfl_xor_sync(unsigned m, T v, int lane_mask, int w = warpSize) {                  \
    return ::mk::emu::detail::shfl<T>(::mk::emu::detail::kShflXor, m, v, lane_mask, w);         \
  }
MK_EMU_SHFL(int)
MK_EMU_SHFL(unsigned)
MK_EMU_SHFL(long)
MK_EMU_SHFL(unsigned long)
MK_EMU_SHFL(long long)
MK_EMU_SHFL(unsigned long long)
MK_EMU_SHFL(float)
MK_EMU_SHFL(double)
#undef MK_EMU_SHFL

inline unsigned __ballot_sync(unsigned m, int pred) {
  return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kBallot, m, pred != 0));
}
inline int __any_sync(unsigned m, int pred) {
  return static_cast<int>(::mk::emu::detail::collective(::mk::emu::detail::kAny, m, pred != 0));
}
inline int __all_sync(unsigned m, int pred) {
  return static_cast<int>(::mk::emu::detail::collective(::mk::emu::detail::kAll, m, pred != 0));
}

#define MK_EMU_MATCH(T)                                                                  \
  inline unsigned __match_any_sync(unsigned m, T v) {                                    \
    return ::mk::emu::detail::match<T>(::mk::emu::detail::kMatchAny, m, v);              \
  }                                                                                       \
  inline unsigned __match_all_sync(unsigned m, T v, int* pred) {                         \
    ::mk::emu::detail::Collective c;                                                     \
    c.op = sizeof(T) > 4 ? ::mk::emu::detail::kMatchAll64 : ::mk::emu::detail::kMatchAll; \
    c.mask = m;                                                                           \
    c.value = ::mk::emu::detail::to_bits(v);                                              \
    ::mk::emu::detail::warp_collective(c);                                                \
    *pred = c.pred;                                                                       \
    return static_cast<unsigned>(c.result);                                               \
  }
MK_EMU_MATCH(int)
MK_EMU_MATCH(unsigned)
MK_EMU_MATCH(long)
MK_EMU_MATCH(unsigned long)
MK_EMU_MATCH(long long)
MK_EMU_MATCH(unsigned long long)
MK_EMU_MATCH(float)
MK_EMU_MATCH(double)
#undef MK_EMU_MATCH

// sm_80 warp reductions (32-bit).
inline unsigned __reduce_add_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceAddU, m, v)); }
inline int __reduce_add_sync(unsigned m, int v) { return static_cast<int>(::mk::emu::detail::collective(::mk::emu::detail::kReduceAddU, m, static_cast<unsigned>(v))); }
inline unsigned __reduce_min_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceMinU, m, v)); }
inline int __reduce_min_sync(unsigned m, int v) { return static_cast<int>(::mk::emu::detail::collective(::mk::emu::detail::kReduceMinI, m, static_cast<unsigned>(v))); }
inline unsigned __reduce_max_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceMaxU, m, v)); }
inline int __reduce_max_sync(unsigned m, int v) { return static_cast<int>(::mk::emu::detail::collective(::mk::emu::detail::kReduceMaxI, m, static_cast<unsigned>(v))); }
inline unsigned __reduce_and_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceAnd, m, v)); }
inline unsigned __reduce_or_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceOr, m, v)); }
inline unsigned __reduce_xor_sync(unsigned m, unsigned v) { return static_cast<unsigned>(::mk::emu::detail::collective(::mk::emu::detail::kReduceXor, m, v)); }

// ---- atomics ------------------------------------------------------------------------------------
// Plain read-modify-writes: the fibers of a block run cooperatively on one OS thread and switch only
// at barriers and warp collectives, and blocks run one after another, so nothing can interleave
// with an atomic. (The emulator's device lock keeps launches from several host threads apart.)
#define MK_EMU_ATOMIC(NAME, T, EXPR)   \
  inline T NAME(T* a, T v) {           \
    const T old = *a;                  \
    *a = (EXPR);                       \
    return old;                        \
  }
MK_EMU_ATOMIC(atomicAdd, int, old + v)
MK_EMU_ATOMIC(atomicAdd, unsigned, old + v)
MK_EMU_ATOMIC(atomicAdd, unsigned long long, old + v)
MK_EMU_ATOMIC(atomicAdd, float, old + v)
MK_EMU_ATOMIC(atomicAdd, double, old + v)
MK_EMU_ATOMIC(atomicSub, int, old - v)
MK_EMU_ATOMIC(atomicSub, unsigned, old - v)
MK_EMU_ATOMIC(atomicExch, int, v)
MK_EMU_ATOMIC(atomicExch, unsigned, v)
MK_EMU_ATOMIC(atomicExch, unsigned long long, v)
MK_EMU_ATOMIC(atomicExch, float, v)
MK_EMU_ATOMIC(atomicMin, int, v < old ? v : old)
MK_EMU_ATOMIC(atomicMin, unsigned, v < old ? v : old)
MK_EMU_ATOMIC(atomicMin, long long, v < old ? v : old)
MK_EMU_ATOMIC(atomicMin, unsigned long long, v < old ? v : old)
MK_EMU_ATOMIC(atomicMax, int, v > old ? v : old)
MK_EMU_ATOMIC(atomicMax, unsigned, v > old ? v : old)
MK_EMU_ATOMIC(atomicMax, long long, v > old ? v : old)
MK_EMU_ATOMIC(atomicMax, unsigned long long, v > old ? v : old)
MK_EMU_ATOMIC(atomicAnd, int, old & v)
MK_EMU_ATOMIC(atomicAnd, unsigned, old & v)
MK_EMU_ATOMIC(atomicAnd, unsigned long long, old & v)
MK_EMU_ATOMIC(atomicOr, int, old | v)
MK_EMU_ATOMIC(atomicOr, unsigned, old | v)
MK_EMU_ATOMIC(atomicOr, unsigned long long, old | v)
MK_EMU_ATOMIC(atomicXor, int, old ^ v)
MK_EMU_ATOMIC(atomicXor, unsigned, old ^ v)
MK_EMU_ATOMIC(atomicXor, unsigned long long, old ^ v)
MK_EMU_ATOMIC(atomicInc, unsigned, old >= v ? 0u : old + 1u)
MK_EMU_ATOMIC(atomicDec, unsigned, (old == 0u || old > v) ? v : old - 1u)
#undef MK_EMU_ATOMIC
#define MK_EMU_CAS(T)                    \
  inline T atomicCAS(T* a, T cmp, T v) { \
    const T old = *a;                    \
    if (old == cmp) *a = v;              \
    return old;                          \
  }
MK_EMU_CAS(int)
MK_EMU_CAS(unsigned)
MK_EMU_CAS(unsigned long long)
MK_EMU_CAS(unsigned short)
#undef MK_EMU_CAS
// Scoped forms: every scope is the same here.
#define MK_EMU_SCOPED(NAME)                                                                     \
  template <class... A>                                                                          \
  inline auto NAME##_block(A... a) -> decltype(NAME(a...)) { return NAME(a...); }                \
  template <class... A>                                                                          \
  inline auto NAME##_system(A... a) -> decltype(NAME(a...)) { return NAME(a...); }
MK_EMU_SCOPED(atomicAdd)
MK_EMU_SCOPED(atomicSub)
MK_EMU_SCOPED(atomicExch)
MK_EMU_SCOPED(atomicMin)
MK_EMU_SCOPED(atomicMax)
MK_EMU_SCOPED(atomicAnd)
MK_EMU_SCOPED(atomicOr)
MK_EMU_SCOPED(atomicXor)
MK_EMU_SCOPED(atomicCAS)
#undef MK_EMU_SCOPED

// ---- bit and reinterpretation intrinsics --------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x ? __builtin_clz(static_cast<unsigned>(x)) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll(static_cast<unsigned long long>(x)) : 64; }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t v = (static_cast<uint64_t>(y) << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<unsigned>((v >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32); }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<int64_t>(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline unsigned __float_as_uint(float v) { return ::mk::emu::detail::from_bits<unsigned>(::mk::emu::detail::to_bits(v)); }
inline float __uint_as_float(unsigned v) { return ::mk::emu::detail::from_bits<float>(v); }
inline int __float_as_int(float v) { return ::mk::emu::detail::from_bits<int>(::mk::emu::detail::to_bits(v)); }
inline float __int_as_float(int v) { return ::mk::emu::detail::from_bits<float>(static_cast<unsigned>(v)); }
inline long long __double_as_longlong(double v) { return ::mk::emu::detail::from_bits<long long>(::mk::emu::detail::to_bits(v)); }
inline double __longlong_as_double(long long v) { return ::mk::emu::detail::from_bits<double>(static_cast<uint64_t>(v)); }

// Cache-hinted loads and stores are plain accesses.
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

// ---- math ---------------------------------------------------------------------------------------
// expf, log1pf, erfcf, exp2f, fmaf, rintf, ldexpf, sqrtf, fmaxf, ... are the host libm's (results
// may differ from CUDA's by an ulp or so). CUDA-only names:
#if !defined(__GLIBC__) || __GLIBC__ < 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ < 41)
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
#endif
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0
inline int __float2int_rz(float x) {  // saturating, NaN -> 0, as the GPU
  return x != x ? 0 : x >= 2147483648.0f ? 2147483647 : x <= -2147483648.0f ? (-2147483647 - 1) : static_cast<int>(x);
}
inline int __float2int_rn(float x) { return __float2int_rz(nearbyintf(x)); }

// CUDA's integer and floating min/max overloads (global functions in device code).
#define MK_EMU_MINMAX(R, A, B)                                   \
  inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
  inline R max(A a, B b) { return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); }
MK_EMU_MINMAX(int, int, int)
MK_EMU_MINMAX(unsigned, unsigned, unsigned)
MK_EMU_MINMAX(unsigned, int, unsigned)
MK_EMU_MINMAX(unsigned, unsigned, int)
MK_EMU_MINMAX(long, long, long)
MK_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
MK_EMU_MINMAX(long long, long long, long long)
MK_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
MK_EMU_MINMAX(unsigned long long, long long, unsigned long long)
MK_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef MK_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

#include "wmma.h"
