#include "core/threadpool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mk {
namespace {

class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return n_; }

  void run(const std::function<void(int, int)>& fn) {
    if (n_ == 1) { fn(0, 1); return; }
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      pending_ = n_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    fn(0, n_);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int, int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      (*job)(t, n_);
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
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

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_caller_mu);
  auto& p = pool_slot();
  if (p && p->size() == std::max(1, n)) return;
  p.reset();
  p = std::make_unique<Pool>(std::max(1, n));
}

}  // namespace mk
