#include "core/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace mk {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures r;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    r.avx2 = __builtin_cpu_supports("avx2");
    r.fma = __builtin_cpu_supports("fma");
    r.f16c = __builtin_cpu_supports("f16c");
    r.avx512f = __builtin_cpu_supports("avx512f");
    r.avx512bw = __builtin_cpu_supports("avx512bw");
    r.avx512vl = __builtin_cpu_supports("avx512vl");
    r.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    return r;
  }();
  return f;
}

bool use_avx2_kernels() {
  static const bool v = [] {
    const char* e = std::getenv("MAMBAKIT_FORCE_SCALAR");
    const bool force_scalar = e && std::strcmp(e, "1") == 0;
    return !force_scalar && cpu_features().has_avx2_fma_f16c();
  }();
  return v;
}

bool use_avx512bf16_kernels() {
  static const bool v = [] {
    const char* e = std::getenv("MAMBAKIT_NO_AVX512BF16");
    const bool off = e && std::strcmp(e, "1") == 0;
    const CpuFeatures& f = cpu_features();
    return !off && use_avx2_kernels() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16;
  }();
  return v;
}

std::string CpuFeatures::str() const {
  std::string s;
  auto add = [&](bool on, const char* n) { if (on) s += (s.empty() ? "" : " ") + std::string(n); };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bf16 && avx512bw && avx512vl, "avx512bf16");
  return s.empty() ? "baseline" : s;
}

}  // namespace mk
