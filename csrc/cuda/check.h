// Turning CUDA runtime errors into mk::Status. Native code never aborts: a failing call returns a
// Status (E_OOM for allocation failures, E_CUDA otherwise) naming the call, the CUDA error and the
// source location.
//
// A failed runtime call also leaves its error in the thread's "last error" slot, where a later
// cudaGetLastError() (used after kernel launches) would report it again against an unrelated
// kernel. So every failure seen here is consumed with cudaGetLastError(). Sticky errors (a kernel
// fault that corrupted the context) cannot be cleared and keep failing every later call, which is
// the correct behavior.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "core/status.h"

namespace mk::cuda {

inline Code code_of(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? Code::OOM : Code::CUDA;
}

inline Status cuda_status(cudaError_t e, const char* what, const char* file, int line) {
  (void)cudaGetLastError();  // consume it so it is not reported again after a later launch
  return make_error(code_of(e), std::string(what) + " failed: " + cudaGetErrorString(e) + " (" +
                                    cudaGetErrorName(e) + ") at " + file + ":" +
                                    std::to_string(line));
}

// After a kernel launch: the launch configuration error (if any) as a Status naming the op.
inline Status check_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return Status::Ok();
  return make_error(code_of(e), std::string(op) + ": CUDA kernel launch failed: " +
                                    cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}

}  // namespace mk::cuda

// Evaluates `expr` (a cudaError_t); on failure returns the error Status from the caller.
#define MK_CUDA_CHECK(expr)                                                     \
  do {                                                                          \
    cudaError_t _mk_cuda_err = (expr);                                          \
    if (_mk_cuda_err != cudaSuccess)                                            \
      return ::mk::cuda::cuda_status(_mk_cuda_err, #expr, __FILE__, __LINE__);  \
  } while (0)
