// The CUDA runtime functions the addon calls, for the SIMT emulator (link this instead of libcudart).
//
// One emulated device (MAMBAKIT_EMU_DEVICES=N for N, 0 for none): "mambakit SIMT emulator (sm_90)",
// compute capability 9.0, 132 SMs, 1024 threads per block, 48 KiB shared memory per block (227 KiB
// opt-in), MAMBAKIT_EMU_MEM_MB of global memory (default 16 GiB). MAMBAKIT_EMU_ARCH=80|86|89
// emulates those targets' limits instead (opt-in shared memory 163/99/99 KiB, SM counts).
//  * Device memory is host memory from posix_memalign (256-byte aligned, so AddressSanitizer's heap
//    redzones catch kernels and copies running past an allocation), filled with 0xFF bytes: an
//    uninitialized float reads as NaN. Copies and memsets check that their device range lies inside
//    one live allocation and that the direction (kind) matches the pointers.
//  * Streams are FIFOs that are always drained: every operation runs synchronously, on the calling
//    thread, under one device lock (so work from several host threads is serialized in some order
//    the GPU could also have chosen).
//  * Stream capture records launches, device-to-device copies and memsets into a graph, replayed in
//    order by cudaGraphLaunch. As in the real runtime, synchronizing a capturing stream, a copy
//    between host and device memory on it (host memory is pageable here), the legacy stream while a
//    blocking stream captures, and "unsafe" calls (cudaMalloc, cudaFree, synchronous copies, device
//    sync) under a conflicting capture mode fail and invalidate the capture.
//  * Errors: every failing call sets the calling thread's last error. A kernel fault (divergent
//    barrier, warp mask mismatch, wmma misuse, __trap) is sticky, as a GPU fault is: every later
//    call returns it. cudaGetErrorString returns the standard text followed by the emulator's
//    detail (kernel, block, thread, what went wrong), so check.h's messages carry it.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "simt.h"

namespace {

using mk::emu::detail::KernelTask;

struct Node {
  enum Kind { Kernel, Copy, Set } kind = Kernel;
  std::shared_ptr<KernelTask> task;
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
  int value = 0;
};

}  // namespace

// The runtime's opaque handle types, defined here (no libcudart is linked).
struct CUstream_st {
  int device = 0;
  unsigned flags = 0;
  bool legacy = false;
  bool capturing = false, invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  std::vector<Node> graph;  // the capture so far
};
struct CUgraph_st {
  std::vector<Node> nodes;
};
struct CUgraphExec_st {
  std::vector<Node> nodes;
};

namespace {

constexpr size_t kSharedPerBlock = 48 * 1024;
constexpr int kMaxDevices = 8;

// The emulated target: MAMBAKIT_EMU_ARCH=90 (default), 89, 86 or 80. The limits that differ between
// them are the shared memory a block may opt into and the per-SM figures in the properties.
struct Arch {
  int sm, sms, threads_per_sm, blocks_per_sm;
  size_t optin, smem_per_sm, l2;
};
constexpr Arch kArchs[] = {
    {90, 132, 2048, 32, 227 * 1024, 228 * 1024, 50u << 20},  // H100 SXM
    {89, 142, 1536, 24, 99 * 1024, 100 * 1024, 96u << 20},   // L40S
    {86, 84, 1536, 16, 99 * 1024, 100 * 1024, 6u << 20},     // A40
    {80, 108, 2048, 32, 163 * 1024, 164 * 1024, 40u << 20},  // A100
};

struct DeviceConfig {
  int count = 1;
  size_t total_mem = size_t{16} << 30;
  bool trace = false;
  Arch arch = kArchs[0];
  DeviceConfig() {
    if (const char* s = std::getenv("MAMBAKIT_EMU_ARCH")) {
      bool found = false;
      for (const Arch& a : kArchs)
        if (std::atoi(s) == a.sm) arch = a, found = true;
      if (!found) std::fprintf(stderr, "mambakit emu: unknown MAMBAKIT_EMU_ARCH=%s (90, 89, 86 or 80), using 90\n", s);
    }
    if (const char* s = std::getenv("MAMBAKIT_EMU_DEVICES")) {
      const int v = std::atoi(s);
      count = v < 0 ? 0 : v > kMaxDevices ? kMaxDevices : v;
    }
    if (const char* s = std::getenv("MAMBAKIT_EMU_MEM_MB")) {
      const long long v = std::atoll(s);
      if (v > 0) total_mem = static_cast<size_t>(v) << 20;
    }
    if (const char* s = std::getenv("MAMBAKIT_EMU_TRACE")) trace = s[0] && s[0] != '0';
  }
};
const DeviceConfig& dev_cfg() {
  static const DeviceConfig c;  // thread-safe one-time initialization
  return c;
}

struct Alloc {
  size_t size;
  int device;
};

struct Runtime {
  std::mutex mu;    // the tables below
  std::mutex exec;  // device work runs one operation at a time (lock order: exec, then mu)
  std::map<uintptr_t, Alloc> allocs;
  size_t used = 0;
  std::unordered_set<CUstream_st*> streams;
  std::unordered_set<CUgraph_st*> graphs;
  std::unordered_set<CUgraphExec_st*> execs;
  CUstream_st legacy[kMaxDevices];
  std::atomic<int> sticky{cudaSuccess};
  std::string sticky_msg;
  std::deque<std::string> old_msgs;  // keeps earlier cudaGetErrorString pointers valid
  size_t dyn_smem_optin = kSharedPerBlock;  // the largest MaxDynamicSharedMemorySize set
  Runtime() {
    for (int d = 0; d < kMaxDevices; ++d) {
      legacy[d].device = d;
      legacy[d].legacy = true;
    }
  }
};
Runtime& rt() {
  static Runtime* r = new Runtime;  // never destroyed: usable from other static destructors
  return *r;
}

thread_local cudaError_t t_last = cudaSuccess;
thread_local int t_device = 0;
thread_local std::unordered_map<int, std::string> t_detail;  // code -> "text: detail" of its last error

const char* base_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorUnknown: return "unknown error";
    default: return "unrecognized error code";
  }
}

const char* base_name(cudaError_t e) {
  switch (e) {
#define N(x) case x: return #x;
    N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInitializationError)
    N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidDevicePointer) N(cudaErrorInvalidDeviceFunction) N(cudaErrorInvalidMemcpyDirection)
    N(cudaErrorNoDevice) N(cudaErrorInvalidDevice) N(cudaErrorInvalidResourceHandle) N(cudaErrorIllegalState)
    N(cudaErrorNotSupported) N(cudaErrorIllegalAddress) N(cudaErrorLaunchOutOfResources) N(cudaErrorAssert)
    N(cudaErrorMisalignedAddress) N(cudaErrorLaunchFailure) N(cudaErrorStreamCaptureUnsupported)
    N(cudaErrorStreamCaptureInvalidated) N(cudaErrorStreamCaptureImplicit) N(cudaErrorStreamCaptureWrongThread)
    N(cudaErrorUnknown)
#undef N
    default: return "cudaErrorUnknown";
  }
}

// Records e as the calling thread's last error, with an emulator detail for cudaGetErrorString.
cudaError_t fail(cudaError_t e, const std::string& detail = std::string()) {
  if (e == cudaSuccess) return e;
  t_last = e;
  const bool tagged = detail.rfind("[mambakit emu]", 0) == 0;
  t_detail[e] = detail.empty() ? std::string(base_text(e))
                               : std::string(base_text(e)) + (tagged ? ": " : ": [mambakit emu] ") + detail;
  return e;
}

cudaError_t sticky() { return static_cast<cudaError_t>(rt().sticky.load(std::memory_order_acquire)); }
cudaError_t fail_sticky() {
  const cudaError_t e = sticky();
  t_last = e;
  return e;
}

void set_sticky(cudaError_t e, const std::string& message) {
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (sticky() == cudaSuccess) {
      rt().sticky_msg = std::string(base_text(e)) + ": " + message;
      rt().sticky.store(e, std::memory_order_release);
    }
  }
  t_last = sticky();
}

// ---- memory -------------------------------------------------------------------------------------

// The live allocation containing [p, p + n), or null (caller holds mu).
const std::pair<const uintptr_t, Alloc>* find_alloc(const void* p, size_t n) {
  auto& m = rt().allocs;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return nullptr;
  --it;
  if (a - it->first >= it->second.size && !(a == it->first && it->second.size == 0)) return nullptr;
  if (n > it->second.size - (a - it->first)) return nullptr;
  return &*it;
}

std::string ptr_str(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

// Why [p, p + n) is not valid device memory ("" when it is). Caller holds mu.
std::string device_range_problem(const char* what, const void* p, size_t n) {
  if (find_alloc(p, n)) return std::string();
  if (const auto* a = find_alloc(p, 1))
    return std::string(what) + " range " + ptr_str(p) + " + " + std::to_string(n) + " bytes runs past the end of its allocation (" +
           ptr_str(reinterpret_cast<void*>(a->first)) + ", " + std::to_string(a->second.size) + " bytes)";
  return std::string(what) + " " + ptr_str(p) + " is not device memory (or was freed)";
}

// ---- streams and capture ------------------------------------------------------------------------

// The stream object of a handle; the legacy stream for 0 / cudaStreamLegacy / cudaStreamPerThread.
cudaError_t resolve(cudaStream_t s, CUstream_st** out) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) {
    *out = &rt().legacy[t_device];
    return cudaSuccess;
  }
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!rt().streams.count(s)) return fail(cudaErrorInvalidResourceHandle, "stream " + ptr_str(s) + " was never created or was destroyed");
  *out = s;
  return cudaSuccess;
}

void invalidate(CUstream_st* s) {
  if (s->capturing) s->invalidated = true;
}

// A potentially unsafe call (one that may synchronize implicitly) under the calling thread's
// default (global) capture interaction mode: prohibited while this thread has a non-relaxed capture
// in progress, or another thread a global-mode one. Those captures are invalidated. Caller holds mu.
cudaError_t check_unsafe_call(const char* call) {
  const auto me = std::this_thread::get_id();
  for (CUstream_st* s : rt().streams) {
    if (!s->capturing) continue;  // an invalidated capture still restricts until it ends
    const bool mine = s->capture_thread == me;
    if ((mine && s->mode != cudaStreamCaptureModeRelaxed) || (!mine && s->mode == cudaStreamCaptureModeGlobal)) {
      invalidate(s);
      return fail(cudaErrorStreamCaptureUnsupported,
                  std::string(call) + " while stream " + ptr_str(s) + " is capturing in " +
                      (s->mode == cudaStreamCaptureModeGlobal ? "global" : "thread-local") + " mode");
    }
  }
  return cudaSuccess;
}

// Work on the legacy stream waits for every blocking stream: not allowed while one captures.
cudaError_t check_legacy(CUstream_st* s) {
  if (!s->legacy) return cudaSuccess;
  for (CUstream_st* o : rt().streams)
    if (o->capturing && !(o->flags & cudaStreamNonBlocking)) {
      invalidate(o);
      return fail(cudaErrorStreamCaptureImplicit, "the legacy stream was used while blocking stream " + ptr_str(o) + " captures");
    }
  return cudaSuccess;
}

// ---- executing work -----------------------------------------------------------------------------

void trace_launch(const KernelTask& t, const char* how) {
  if (!dev_cfg().trace) return;
  std::fprintf(stderr, "mambakit emu: %s %s grid (%u, %u, %u) block (%u, %u, %u) smem %zu\n", how,
               t.name().c_str(), t.grid.x, t.grid.y, t.grid.z, t.block.x, t.block.y, t.block.z, t.smem);
}

// Runs a kernel now (caller holds exec). A kernel error becomes the sticky error.
cudaError_t exec_kernel(const KernelTask& t) {
  trace_launch(t, "run");
  std::string msg;
  const cudaError_t e = mk::emu::detail::run_kernel(t, &msg);
  if (e == cudaSuccess) return e;
  if (e == cudaErrorLaunchOutOfResources || e == cudaErrorMemoryAllocation) return fail(e, msg);  // not a fault
  set_sticky(e, msg);
  return e;
}

// Replays graph nodes (caller holds exec). Copies and memsets recheck their device ranges: memory
// freed since the capture is an illegal address.
cudaError_t exec_nodes(const std::vector<Node>& nodes) {
  for (const Node& n : nodes) {
    if (n.kind == Node::Kernel) {
      if (cudaError_t e = exec_kernel(*n.task)) return e;
      continue;
    }
    std::string why;
    {
      std::lock_guard<std::mutex> lk(rt().mu);
      why = device_range_problem("graph node destination", n.dst, n.bytes);
      if (why.empty() && n.kind == Node::Copy) why = device_range_problem("graph node source", n.src, n.bytes);
    }
    if (!why.empty()) {
      set_sticky(cudaErrorIllegalAddress, "[mambakit emu] " + why);
      return cudaErrorIllegalAddress;
    }
    if (n.kind == Node::Copy) std::memcpy(n.dst, n.src, n.bytes);
    else std::memset(n.dst, n.value, n.bytes);
  }
  return cudaSuccess;
}

// Enqueues `n` on stream s: recorded while s captures, else executed now.
cudaError_t enqueue(CUstream_st* s, Node n) {
  std::unique_lock<std::mutex> ex(rt().exec);
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (cudaError_t e = check_legacy(s)) return e;
    if (s->capturing) {
      if (n.kind == Node::Kernel) trace_launch(*n.task, "capture");
      s->graph.push_back(std::move(n));
      return cudaSuccess;
    }
  }
  return exec_nodes({std::move(n)});
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    default: return "cudaMemcpyDefault";
  }
}

cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
  if (sticky()) return fail_sticky();
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue, "copy of " + std::to_string(n) + " bytes with a null pointer");
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  bool dst_dev, src_dev;
  std::string why;
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    dst_dev = find_alloc(dst, 1) != nullptr;
    src_dev = find_alloc(src, 1) != nullptr;
    if (kind == cudaMemcpyDefault)
      kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                     : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    const bool want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (want_dst) why = device_range_problem("destination", dst, n);
    else if (dst_dev) why = std::string("destination ") + ptr_str(dst) + " is device memory";
    if (why.empty()) {
      if (want_src) why = device_range_problem("source", src, n);
      else if (src_dev) why = std::string("source ") + ptr_str(src) + " is device memory";
    }
    if (!why.empty()) return fail(cudaErrorInvalidValue, std::string(kind_name(kind)) + ": " + why);
    if (s->capturing && kind != cudaMemcpyDeviceToDevice) {
      invalidate(s);
      return fail(cudaErrorStreamCaptureUnsupported,
                  std::string(kind_name(kind)) + " of pageable host memory on a capturing stream");
    }
  }
  Node node;
  node.kind = Node::Copy;
  node.dst = dst;
  node.src = src;
  node.bytes = n;
  if (kind == cudaMemcpyHostToHost || kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToHost) {
    // Not capturable (checked above): runs now, in stream order (the stream is always drained).
    std::lock_guard<std::mutex> ex(rt().exec);
    {
      std::lock_guard<std::mutex> lk(rt().mu);
      if (cudaError_t e = check_legacy(s)) return e;
    }
    std::memcpy(dst, src, n);
    return cudaSuccess;
  }
  return enqueue(s, std::move(node));
}

cudaError_t set(void* dst, int value, size_t n, cudaStream_t stream) {
  if (sticky()) return fail_sticky();
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  if (n == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    const std::string why = device_range_problem("memset destination", dst, n);
    if (!why.empty()) return fail(cudaErrorInvalidValue, why);
  }
  Node node;
  node.kind = Node::Set;
  node.dst = dst;
  node.bytes = n;
  node.value = value & 0xFF;
  return enqueue(s, std::move(node));
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

}  // namespace

// ---- the emulator's hooks -----------------------------------------------------------------------

namespace mk::emu {

void clear_sticky_error() {
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!rt().sticky_msg.empty()) rt().old_msgs.push_back(std::move(rt().sticky_msg));
  rt().sticky_msg.clear();
  rt().sticky.store(cudaSuccess);
  t_last = cudaSuccess;
}

namespace detail {

void submit_kernel(std::shared_ptr<KernelTask> t, cudaStream_t stream) {
  if (in_kernel()) {
    fail(cudaErrorNotSupported, "kernel launch from device code (dynamic parallelism) is not emulated");
    return;
  }
  if (sticky()) {
    fail_sticky();
    return;
  }
  CUstream_st* s = nullptr;
  if (resolve(stream, &s) != cudaSuccess) return;
  const dim3 g = t->grid, b = t->block;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  std::string why;
  cudaError_t e = cudaErrorInvalidConfiguration;
  if (g.x == 0 || g.y == 0 || g.z == 0) why = "grid " + dims(g) + " has a zero dimension";
  else if (b.x == 0 || b.y == 0 || b.z == 0) why = "block " + dims(b) + " has a zero dimension";
  else if (threads > 1024) why = "block " + dims(b) + " has " + std::to_string(threads) + " threads, more than 1024";
  else if (b.z > 64) why = "block " + dims(b) + " exceeds the limits (1024, 1024, 64)";
  else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) why = "grid " + dims(g) + " exceeds the limits (2147483647, 65535, 65535)";
  else if (t->smem > kSharedPerBlock) {
    e = cudaErrorInvalidValue;
    std::lock_guard<std::mutex> lk(rt().mu);
    if (t->smem > dev_cfg().arch.optin)
      why = std::to_string(t->smem) + " bytes of dynamic shared memory, more than the " +
            std::to_string(dev_cfg().arch.optin) + " bytes of sm_" + std::to_string(dev_cfg().arch.sm);
    else if (t->smem > rt().dyn_smem_optin)
      why = std::to_string(t->smem) + " bytes of dynamic shared memory need cudaFuncSetAttribute(kernel, "
            "cudaFuncAttributeMaxDynamicSharedMemorySize, ...) first (the limit without it is 48 KiB)";
  }
  if (!why.empty()) {
    {
      std::lock_guard<std::mutex> lk(rt().mu);
      invalidate(s);  // a failed launch invalidates a capture in progress
    }
    fail(e, "launch of " + t->name() + " with grid " + dims(g) + ", block " + dims(b) + ": " + why);
    return;
  }
  Node n;
  n.kind = Node::Kernel;
  n.task = std::move(t);
  enqueue(s, std::move(n));
}

}  // namespace detail
}  // namespace mk::emu

// ---- the CUDA runtime API -----------------------------------------------------------------------

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = dev_cfg().count;
  if (*count == 0) return fail(cudaErrorNoDevice, "MAMBAKIT_EMU_DEVICES=0");
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
  if (!p) return fail(cudaErrorInvalidValue);
  if (dev < 0 || dev >= dev_cfg().count) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  const Arch& a = dev_cfg().arch;
  std::snprintf(p->name, sizeof p->name, "mambakit SIMT emulator (sm_%d)", a.sm);
  std::snprintf(p->uuid.bytes, sizeof p->uuid.bytes, "mkemu%d", dev);
  p->totalGlobalMem = dev_cfg().total_mem;
  p->sharedMemPerBlock = kSharedPerBlock;
  p->sharedMemPerBlockOptin = a.optin;
  p->sharedMemPerMultiprocessor = a.smem_per_sm;
  p->reservedSharedMemPerBlock = 1024;
  p->regsPerBlock = 65536;
  p->regsPerMultiprocessor = 65536;
  p->warpSize = 32;
  p->memPitch = 2147483647;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  p->major = a.sm / 10;
  p->minor = a.sm % 10;
  p->textureAlignment = 512;
  p->texturePitchAlignment = 32;
  p->multiProcessorCount = a.sms;
  p->maxThreadsPerMultiProcessor = a.threads_per_sm;
  p->maxBlocksPerMultiProcessor = a.blocks_per_sm;
  p->l2CacheSize = static_cast<int>(a.l2);
  p->memoryBusWidth = 5120;
  p->concurrentKernels = 1;
  p->unifiedAddressing = 1;
  p->pciBusID = dev + 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev) {
  if (dev < 0 || dev >= dev_cfg().count) return fail(cudaErrorInvalidDevice, "device " + std::to_string(dev) + " of " + std::to_string(dev_cfg().count));
  t_device = dev;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* dev) {
  if (!dev) return fail(cudaErrorInvalidValue);
  if (dev_cfg().count == 0) return fail(cudaErrorNoDevice);
  *dev = t_device;
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  if (sticky()) return sticky();
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return sticky() ? sticky() : t_last; }

const char* cudaGetErrorName(cudaError_t e) { return base_name(e); }

const char* cudaGetErrorString(cudaError_t e) {
  if (e != cudaSuccess && e == sticky()) {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (!rt().sticky_msg.empty()) return rt().sticky_msg.c_str();
  }
  auto it = t_detail.find(e);
  return it != t_detail.end() ? it->second.c_str() : base_text(e);
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue);
  *p = nullptr;
  if (sticky()) return fail_sticky();
  if (dev_cfg().count == 0) return fail(cudaErrorNoDevice);
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (cudaError_t e = check_unsafe_call("cudaMalloc")) return e;
    if (bytes == 0) return cudaSuccess;
    if (bytes > dev_cfg().total_mem - rt().used)
      return fail(cudaErrorMemoryAllocation, "cannot allocate " + std::to_string(bytes) + " bytes: " +
                                                 std::to_string(rt().used) + " of " + std::to_string(dev_cfg().total_mem) + " in use");
  }
  void* m = nullptr;
  if (posix_memalign(&m, 256, bytes) != 0 || !m)
    return fail(cudaErrorMemoryAllocation, "host allocation of " + std::to_string(bytes) + " bytes failed");
  std::memset(m, 0xFF, bytes);  // uninitialized device memory: NaN as f32, -1 as integers
  std::lock_guard<std::mutex> lk(rt().mu);
  rt().allocs[reinterpret_cast<uintptr_t>(m)] = Alloc{bytes, t_device};
  rt().used += bytes;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (sticky()) return fail_sticky();
  std::lock_guard<std::mutex> ex(rt().exec);  // cudaFree waits for the device
  std::lock_guard<std::mutex> lk(rt().mu);
  if (cudaError_t e = check_unsafe_call("cudaFree")) return e;
  auto it = rt().allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == rt().allocs.end())
    return fail(cudaErrorInvalidValue, "cudaFree(" + ptr_str(p) + "): not the start of a live device allocation");
  rt().used -= it->second.size;
  rt().allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  if (sticky()) return fail_sticky();
  std::lock_guard<std::mutex> lk(rt().mu);
  if (free_bytes) *free_bytes = dev_cfg().total_mem - rt().used;
  if (total) *total = dev_cfg().total_mem;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  return copy(dst, src, n, kind, s);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (cudaError_t e = check_unsafe_call("cudaMemcpy")) return e;
  }
  return copy(dst, src, n, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t n, cudaStream_t s) { return set(dst, value, n, s); }

cudaError_t cudaMemset(void* dst, int value, size_t n) {
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (cudaError_t e = check_unsafe_call("cudaMemset")) return e;
  }
  return set(dst, value, n, nullptr);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* out, unsigned flags) {
  if (!out) return fail(cudaErrorInvalidValue);
  if (sticky()) return fail_sticky();
  if (dev_cfg().count == 0) return fail(cudaErrorNoDevice);
  if (flags & ~static_cast<unsigned>(cudaStreamNonBlocking)) return fail(cudaErrorInvalidValue);
  auto* s = new CUstream_st;
  s->device = t_device;
  s->flags = flags;
  std::lock_guard<std::mutex> lk(rt().mu);
  rt().streams.insert(s);
  *out = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* out) { return cudaStreamCreateWithFlags(out, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  if (s->legacy) return fail(cudaErrorInvalidResourceHandle, "the legacy stream cannot be destroyed");
  std::lock_guard<std::mutex> ex(rt().exec);
  std::lock_guard<std::mutex> lk(rt().mu);
  rt().streams.erase(s);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (s->capturing) {
      invalidate(s);
      return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on a capturing stream");
    }
    if (cudaError_t e = check_legacy(s)) return e;
  }
  if (sticky()) return fail_sticky();
  std::lock_guard<std::mutex> ex(rt().exec);  // work from other threads finishes first
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (cudaError_t e = check_unsafe_call("cudaDeviceSynchronize")) return e;
  }
  if (sticky()) return fail_sticky();
  std::lock_guard<std::mutex> ex(rt().exec);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (sticky()) return fail_sticky();
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  if (s->legacy) return fail(cudaErrorStreamCaptureUnsupported, "the legacy stream cannot be captured");
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lk(rt().mu);
  if (s->capturing) return fail(cudaErrorIllegalState, "stream " + ptr_str(s) + " is already capturing");
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->capture_thread = std::this_thread::get_id();
  s->graph.clear();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  *graph = nullptr;
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!s->capturing) return fail(cudaErrorIllegalState, "stream " + ptr_str(s) + " is not capturing");
  if (s->mode != cudaStreamCaptureModeRelaxed && s->capture_thread != std::this_thread::get_id())
    return fail(cudaErrorStreamCaptureWrongThread);
  s->capturing = false;
  std::vector<Node> nodes = std::move(s->graph);
  s->graph.clear();
  if (s->invalidated) {
    s->invalidated = false;
    return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated by an earlier failed call");
  }
  auto* g = new CUgraph_st;
  g->nodes = std::move(nodes);
  rt().graphs.insert(g);
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return fail(cudaErrorInvalidValue);
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  std::lock_guard<std::mutex> lk(rt().mu);
  *status = !s->capturing ? cudaStreamCaptureStatusNone
                          : s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!exec) return fail(cudaErrorInvalidValue);
  *exec = nullptr;
  if (sticky()) return fail_sticky();
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!graph || !rt().graphs.count(graph)) return fail(cudaErrorInvalidValue, "not a live graph");
  auto* x = new CUgraphExec_st;
  x->nodes = graph->nodes;  // tasks are shared: destroying the graph keeps the exec's
  rt().execs.insert(x);
  *exec = x;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (sticky()) return fail_sticky();
  CUstream_st* s = nullptr;
  if (cudaError_t e = resolve(stream, &s)) return e;
  std::unique_lock<std::mutex> ex(rt().exec);
  {
    std::lock_guard<std::mutex> lk(rt().mu);
    if (!exec || !rt().execs.count(exec)) return fail(cudaErrorInvalidValue, "not a live graph exec");
    if (cudaError_t e = check_legacy(s)) return e;
    if (s->capturing) {  // a graph launched into a capture becomes part of it
      s->graph.insert(s->graph.end(), exec->nodes.begin(), exec->nodes.end());
      return cudaSuccess;
    }
  }
  return exec_nodes(exec->nodes);
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!graph || !rt().graphs.erase(graph)) return fail(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  std::lock_guard<std::mutex> ex(rt().exec);
  std::lock_guard<std::mutex> lk(rt().mu);
  if (!exec || !rt().execs.erase(exec)) return fail(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<size_t>(value) > dev_cfg().arch.optin)
      return fail(cudaErrorInvalidValue, "MaxDynamicSharedMemorySize " + std::to_string(value) + " > " +
                                             std::to_string(dev_cfg().arch.optin) + " (sm_" + std::to_string(dev_cfg().arch.sm) + ")");
    // The emulator cannot tell which kernel a later launch runs (a launch names its kernel only by text),
    // so the largest opt-in applies to every kernel.
    std::lock_guard<std::mutex> lk(rt().mu);
    if (static_cast<size_t>(value) > rt().dyn_smem_optin) rt().dyn_smem_optin = static_cast<size_t>(value);
  }
  return cudaSuccess;
}

}  // extern "C"
