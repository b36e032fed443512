// Runs native work on the executor (off the JS thread) and settles a Promise on the JS thread.
#pragma once
#include <napi.h>

#include <memory>

#include "core/status.h"

namespace mk {

Napi::Error to_js_error(Napi::Env env, const Status& st);

class AsyncJob {
 public:
  virtual ~AsyncJob() = default;
  virtual Status run() = 0;                          // executor thread
  virtual Napi::Value result(Napi::Env env) = 0;     // JS thread, only when run() succeeded
};

// Queues the job and returns its promise. A job that cannot even be queued rejects at once.
Napi::Promise enqueue(Napi::Env env, std::unique_ptr<AsyncJob> job);

// A promise rejected with `st` (for checks that fail before anything is queued).
Napi::Promise rejected(Napi::Env env, const Status& st);

}  // namespace mk
