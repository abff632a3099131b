// kpageLookup(): kpagecount and kpageflags of a list of frames.
#include <napi.h>

#include <cstring>
#include <memory>

#include "../large_vector.h"
#include "../promise_worker.h"
#include "../tally.h"
#include "bindings.h"
#include "common.h"

namespace binding {

namespace {

// Looks up kpagecount and kpageflags for a list of PFNs (any order, repeats
// allowed), deduplicated and read in coalesced runs.
void lookUpKpages(const pagewalk::KpagePaths& paths, const uint64_t* pfns, size_t n, uint32_t* counts,
                  uint32_t* flags) {
  pagewalk::KpageTable table(paths);
  for (size_t i = 0; i < n; i++) table.want(pfns[i]);
  table.resolve();
  for (size_t i = 0; i < n; i++) {
    const size_t idx = table.indexOf(pfns[i]);
    counts[i] = idx == pagewalk::KpageTable::kAbsent ? 0 : table.mapcount(idx);
    flags[i] = idx == pagewalk::KpageTable::kAbsent ? (1u << pagewalk::kKpfNoPage) : table.flags(idx);
  }
}

// kpageLookup(countPath, flagsPath, pfns, countsOut: Uint32Array,
//             flagsOut: Uint32Array, async) -> undefined | Promise
Napi::Value KpageLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pagewalk::KpagePaths paths;
  paths.count = info[0].As<Napi::String>().Utf8Value();
  paths.flags = info[1].As<Napi::String>().Utf8Value();
  auto pfns = info[2].As<Napi::BigUint64Array>();
  auto counts = info[3].As<Napi::Uint32Array>();
  auto flags = info[4].As<Napi::Uint32Array>();
  const bool async = info[5].As<Napi::Boolean>().Value();
  const size_t n = pfns.ElementLength();
  if (counts.ElementLength() < n || flags.ElementLength() < n)
    throw Napi::RangeError::New(env, "output buffers too small");
  if (!async) {
    guarded(env, [&] { lookUpKpages(paths, pfns.Data(), n, counts.Data(), flags.Data()); });
    return env.Undefined();
  }
  // Worker-owned copies: the caller's arrays may be detached meanwhile.
  auto in = std::make_shared<pagewalk::LargeVector<uint64_t>>(pfns.Data(), pfns.Data() + n);
  auto outCounts = std::make_shared<pagewalk::LargeVector<uint32_t>>(n);
  auto outFlags = std::make_shared<pagewalk::LargeVector<uint32_t>>(n);
  auto countsRef = std::make_shared<Napi::Reference<Napi::Uint32Array>>(Napi::Persistent(counts));
  auto flagsRef = std::make_shared<Napi::Reference<Napi::Uint32Array>>(Napi::Persistent(flags));
  auto* worker = new PromiseWorker(
      env, [=] { lookUpKpages(paths, in->data(), n, outCounts->data(), outFlags->data()); },
      [](Napi::Env e) { return e.Undefined(); }, {});
  worker->onSettle = [=] {
    Napi::Uint32Array c = countsRef->Value();
    Napi::Uint32Array f = flagsRef->Value();
    if (n > 0 && c.ElementLength() >= n) std::memcpy(c.Data(), outCounts->data(), n * sizeof(uint32_t));
    if (n > 0 && f.ElementLength() >= n) std::memcpy(f.Data(), outFlags->data(), n * sizeof(uint32_t));
  };
  worker->Queue();
  return worker->promise();
}

}  // namespace

}  // namespace binding

namespace pagewalk {

void InitKpage(Napi::Env env, Napi::Object exports) {
  exports.Set("kpageLookup", Napi::Function::New(env, binding::KpageLookup));
}

}  // namespace pagewalk
