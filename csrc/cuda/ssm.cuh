// Launchers of the Mamba-1 kernels on CUDA: the same functions as cpu/ssm.h on device pointers, plus
// the device's stream (a cudaStream_t passed as void*). Arguments, layouts and limits: core/ssm.h.
// Each checks its sizes (E_ARG) before launching and returns the launch status.
#pragma once
#include "core/ssm.h"

namespace mk::cuda {

Status causal_conv1d(const ConvArgs& a, void* stream);  // conv1d.cu
Status selective_scan(const ScanArgs& a, void* stream);  // scan.cu

}  // namespace mk::cuda
