// procFacts(): the per-process facts of native/proc_facts.h, as numbers in
// a Float64Array and the text (comm, cmdline, exe) as bytes in a Uint8Array,
// both reused by lib/proc/facts.ts from call to call.
#include "../proc_facts.h"

#include <napi.h>

#include <cstring>
#include <memory>
#include <string>

#include "../js_error.h"
#include "../promise_worker.h"
#include "bindings.h"

namespace pagewalk {

namespace {

// Mirrored as FactField in lib/native.ts: keep the two in step.
enum FactField : size_t {
  kFactPpid = 0,
  kFactState,  // the state letter's character code
  kFactFlags,
  kFactStartTime,
  kFactUid,
  kFactVmSizeKb,
  kFactVmRssKb,
  kFactCommBytes,
  kFactCmdlineBytes,
  kFactExeBytes,  // -1 when the link could not be read
  kFactFields
};

// procFacts(pid, wanted, numbers: Float64Array of kFactFields, text: Uint8Array)
//   -> bytes of text the facts take; when more than text holds, text is
//      left unwritten (call again with a larger one)
Napi::Value ProcFactsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int pid = info[0].As<Napi::Number>().Int32Value();
  const uint32_t wanted = info[1].As<Napi::Number>().Uint32Value();
  auto numbers = info[2].As<Napi::Float64Array>();
  auto text = info[3].As<Napi::Uint8Array>();
  if (numbers.ElementLength() < kFactFields) throw Napi::RangeError::New(env, "buffer too small");
  const ProcFacts f = guarded(env, [&] { return readProcFacts(pid, wanted); });
  double* n = numbers.Data();
  n[kFactPpid] = static_cast<double>(f.ppid);
  n[kFactState] = static_cast<unsigned char>(f.state);
  n[kFactFlags] = static_cast<double>(f.flags);
  n[kFactStartTime] = static_cast<double>(f.startTime);
  n[kFactUid] = static_cast<double>(f.uid);
  n[kFactVmSizeKb] = static_cast<double>(f.vmSizeKb);
  n[kFactVmRssKb] = static_cast<double>(f.vmRssKb);
  n[kFactCommBytes] = static_cast<double>(f.comm.size());
  n[kFactCmdlineBytes] = static_cast<double>(f.cmdline.size());
  n[kFactExeBytes] = f.exeKnown ? static_cast<double>(f.exe.size()) : -1;
  const size_t bytes = f.comm.size() + f.cmdline.size() + f.exe.size();
  if (bytes <= text.ElementLength() && bytes > 0) {
    uint8_t* t = text.Data();
    std::memcpy(t, f.comm.data(), f.comm.size());
    t += f.comm.size();
    if (!f.cmdline.empty()) std::memcpy(t, f.cmdline.data(), f.cmdline.size());
    t += f.cmdline.size();
    if (!f.exe.empty()) std::memcpy(t, f.exe.data(), f.exe.size());
  }
  return Napi::Number::New(env, static_cast<double>(bytes));
}

// readProcText(path) -> Promise<Buffer>: the whole file, read on one pool
// thread (see readProcText in proc_facts.h).
Napi::Value ReadProcTextAsync(const Napi::CallbackInfo& info) {
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  auto text = std::make_shared<std::string>();
  auto* worker = new PromiseWorker(
      info.Env(), [=] { *text = readProcText(path); },
      [=](Napi::Env e) -> Napi::Value { return Napi::Buffer<char>::Copy(e, text->data(), text->size()); },
      {});
  worker->Queue();
  return worker->promise();
}

}  // namespace

void InitProcFacts(Napi::Env env, Napi::Object exports) {
  exports.Set("procFacts", Napi::Function::New(env, ProcFactsOf));
  exports.Set("readProcText", Napi::Function::New(env, ReadProcTextAsync));
  exports.Set("factFields", Napi::Number::New(env, kFactFields));
  Napi::Object wanted = Napi::Object::New(env);
  wanted.Set("stat", Napi::Number::New(env, kFactsStat));
  wanted.Set("status", Napi::Number::New(env, kFactsStatus));
  wanted.Set("cmdline", Napi::Number::New(env, kFactsCmdline));
  wanted.Set("exe", Napi::Number::New(env, kFactsExe));
  exports.Set("factsWanted", wanted);
}

}  // namespace pagewalk
