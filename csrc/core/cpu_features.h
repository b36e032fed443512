// Run-time CPU feature detection. The addon is compiled for the x86-64 baseline; hot loops pick an
// AVX2/FMA/F16C path when the CPU has it.
#pragma once
#include <string>

namespace mk {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false;
  bool avx512bw = false, avx512vl = false, avx512bf16 = false;
  bool has_avx2_fma_f16c() const { return avx2 && fma && f16c; }
  std::string str() const;  // "avx2 fma f16c"
};

const CpuFeatures& cpu_features();

// Whether the hot loops take their AVX2/FMA/F16C paths: the CPU has them and MAMBAKIT_FORCE_SCALAR
// is not "1" (read once; the tests use it to exercise the portable paths).
bool use_avx2_kernels();

// Whether bf16-weight GEMMs round x to bf16 and, above 4 rows, take the AVX512-BF16 path (f32
// accumulation): the CPU has AVX512 F/BW/VL/BF16, the AVX2 paths are on, and
// MAMBAKIT_NO_AVX512BF16 is not "1" (the tests use it to exercise the AVX2 path on such CPUs).
bool use_avx512bf16_kernels();

}  // namespace mk
