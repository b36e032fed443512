// Storage (owned memory on one device) and Tensor (a dense row-major view of a whole storage).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/status.h"

namespace mk {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);

class Storage {
 public:
  // Allocates `bytes` on `dev` (host memory is 64-byte aligned; device memory is cached).
  static Status create(Device dev, size_t bytes, std::shared_ptr<Storage>* out);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return dev_; }

 private:
  Storage(Device d, void* p, size_t b) : dev_(d), data_(p), bytes_(b) {}
  Device dev_;
  void* data_;
  size_t bytes_;
};

struct Tensor {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::F32;
  Shape shape;

  static Status create(Device dev, DType dt, const Shape& shape, Tensor* out);
  Device device() const { return storage->device(); }
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  template <typename T> T* ptr() const { return static_cast<T*>(storage->data()); }
  void* raw() const { return storage->data(); }
  std::string desc() const;  // "f32[2, 3]@cpu"
};

// Per-device accounting, for mambakit.memory().
struct MemoryStats {
  int64_t live_tensors = 0;
  int64_t live_bytes = 0;
  int64_t cached_bytes = 0;  // CUDA caching allocator: free blocks kept for reuse
  int64_t peak_bytes = 0;
};
MemoryStats memory_stats(Device dev);
// Returns the CUDA allocator's cached blocks to the driver.
void empty_cache();

}  // namespace mk
