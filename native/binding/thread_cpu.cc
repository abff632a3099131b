// threadCpuMs(): the calling thread's CPU time, so that snapshot() can add
// the main thread's share to what its walk and tally threads report.
#include <napi.h>

#include "../pagemap_file.h"
#include "bindings.h"

namespace pagewalk {

namespace {

// threadCpuMs() -> ms of CPU the calling (JavaScript) thread has used
Napi::Value ThreadCpuMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(threadCpuNs()) / 1e6);
}

}  // namespace

void InitThreadCpu(Napi::Env env, Napi::Object exports) {
  exports.Set("threadCpuMs", Napi::Function::New(env, ThreadCpuMs, "threadCpuMs"));
}

}  // namespace pagewalk
