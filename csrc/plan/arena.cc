#include "plan/arena.h"

#include <algorithm>

namespace mk {

Status Arena::create(Device dev, size_t bytes, Arena* out) {
  Arena a;
  const int64_t n = static_cast<int64_t>(std::max<size_t>(bytes, kAlign));
  MK_RETURN_IF_ERROR(Tensor::create(dev, DType::U8, {n}, &a.buf_));
  a.base_ = a.buf_.ptr<char>();
  a.capacity_ = static_cast<size_t>(n);
  *out = std::move(a);
  return Status::Ok();
}

void* Arena::take(size_t bytes) {
  const size_t at = used_;
  used_ += (bytes + kAlign - 1) / kAlign * kAlign;
  if (!base_) return nullptr;  // counting
  if (used_ > capacity_) {     // a block took more than it measured: a bug, reported by the plan
    overflow_ = true;
    return nullptr;
  }
  return base_ + at;
}

namespace {
// The bucket's capacity: `need` rounded up to an eighth of its power-of-two class.
size_t bucket(size_t need) {
  size_t p = Arena::kAlign;
  while (p < need) p <<= 1;
  const size_t step = std::max<size_t>(p / 8, Arena::kAlign);
  return (need + step - 1) / step * step;
}
}  // namespace

Status ArenaCache::get(Device dev, size_t bytes, std::unique_ptr<Arena>* out) {
  const size_t cap = bucket(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = free_.size(); i-- > 0;)
      if (free_[i]->capacity() >= bytes && free_[i]->capacity() <= cap) {
        *out = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        (*out)->reset();
        return Status::Ok();
      }
  }
  auto a = std::unique_ptr<Arena>(new Arena(Arena::counter()));
  MK_RETURN_IF_ERROR(Arena::create(dev, cap, a.get()));
  *out = std::move(a);
  return Status::Ok();
}

void ArenaCache::put(std::unique_ptr<Arena> a) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(a));
  if (free_.size() > kKeep) free_.erase(free_.begin());
}

void ArenaCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  free_.clear();
}

}  // namespace mk
