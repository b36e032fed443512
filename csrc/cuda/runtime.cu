// The CUDA build's implementation of the mk::gpu backend interface (core/device.h); the CPU-only
// build uses core/cuda_stub.cc instead. Same functions, same semantics.
//
// Threading model: every device gets one non-blocking stream, created on first use. All work for a
// device (copies and kernels) goes to that stream, so it executes in submission order. The CUDA
// "current device" is per host thread, so every entry point that touches a device first calls
// cudaSetDevice(dev) — including stream(dev), so a kernel launched right after stream(dev) on the
// same thread targets the right GPU.
#include <cuda_runtime.h>
#ifndef MAMBAKIT_CUDA_EMU
#include <dlfcn.h>
#endif

#include <mutex>
#include <string>

#include "core/device.h"
#include "cuda/check.h"

namespace mk::gpu {
namespace {

constexpr int kMaxDevices = 64;  // more GPUs than this in one process are not addressable

// The code compiled in, from CMake's CUDA architecture list (CMakeLists.txt passes it to this file).
#ifndef MAMBAKIT_CUDA_ARCH_NAMES
#define MAMBAKIT_CUDA_ARCH_NAMES ""
#endif

// The driver's CUDA version, read from libcuda itself: the static runtime reports a missing driver and
// an old one with the same error (cudaErrorInsufficientDriver), which says nothing a user can act on.
int driver_version(std::string* why_missing) {
#ifdef MAMBAKIT_CUDA_EMU
  (void)why_missing;
  return CUDART_VERSION;
#else
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    *why_missing = e ? e : "libcuda.so.1 not found";
    return 0;
  }
  using GetVersion = int (*)(int*);
  auto get = reinterpret_cast<GetVersion>(dlsym(lib, "cuDriverGetVersion"));
  int v = 0;
  if (get == nullptr || get(&v) != 0) {
    *why_missing = "libcuda.so.1 has no working cuDriverGetVersion";
    v = 0;
  }
  dlclose(lib);  // the runtime holds its own reference when it uses the driver
  return v;
#endif
}

struct Probe {
  int count = 0;
  Availability availability;
};

// One cudaGetDeviceCount, classified. Never an error: no GPU only means the CPU path runs.
Probe probe() {
  Probe p;
  Availability& a = p.availability;
  a.archs = MAMBAKIT_CUDA_ARCH_NAMES;
  a.runtime_version = CUDART_VERSION;
  std::string missing;
  a.driver_version = driver_version(&missing);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) (void)cudaGetLastError();
  if (e == cudaSuccess && n > 0) {
    p.count = n < kMaxDevices ? n : kMaxDevices;
#ifdef MAMBAKIT_CUDA_EMU
    a.status = "emulated";
    a.reason = "the CUDA backend runs on the CPU under the SIMT emulator (a test build)";
#else
    a.status = "ok";
#endif
  } else if (a.driver_version == 0) {
    a.status = "no-driver";
    a.reason = "no NVIDIA driver (" + missing + ")";
  } else if (a.driver_version / 1000 < CUDART_VERSION / 1000 || e == cudaErrorInsufficientDriver ||
             e == cudaErrorCallRequiresNewerDriver) {
    a.status = "driver-too-old";
    a.reason = "the driver supports CUDA " + cuda_version_name(a.driver_version) + "; this binary needs CUDA " +
               cuda_version_name(CUDART_VERSION / 1000 * 1000) + " or newer" +
               (e == cudaSuccess ? "" : std::string(" (") + cudaGetErrorName(e) + ")");
  } else if (e == cudaErrorNoDevice || (e == cudaSuccess && n <= 0)) {
    a.status = "no-device";
    a.reason = "the driver (CUDA " + cuda_version_name(a.driver_version) + ") sees no GPU";
  } else {
    a.status = "error";
    a.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  }
  return p;
}

const Probe& the_probe() {
  static const Probe p = probe();  // thread-safe one-time initialization
  return p;
}

struct StreamSlot {
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cudaError_t error = cudaSuccess;  // why creation failed (the stream is then never created)
};
StreamSlot g_streams[kMaxDevices];
// Held from capture_begin to capture_end, and by every copy: a copy issued from another thread (the
// JS thread's Tensor.from) must neither land inside a graph being captured nor sync a capturing stream.
std::mutex g_capture_mu[kMaxDevices];

// The device's stream, created once. On failure the slot keeps the error: copies report it, and
// stream() returns nullptr (the legacy default stream), on which launches will fail the same way.
StreamSlot& slot(int dev) {
  StreamSlot& s = g_streams[dev];
  std::call_once(s.once, [&s, dev] {
    cudaError_t e = cudaSetDevice(dev);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      s.stream = nullptr;
      s.error = e;
    }
  });
  return s;
}

// Validates `dev`, makes it current on this thread and returns its stream.
Status enter(int dev, cudaStream_t* out) {
  MK_RETURN_IF_ERROR(check_device(dev));
  MK_CUDA_CHECK(cudaSetDevice(dev));
  StreamSlot& s = slot(dev);
  if (s.error != cudaSuccess)
    return cuda::cuda_status(s.error, "cudaStreamCreateWithFlags", __FILE__, __LINE__);
  *out = s.stream;
  return Status::Ok();
}

Status copy(int dev, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, bool sync) {
  if (bytes == 0) return Status::Ok();
  if (dst == nullptr || src == nullptr)
    return make_error(Code::ARG, "copy of " + std::to_string(bytes) + " bytes with a null pointer");
  cudaStream_t s = nullptr;
  MK_RETURN_IF_ERROR(enter(dev, &s));
  std::lock_guard<std::mutex> lk(g_capture_mu[dev]);
  MK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  // Host<->device copies wait, so the host buffer may be reused (or read) when they return.
  if (sync) MK_CUDA_CHECK(cudaStreamSynchronize(s));
  return Status::Ok();
}

}  // namespace

bool compiled() { return true; }

int device_count() { return the_probe().count; }

const Availability& availability() { return the_probe().availability; }

Status check_device(int dev) {
  const int n = device_count();
  if (dev >= 0 && dev < n) return Status::Ok();
  return make_error(Code::DEVICE, "no CUDA device cuda:" + std::to_string(dev) + "; found " +
                                      std::to_string(n) + (n == 1 ? " GPU" : " GPUs"));
}

Status props(int dev, Props* out) {
  MK_RETURN_IF_ERROR(check_device(dev));
  cudaDeviceProp p;
  MK_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  out->name = p.name;
  out->total_memory = p.totalGlobalMem;
  out->major = p.major;
  out->minor = p.minor;
  out->multiprocessors = p.multiProcessorCount;
  return Status::Ok();
}

Status raw_malloc(int dev, size_t bytes, void** out) {
  *out = nullptr;
  MK_RETURN_IF_ERROR(check_device(dev));
  MK_CUDA_CHECK(cudaSetDevice(dev));
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);  // never hand out null for 0 bytes
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
      return make_error(Code::OOM, "out of GPU memory: cannot allocate " + std::to_string(bytes) +
                                       " bytes on cuda:" + std::to_string(dev));
    return cuda::cuda_status(e, "cudaMalloc", __FILE__, __LINE__);
  }
  *out = p;
  return Status::Ok();
}

void raw_free(int dev, void* p) {
  if (p == nullptr || check_device(dev).code != Code::OK) return;
  if (cudaSetDevice(dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  // Kernels still queued on the device's stream may use `p`: drain the stream before freeing.
  StreamSlot& s = slot(dev);
  if (s.error == cudaSuccess && cudaStreamSynchronize(s.stream) != cudaSuccess)
    (void)cudaGetLastError();
  if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
}

Status copy_h2d(int dev, void* dst, const void* src, size_t bytes) {
  return copy(dev, dst, src, bytes, cudaMemcpyHostToDevice, true);
}

Status copy_d2h(int dev, void* dst, const void* src, size_t bytes) {
  return copy(dev, dst, src, bytes, cudaMemcpyDeviceToHost, true);
}

Status copy_d2d(int dev, void* dst, const void* src, size_t bytes) {
  return copy(dev, dst, src, bytes, cudaMemcpyDeviceToDevice, false);  // ordered on the stream
}

Status memset_zero(int dev, void* dst, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  cudaStream_t s = nullptr;
  MK_RETURN_IF_ERROR(enter(dev, &s));
  MK_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, s));
  return Status::Ok();
}

Status synchronize(int dev) {
  cudaStream_t s = nullptr;
  MK_RETURN_IF_ERROR(enter(dev, &s));
  MK_CUDA_CHECK(cudaStreamSynchronize(s));  // also surfaces faults of earlier kernels
  return Status::Ok();
}

void* stream(int dev) {
  if (check_device(dev).code != Code::OK) return nullptr;
  if (cudaSetDevice(dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return static_cast<void*>(slot(dev).stream);
}

Status last_launch_error(const char* op) { return cuda::check_launch(op ? op : "kernel"); }

// Relaxed mode: the capture must not be broken by another thread's legal calls (cudaMalloc from
// the JS thread's Tensor.from, for instance); everything captured is on this device's stream.
Status capture_begin(int dev) {
  cudaStream_t s = nullptr;
  MK_RETURN_IF_ERROR(enter(dev, &s));
  g_capture_mu[dev].lock();  // released by capture_end, which the caller always calls
  cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    g_capture_mu[dev].unlock();
    MK_CUDA_CHECK(e);
  }
  return Status::Ok();
}

Status capture_end(int dev, void** exec) {
  cudaStream_t s = static_cast<cudaStream_t>(stream(dev));  // valid: capture_begin succeeded on it
  cudaGraph_t graph = nullptr;
  cudaError_t ec = cudaStreamEndCapture(s, &graph);
  g_capture_mu[dev].unlock();
  MK_CUDA_CHECK(ec);
  cudaGraphExec_t ge = nullptr;
  cudaError_t e = cudaGraphInstantiate(&ge, graph, 0);
  cudaGraphDestroy(graph);
  MK_CUDA_CHECK(e);
  *exec = ge;
  return Status::Ok();
}

Status graph_launch(int dev, void* exec) {
  cudaStream_t s = nullptr;
  MK_RETURN_IF_ERROR(enter(dev, &s));
  MK_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), s));
  return Status::Ok();
}

void graph_destroy(void* exec) {
  if (exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

}  // namespace mk::gpu
