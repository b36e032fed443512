// Run-time CPU feature detection. The addon is compiled for the x86-64 baseline; hot loops pick an
// AVX2/FMA/F16C path when the CPU has it.
#pragma once
#include <string>

namespace mk {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false;
  bool has_avx2_fma_f16c() const { return avx2 && fma && f16c; }
  std::string str() const;  // "avx2 fma f16c"
};

const CpuFeatures& cpu_features();

// Whether the hot loops take their AVX2/FMA/F16C paths: the CPU has them and MAMBAKIT_FORCE_SCALAR
// is not "1" (read once; the tests use it to exercise the portable paths).
bool use_avx2_kernels();

}  // namespace mk
