// AVX2/FMA exp shared by the CPU kernels' vector paths (the scan, the conv1d, MambaOut's GELU). Only
// for functions that carry MK_AVX2 and run after the run-time check use_avx2_kernels().
#pragma once
#include <immintrin.h>

#ifndef MK_AVX2
#define MK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MK_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#endif

namespace mk::cpu::detail {

constexpr float kLog2e = 1.4426950408889634f;

// 2^f for f in [-0.5, 0.5]: degree-6 relative-minimax polynomial, ~1.0e-7 max relative error in
// f32 evaluation (fitted with a Lawson/IRLS iteration on Chebyshev nodes).
MK_AVX2_INLINE __m256 exp2_poly(__m256 f) {
  __m256 p = _mm256_set1_ps(1.5356125368271023e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3398817973211408e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618427604436874e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5503327399492264e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022647738456726e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471824645996e-1f));
  return _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
}

// p * 2^n for p in [0.7, 1.42] and integral n in [-124, 127]: add n to the exponent field
// (stays a normal number, so no special cases).
MK_AVX2_INLINE __m256 scale_pow2(__m256 p, __m256 n) {
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

// e^x with a Cody-Waite reduction (full f32 accuracy for large |x|), clamped to [-86, 88].
MK_AVX2_INLINE __m256 exp_acc(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-86.f)), _mm256_set1_ps(88.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  return scale_pow2(exp2_poly(_mm256_mul_ps(r, _mm256_set1_ps(kLog2e))), n);
}

}  // namespace mk::cpu::detail
