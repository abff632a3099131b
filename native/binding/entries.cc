// Decoders of pagemap entries in bulk: countStates, firstPopulated,
// extractPfns, runLengths.
#include <napi.h>

#include "../pagemap_entry.h"
#include "../process_walk.h"
#include "bindings.h"
#include "common.h"

namespace binding {

namespace {

// countStates(entries, offset, count, out: Float64Array)
Napi::Value CountStates(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  auto out = info[3].As<Napi::Float64Array>();
  if (offset + count > entries.ElementLength() || out.ElementLength() < pagewalk::StateCounts::kFields)
    throw Napi::RangeError::New(info.Env(), "buffer too small");
  pagewalk::StateCounts c;
  pagewalk::countStates(entries.Data() + offset, count, &c);
  const uint64_t values[] = {c.pages,     c.present,   c.swapped, c.notPresent, c.file,
                             c.exclusive, c.softDirty, c.uffdWp,  c.guard,      c.presentWithPfn};
  for (size_t i = 0; i < pagewalk::StateCounts::kFields; i++) out[i] = static_cast<double>(values[i]);
  return info.Env().Undefined();
}

// firstPopulated(entries, offset, count) -> index from offset of the first
// present or swapped entry, count when none
Napi::Value FirstPopulated(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  return Napi::Number::New(info.Env(),
                           static_cast<double>(pagewalk::firstPopulated(entries.Data() + offset, count)));
}

// extractPfns(entries, offset, count, out: BigUint64Array) -> present count
Napi::Value ExtractPfns(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  auto out = info[3].As<Napi::BigUint64Array>();
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  const size_t n = pagewalk::extractPfns(entries.Data() + offset, count, out.Data(), out.ElementLength());
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// runLengths(entries, offset, count, mask: bigint, out: BigUint64Array) -> runs
Napi::Value RunLengths(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  const uint64_t mask = bigToU64(info[3]);
  auto out = info[4].As<Napi::BigUint64Array>();
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  const size_t n =
      pagewalk::runLengths(entries.Data() + offset, count, mask, out.Data(), out.ElementLength() / 3);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

}  // namespace

}  // namespace binding

namespace pagewalk {

void InitEntries(Napi::Env env, Napi::Object exports) {
  exports.Set("countStates", Napi::Function::New(env, binding::CountStates));
  exports.Set("firstPopulated", Napi::Function::New(env, binding::FirstPopulated));
  exports.Set("extractPfns", Napi::Function::New(env, binding::ExtractPfns));
  exports.Set("runLengths", Napi::Function::New(env, binding::RunLengths));
}

}  // namespace pagewalk
