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

// Dynamic shared memory inside a kernel (`smem` bytes of the launch). nvcc: extern __shared__; the
// emulator: this launch's buffer (256-byte aligned, 0xFF-filled per block, ASan-checked at its end).
#ifdef MAMBAKIT_CUDA_EMU
#define MK_DYNAMIC_SHARED(type, name) type* const name = static_cast<type*>(::mk::emu::detail::g_cur.dyn_smem)
#else
#define MK_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif
