// A promise-returning job on the libuv thread pool, and the rules for
// settling it while a worker thread's environment is torn down (model:
// parcel-bundler/watcher's PromiseRunner.hh). Used by the binding files only.
#ifndef PAGEWALK_PROMISE_WORKER_H
#define PAGEWALK_PROMISE_WORKER_H

#include <napi.h>

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "js_error.h"
#include "system_error.h"

namespace pagewalk {

// An error captured on a worker thread, rethrown on the JS thread.
struct PendingError {
  bool set = false;
  bool system = false;
  SystemError sys{0, "", ""};
  std::string message;

  void capture(std::exception_ptr ptr) {
    set = true;
    try {
      std::rethrow_exception(ptr);
    } catch (const SystemError& e) {
      system = true;
      sys = e;
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "unknown native error";
    }
  }
  Napi::Value toValue(Napi::Env env) const {
    if (system) return toJsError(env, sys).Value();
    return Napi::Error::New(env, message).Value();
  }
};

// A promise-returning job on the libuv pool. `keepAlive` pins the JS objects
// whose native state the job touches until it has settled.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result,
                std::vector<Napi::Value> keepAlive)
      : Napi::AsyncWorker(env, "pagewalk"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)) {
    for (auto& v : keepAlive) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }
  std::function<void()> onSettle;

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_.capture(std::current_exception());
    }
  }
  // Completion runs on the JS thread, but also while a worker thread's
  // environment is being torn down (worker.terminate() with work in flight),
  // when no N-API call that touches JavaScript can succeed. node-addon-api
  // then throws from inside its own catch handler and the process aborts
  // ("terminate called after throwing an instance of 'Napi::Error'"), so no
  // exception may leave these two functions. Nobody is left to be told.
  void OnOK() override {
    try {
      settle();
    } catch (...) {
    }
  }
  // node-addon-api opens a HandleScope before OnOK/OnError, outside them:
  // during teardown that throws, and an exception leaving this libuv
  // callback aborts the process. Nothing can be settled then; just free.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    try {
      Napi::AsyncWorker::OnWorkComplete(env, status);
    } catch (...) {
      Destroy();
    }
  }
  void OnError(const Napi::Error& e) override {
    try {
      if (onSettle) onSettle();
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::vector<Napi::ObjectReference> refs_;
  PendingError error_;

  void settle() {
    Napi::Env env = Env();
    if (onSettle) onSettle();
    if (error_.set) {
      deferred_.Reject(error_.toValue(env));
      return;
    }
    try {
      deferred_.Resolve(result_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
};

}  // namespace pagewalk

#endif  // PAGEWALK_PROMISE_WORKER_H
