// Devices and the small backend interface to the CUDA runtime. The interface is implemented by
// cuda/runtime.cu when the addon is built with CUDA, and by core/cuda_stub.cc otherwise, so the
// rest of the code (and the JS surface) is the same on every build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace mk {

enum class DeviceType : int { CPU = 0, CUDA = 1 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cuda() ? "cuda:" + std::to_string(index) : "cpu"; }
};

namespace gpu {

struct Props {
  std::string name;
  size_t total_memory = 0;
  int major = 0, minor = 0, multiprocessors = 0;
};

bool compiled();                 // was the addon built with CUDA
int device_count();              // 0 when there is no driver or no GPU (never an error)

// What the binary holds and whether CUDA is usable in this process, for info(): one probe, once.
struct Availability {
  // "ok", "emulated" (the SIMT emulator build), "not-compiled", "no-driver", "no-device",
  // "driver-too-old" or "error"
  std::string status;
  std::string reason;       // one sentence for people; empty when usable
  std::string archs;        // code compiled in, nvcc names, comma-separated: "sm_80,...,compute_90"
  int runtime_version = 0;  // the CUDA runtime linked in (CUDART_VERSION: 13000 = 13.0); 0 without CUDA
  int driver_version = 0;   // the installed driver's CUDA version (cuDriverGetVersion); 0 when none
};
const Availability& availability();
// 13000 -> "13.0" (CUDA's version encoding); 0 -> "".
inline std::string cuda_version_name(int v) {
  return v ? std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10) : std::string();
}
Status props(int dev, Props* out);
Status check_device(int dev);    // E_DEVICE unless `dev` is a usable GPU
Status raw_malloc(int dev, size_t bytes, void** out);  // E_OOM on failure
void raw_free(int dev, void* p);
// Copies on the device's stream; host<->device copies return when the host buffer may be reused.
Status copy_h2d(int dev, void* dst, const void* src, size_t bytes);
Status copy_d2h(int dev, void* dst, const void* src, size_t bytes);
Status copy_d2d(int dev, void* dst, const void* src, size_t bytes);
Status memset_zero(int dev, void* dst, size_t bytes);  // stream-ordered cudaMemsetAsync
Status synchronize(int dev);
void* stream(int dev);           // the device's cudaStream_t (one stream per device)
Status last_launch_error(const char* op);  // cudaGetLastError after a launch, as a Status

// CUDA graphs (decode plans): everything queued on the device's stream between capture_begin and
// capture_end becomes one graph, replayed by graph_launch on the same stream.
Status capture_begin(int dev);
Status capture_end(int dev, void** exec);  // an instantiated cudaGraphExec_t
Status graph_launch(int dev, void* exec);
void graph_destroy(void* exec);

}  // namespace gpu
}  // namespace mk
