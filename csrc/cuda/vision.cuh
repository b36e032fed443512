// Launchers of MambaOut's image kernels (NHWC, f32): the same functions as cpu/vision.h, on device
// pointers and the device's stream. Each checks its sizes before launching and returns the launch status.
#pragma once
#include <cstdint>

#include "core/status.h"

namespace mk::cuda {

Status conv3x3s2(const float* x, const float* w, const float* bias, float* y, int64_t B, int64_t H, int64_t W,
                 int64_t Ci, int64_t Co, void* stream);
Status dwconv7(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t ldy, int64_t B,
               int64_t H, int64_t W, int64_t C, void* stream);
Status gelu_gate(const float* a, int64_t lda, const float* b, int64_t ldb, float* y, int64_t ldy, int64_t rows,
                 int64_t n, void* stream);
Status mean_pool(const float* x, float* y, int64_t B, int64_t P, int64_t C, void* stream);

}  // namespace mk::cuda
