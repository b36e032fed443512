// Shapes of MambaOut's image kernels, shared by the CPU and CUDA kernels, the op table and the plans.
#pragma once
#include <cstdint>

namespace mk {

// Output size of a 3x3 stride-2 pad-1 conv: floor((n - 1) / 2) + 1.
inline int64_t conv_s2_out(int64_t n) { return (n + 1) / 2; }

}  // namespace mk
