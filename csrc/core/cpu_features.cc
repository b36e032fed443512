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

std::string CpuFeatures::str() const {
  std::string s;
  auto add = [&](bool on, const char* n) { if (on) s += (s.empty() ? "" : " ") + std::string(n); };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  return s.empty() ? "baseline" : s;
}

}  // namespace mk
