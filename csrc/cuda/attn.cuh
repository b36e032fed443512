// Launchers of the attention kernels on CUDA: the same functions as cpu/attn.h on device pointers,
// plus the device's stream (a cudaStream_t passed as void*). Arguments, layouts and limits:
// core/attn.h. Each checks its sizes (E_ARG) before launching and returns the launch status.
#pragma once
#include "core/attn.h"

namespace mk::cuda {

Status attention(const AttnArgs& a, void* stream);  // attention.cu
Status rope_kv(const RopeArgs& a, void* stream);    // attention.cu

}  // namespace mk::cuda
