// Activation ids shared by host and device code, the op table and the model configs: one table,
// so a name in a config.json, an op attribute and a kernel epilogue mean the same function.
#pragma once
#include <cstring>

namespace mk {

// Fused into GEMM epilogues (NONE..SILU) and named in configs. SWIGLU is a gated pair, not an
// epilogue: silu(gate) * up over a [gate | up] row (the plans run it as its own kernel).
enum class Act : int { NONE = 0, RELU = 1, GELU = 2, SILU = 3, SWIGLU = 4 };
constexpr int kNumActs = 5;
constexpr const char* kActNames[kNumActs] = {"none", "relu", "gelu", "silu", "swiglu"};

inline const char* act_name(Act a) { return kActNames[static_cast<int>(a)]; }
inline bool act_from_name(const char* s, Act* out) {
  for (int i = 0; i < kNumActs; ++i)
    if (std::strcmp(s, kActNames[i]) == 0) { *out = static_cast<Act>(i); return true; }
  return false;
}
// An activation a GEMM epilogue can apply per element.
inline bool act_is_epilogue(Act a) { return static_cast<int>(a) >= 0 && static_cast<int>(a) <= 3; }

// Elementwise unary ops of the op table (silu, softplus, gelu-erf).
enum class Unary : int { SILU = 0, SOFTPLUS = 1, GELU = 2 };

}  // namespace mk
