// Launchers of MAGVIT-v2's image kernels (NHWC f32; definitions in core/magvit.h and cpu/magvit.h), on
// device pointers and the device's stream. Each checks its sizes before launching and returns the
// launch status.
#pragma once
#include <cstdint>

#include "core/magvit.h"
#include "core/status.h"

namespace mk::cuda {

Status conv2d(const Conv2dArgs& a, void* stream);
Status group_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t B, int64_t P, int64_t C,
                  int64_t G, float eps, bool silu, void* stream);
Status upsample2x(const float* x, float* y, int64_t B, int64_t H, int64_t W, int64_t C, void* stream);
// scratch: spatial_attn_scratch(B, P, C) floats (the scores [B, P, P]).
Status spatial_attn(const float* q, const float* k, const float* v, int64_t ld, float* o, int64_t ldo, float* scratch,
                    int64_t B, int64_t P, int64_t C, float scale, void* stream);
Status lfq_encode(const float* z, int64_t ldz, int64_t rows, int64_t D, int32_t* codes, float* codes_f, void* stream);
// A code outside [0, 2^D) zero-fills its row and sets *bad_flag (a device int32 the caller zeroed) to 1.
Status lfq_decode(const int32_t* codes, int64_t rows, int64_t D, float* z, int32_t* bad_flag, void* stream);

}  // namespace mk::cuda
