#include "binding/async_job.h"

#include <exception>
#include <new>

#include "core/executor.h"

namespace mk {
namespace {

struct Pending {
  std::unique_ptr<AsyncJob> job;
  Napi::Promise::Deferred deferred;
  Status status;
};

void settle(Napi::Env env, Napi::Function, std::nullptr_t*, Pending* p) {
  std::unique_ptr<Pending> owned(p);
  if (env == nullptr) return;  // the environment is shutting down: drop the result
  Napi::HandleScope scope(env);
  if (!p->status.ok()) {
    p->deferred.Reject(to_js_error(env, p->status).Value());
    return;
  }
  Napi::Value v = p->job->result(env);
  if (env.IsExceptionPending()) {
    p->deferred.Reject(env.GetAndClearPendingException().Value());
  } else {
    p->deferred.Resolve(v);
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Pending, settle>;

}  // namespace

Napi::Error to_js_error(Napi::Env env, const Status& st) {
  Napi::Error e = Napi::Error::New(env, st.message);
  e.Set("code", Napi::String::New(env, code_name(st.code)));
  return e;
}

Napi::Promise rejected(Napi::Env env, const Status& st) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(to_js_error(env, st).Value());
  return d.Promise();
}

Napi::Promise enqueue(Napi::Env env, std::unique_ptr<AsyncJob> job) {
  auto* p = new Pending{std::move(job), Napi::Promise::Deferred::New(env), Status::Ok()};
  Napi::Promise promise = p->deferred.Promise();
  // One thread-safe function per job: it keeps the event loop alive until the job settles.
  Tsfn tsfn = Tsfn::New(env, "mambakit", 0, 1);
  executor_submit([p, tsfn]() mutable {
    try {
      p->status = p->job->run();
    } catch (const std::bad_alloc&) {
      p->status = make_error(Code::OOM, "out of host memory");
    } catch (const std::exception& e) {
      p->status = make_error(Code::ARG, std::string("internal error: ") + e.what());
    }
    tsfn.BlockingCall(p);
    tsfn.Release();
  });
  return promise;
}

}  // namespace mk
