// CPU token sampling; the definition (order of operations, RNG) is in core/sample.h.
#pragma once
#include <cstdint>

#include "core/sample.h"

namespace mk::cpu {

// logits f32 [B, V]; prev i32 [B, P] or null (P = 0); ids i32 [B]; logprob f32 [B].
void sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, int64_t B,
            int64_t V, int64_t P, const SampleParams& p);
}  // namespace mk::cpu
