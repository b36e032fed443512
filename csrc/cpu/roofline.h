// Machine ceilings for the benchmarks (not used by models): streaming-read bandwidth, f32 FMA peak,
// and a naive GEMM to compare the real one with.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mk::cpu {

// Best-of-5 read bandwidth in GB/s over a `bytes` buffer, all pool threads, vector loads.
double stream_read_gbs(size_t bytes);
// f32 FMA peak in GFLOP/s on all pool threads (independent register FMAs, no memory traffic).
double fma_peak_gflops();
// bf16 dot-product (VDPBF16PS) peak in GFLOP/s on all pool threads; 0 where the bf16 GEMM does not
// use it (no AVX512-BF16, or MAMBAKIT_NO_AVX512BF16=1).
double bf16_dot_peak_gflops();
// y[M, N] = x[M, K] · W[N, K]^T, one thread, a plain triple loop: the baseline a GEMM must beat.
void naive_gemm(const float* x, const float* w, float* y, int64_t M, int64_t N, int64_t K);

}  // namespace mk::cpu
