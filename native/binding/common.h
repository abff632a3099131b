// What every binding file uses: the core's error and promise helpers, and
// numbers from JavaScript values.
#pragma once

#include <napi.h>

#include "../js_error.h"
#include "../promise_worker.h"
#include "../system_error.h"

namespace binding {

using pagewalk::guarded;
using pagewalk::PromiseWorker;
using pagewalk::SystemError;
using pagewalk::toJsError;
inline uint64_t toU64(const Napi::Value& v) {
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}
inline size_t toSize(const Napi::Value& v) { return static_cast<size_t>(v.As<Napi::Number>().Int64Value()); }
inline uint64_t bigToU64(const Napi::Value& v) {
  bool lossless;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

}  // namespace binding
