// Launcher of the CUDA sampling kernel (see core/sample.h for the exact definition). Plain C++, so the
// op table can include it.
#pragma once
#include <cstdint>

#include "core/status.h"
#include "core/sample.h"

namespace mk::cuda {
// logits f32 [B, V]; prev i32 [B, P] or null; ids i32 [B]; logprob f32 [B]; scratch f32 [B, V]
// (device memory, overwritten). One block per row.
Status sample(const float* logits, const int32_t* prev, int32_t* ids, float* logprob, float* scratch,
              int64_t B, int64_t V, int64_t P, const SampleParams& p, void* stream);
}  // namespace mk::cuda
