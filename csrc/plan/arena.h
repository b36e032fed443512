// The workspace of one plan call: one device buffer carved by a bump allocator, reused across calls
// whose needs fall in the same size bucket (ArenaCache), so a forward allocates nothing once warm
// and a captured CUDA graph keeps fixed addresses (each graph owns its arena).
//
// Blocks describe their scratch once, as a function of an Arena: run() takes real buffers from the
// call's arena, and the same function run against Arena::counter() measures the bytes needed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/tensor.h"

namespace mk {

class Arena {
 public:
  static constexpr size_t kAlign = 256;  // CUDA likes 256-byte aligned buffers; host SIMD needs 64

  // Counts the bytes takes would use; the pointers it hands out are null.
  static Arena counter() { return Arena(); }
  // A buffer of at least `bytes` on `dev`.
  static Status create(Device dev, size_t bytes, Arena* out);

  float* f32(int64_t n) { return static_cast<float*>(take(static_cast<size_t>(n) * 4)); }
  int32_t* i32(int64_t n) { return static_cast<int32_t*>(take(static_cast<size_t>(n) * 4)); }
  void* take(size_t bytes);

  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  size_t mark() const { return used_; }
  void release(size_t mark) { used_ = mark; }
  void reset() { used_ = 0; }
  bool overflowed() const { return overflow_; }

 private:
  Arena() = default;
  Tensor buf_;
  char* base_ = nullptr;
  size_t capacity_ = 0, used_ = 0;
  bool overflow_ = false;
};

// Arenas of one plan, by size bucket (a capacity within 1/8 above the need of a power-of-two class):
// prefill and decode calls of the usual shapes each find theirs. Thread-safe; an arena is lent to
// one call at a time (calls run one after another on the executor, so none waits).
class ArenaCache {
 public:
  // An arena of at least `bytes` for one call; give it back with put().
  Status get(Device dev, size_t bytes, std::unique_ptr<Arena>* out);
  void put(std::unique_ptr<Arena> a);
  void clear();

 private:
  static constexpr size_t kKeep = 4;
  std::mutex mu_;
  std::vector<std::unique_ptr<Arena>> free_;  // most recently used last
};

}  // namespace mk
