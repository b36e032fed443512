#include "core/executor.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace mk {
namespace {

struct Executor {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> q;
  std::thread worker;

  Executor() {
    worker = std::thread([this] { loop(); });
    worker.detach();  // lives as long as the process; jobs are drained before exit by Node's loop
  }
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [this] { return !q.empty(); });
        job = std::move(q.front());
        q.pop_front();
      }
      job();
    }
  }
};

Executor& executor() {
  static Executor* e = new Executor();  // process-wide, shared by every load of the addon
  return *e;
}

}  // namespace

void executor_submit(std::function<void()> job) {
  Executor& e = executor();
  {
    std::lock_guard<std::mutex> lk(e.mu);
    e.q.push_back(std::move(job));
  }
  e.cv.notify_one();
}

}  // namespace mk
