#include "core/tensor.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace mk {
namespace {

constexpr int kMaxDevices = 16;

struct Accounting {
  std::mutex mu;
  MemoryStats stats[kMaxDevices + 1];  // slot 0: cpu; slot 1+i: cuda:i
  // CUDA caching allocator: free blocks by rounded size, per device.
  std::map<size_t, std::vector<void*>> free_blocks[kMaxDevices];
  // Host cache of large blocks by exact size (see host_alloc).
  std::map<size_t, std::vector<void*>> host_free;
};
Accounting& acct() {
  static Accounting* a = new Accounting();  // never destroyed: storages may outlive static teardown
  return *a;
}
int slot(Device d) { return d.is_cuda() ? 1 + d.index : 0; }

// Small blocks round to 512 B, large ones to 2 MiB, so blocks of nearby sizes are reused.
size_t round_cuda(size_t b) {
  if (b == 0) b = 1;
  const size_t q = b < (1u << 20) ? 512 : (2u << 20);
  return (b + q - 1) / q * q;
}

// Host blocks of at least this size are cached when freed. glibc serves them with fresh mmap'd
// pages (above its mmap threshold, at most 32 MiB) or trims them back to the OS, so without a cache
// every forward's workspace and every large op output page-faults its memory in again: measured,
// a 512x512x2048 GEMM took 10.6 ms with its 4 MiB output freshly faulted and 6.1 ms reused.
constexpr size_t kHostCacheMin = 256 << 10;

size_t host_cache_cap() {
  static const size_t cap = [] {
    const char* e = std::getenv("MAMBAKIT_HOST_CACHE_MB");
    return static_cast<size_t>(e ? std::atoll(e) : 1024) << 20;
  }();
  return cap;
}

// A cached block of `size` bytes, or one at most 1/8 larger (workspaces recur with identical
// shapes; the slack lets a slightly smaller request reuse a block). Caller holds acct().mu.
void* host_take(size_t* size) {
  auto& fb = acct().host_free;
  auto it = fb.lower_bound(*size);
  if (it == fb.end() || it->first > *size + *size / 8) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  *size = it->first;
  if (it->second.empty()) fb.erase(it);
  acct().stats[0].cached_bytes -= static_cast<int64_t>(*size);
  return p;
}

// Frees the cached host blocks. Caller holds acct().mu.
void host_release() {
  for (auto& kv : acct().host_free)
    for (void* p : kv.second) std::free(p);
  acct().host_free.clear();
  acct().stats[0].cached_bytes = 0;
}

}  // namespace

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Status Storage::create(Device dev, size_t bytes, std::shared_ptr<Storage>* out) {
  void* p = nullptr;
  size_t size = bytes;
  if (!dev.is_cuda()) {
    size = (bytes + 63) / 64 * 64;
    if (size == 0) size = 64;
    if (size >= kHostCacheMin) {
      std::lock_guard<std::mutex> lk(acct().mu);
      p = host_take(&size);
    }
    if (!p) p = std::aligned_alloc(64, size);
    if (!p) {  // give the cache back and try once more
      {
        std::lock_guard<std::mutex> lk(acct().mu);
        host_release();
      }
      p = std::aligned_alloc(64, size);
    }
    if (!p) return make_error(Code::OOM, "out of host memory allocating " + std::to_string(bytes) + " bytes");
  } else {
    if (dev.index < 0 || dev.index >= kMaxDevices) return make_error(Code::DEVICE, "bad device " + dev.str());
    MK_RETURN_IF_ERROR(gpu::check_device(dev.index));
    size = round_cuda(bytes);
    {
      std::lock_guard<std::mutex> lk(acct().mu);
      auto& fb = acct().free_blocks[dev.index];
      auto it = fb.find(size);
      if (it != fb.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        acct().stats[slot(dev)].cached_bytes -= static_cast<int64_t>(size);
      }
    }
    if (!p) {
      Status st = gpu::raw_malloc(dev.index, size, &p);
      if (!st.ok()) {  // give the cache back to the driver and try once more
        empty_cache();
        MK_RETURN_IF_ERROR(gpu::raw_malloc(dev.index, size, &p));
      }
    }
  }
  {
    std::lock_guard<std::mutex> lk(acct().mu);
    MemoryStats& s = acct().stats[slot(dev)];
    s.live_tensors += 1;
    s.live_bytes += static_cast<int64_t>(size);
    if (s.live_bytes > s.peak_bytes) s.peak_bytes = s.live_bytes;
  }
  out->reset(new Storage(dev, p, size));
  return Status::Ok();
}

Storage::~Storage() {
  std::lock_guard<std::mutex> lk(acct().mu);
  MemoryStats& s = acct().stats[slot(dev_)];
  s.live_tensors -= 1;
  s.live_bytes -= static_cast<int64_t>(bytes_);
  if (!dev_.is_cuda()) {
    // CPU work is synchronous on the executor: a storage destroyed here is no longer read.
    if (bytes_ >= kHostCacheMin && static_cast<size_t>(s.cached_bytes) + bytes_ <= host_cache_cap()) {
      acct().host_free[bytes_].push_back(data_);
      s.cached_bytes += static_cast<int64_t>(bytes_);
    } else {
      std::free(data_);
    }
  } else {
    // Work on the device's single stream is ordered, so a block freed here can be handed to the
    // next allocation even if a queued kernel still reads it: that kernel runs first.
    acct().free_blocks[dev_.index][bytes_].push_back(data_);
    s.cached_bytes += static_cast<int64_t>(bytes_);
  }
}

void empty_cache() {
  std::lock_guard<std::mutex> lk(acct().mu);
  host_release();
  for (int d = 0; d < kMaxDevices; ++d) {
    for (auto& kv : acct().free_blocks[d])
      for (void* p : kv.second) gpu::raw_free(d, p);
    acct().free_blocks[d].clear();
    acct().stats[1 + d].cached_bytes = 0;
  }
}

MemoryStats memory_stats(Device dev) {
  std::lock_guard<std::mutex> lk(acct().mu);
  if (dev.is_cuda() && (dev.index < 0 || dev.index >= kMaxDevices)) return {};
  return acct().stats[slot(dev)];
}

Status Tensor::create(Device dev, DType dt, const Shape& shape, Tensor* out) {
  for (int64_t d : shape)
    if (d < 0) return make_error(Code::SHAPE, "negative dimension in shape " + shape_str(shape));
  out->dtype = dt;
  out->shape = shape;
  return Storage::create(dev, static_cast<size_t>(shape_numel(shape)) * dtype_size(dt), &out->storage);
}

std::string Tensor::desc() const {
  return std::string(dtype_name(dtype)) + shape_str(shape) + "@" + (storage ? device().str() : "?");
}

}  // namespace mk
