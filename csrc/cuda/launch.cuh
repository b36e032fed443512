// The one way a kernel is launched, for both compilers: nvcc uses <<< >>>; the emulator build
// (MAMBAKIT_CUDA_EMU, csrc/emu/) runs the same kernel function on the CPU under its SIMT emulator.
// Arguments are converted to the kernel's parameter types here, as a launch would.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace mk::cuda {

template <typename... P, typename... A>
inline void launch_kernel(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                   A&&... args) {
#ifdef MAMBAKIT_CUDA_EMU
  ::mk::emu::launch(name, kernel, grid, block, smem, s, static_cast<P>(args)...);
#else
  (void)name;
  kernel<<<grid, block, smem, s>>>(static_cast<P>(args)...);
#endif
}

}  // namespace mk::cuda
