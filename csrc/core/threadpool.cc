#include "core/threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mk {
namespace {

// Workers spin briefly before sleeping: a decode step issues ~100 small kernels back to back, and
// waking a sleeping thread costs 20-70 µs here, more than many of those kernels take.
class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return n_; }

  void run(const std::function<void(int, int)>& fn) {
    if (n_ == 1) { fn(0, 1); return; }
    job_ = &fn;
    pending_.store(n_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu_);  // pairs with the sleepers' predicate check
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0, n_);
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpin) cpu_relax();
      else std::this_thread::yield();
    }
    job_ = nullptr;
  }

 private:
  static constexpr int kSpin = 1 << 14;  // ~30-100 µs of polling before a worker sleeps

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      int spin = 0;
      while (generation_.load(std::memory_order_acquire) == seen && !stop_.load() && spin < kSpin) {
        cpu_relax();
        ++spin;
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      }
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      (*job_)(t, n_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

int default_threads() {
  if (const char* env = std::getenv("MAMBAKIT_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::mutex g_caller_mu;  // serializes callers and resizes
std::unique_ptr<Pool>& pool_slot() {
  static std::unique_ptr<Pool> p;
  return p;
}
Pool& pool() {
  auto& p = pool_slot();
  if (!p) p = std::make_unique<Pool>(default_threads());
  return *p;
}

}  // namespace

void parallel_run(const std::function<void(int, int)>& fn) {
  std::lock_guard<std::mutex> lk(g_caller_mu);
  pool().run(fn);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  std::lock_guard<std::mutex> lk(g_caller_mu);
  Pool& p = pool();
  int64_t chunks = std::min<int64_t>(p.size(), (n + grain - 1) / grain);
  if (chunks <= 1) { fn(0, n); return; }
  p.run([&](int t, int) {
    if (t >= chunks) return;
    int64_t b = n * t / chunks, e = n * (t + 1) / chunks;
    if (b < e) fn(b, e);
  });
}

int num_threads() {
  std::lock_guard<std::mutex> lk(g_caller_mu);
  return pool().size();
}

void parallel_items(int64_t count, const std::function<void(int64_t)>& fn) {
  if (count <= 0) return;
  std::atomic<int64_t> next{0};
  parallel_run([&](int, int) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) fn(i);
  });
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_caller_mu);
  auto& p = pool_slot();
  if (p && p->size() == std::max(1, n)) return;
  p.reset();
  p = std::make_unique<Pool>(std::max(1, n));
}

}  // namespace mk
