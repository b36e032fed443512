// Mamba-1 block kernels on the CPU: the causal conv1d (+ SiLU) and the selective scan, on host
// pointers. Arguments, layouts and limits: core/ssm.h (callers check scan_can_run / conv_can_run).
#pragma once
#include <cstdint>

#include "core/ssm.h"

namespace mk::cpu {

void causal_conv1d(const ConvArgs& a);
void selective_scan(const ScanArgs& a);

// ---- private to cpu/scan.cc, cpu/conv1d.cc, cpu/ssm_avx2.cc ----
namespace detail {

constexpr int64_t kSsmBlock = 16;  // channels per work item: one 64-byte cache line of a row

// True when the AVX2/FMA/F16C path is used (CPU support, and MAMBAKIT_FORCE_SCALAR != "1";
// read once).
bool ssm_use_avx2();

// One work item: channels [e0, e0 + ne) with 1 <= ne <= kSsmBlock, all T tokens, of batch row b
// (scan) or of batch rows [b0, b1) (conv, which loads its weights once for all of them).
void scan_block_avx2(const ScanArgs& a, int64_t b, int64_t e0, int64_t ne);
void conv_block_avx2(const ConvArgs& a, int64_t b0, int64_t b1, int64_t e0, int64_t ne);

}  // namespace detail
}  // namespace mk::cpu
