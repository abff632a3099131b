// shmemSwap(): swapped pages of a shmem mapping (cachestat).
#include "../shmem_swap.h"

#include <napi.h>

#include "../page_size.h"
#include "bindings.h"
#include "common.h"

namespace binding {

namespace {

// Swapped pages; -1 when the file is not shmem; -2 without cachestat.
Napi::Value resultValue(Napi::Env env, const pagewalk::ShmemSwapResult& r) {
  if (!r.isShmem) return Napi::Number::New(env, -1);
  if (r.unsupported) return Napi::Number::New(env, -2);
  return Napi::Number::New(env, static_cast<double>(r.swappedPages));
}

// shmemSwap(pid, startPage, endPage, fileOffsetPages, behindHolesOnly)
//   -> swapped pages; -1 when the file is not shmem; -2 without cachestat
Napi::Value ShmemSwap(const Napi::CallbackInfo& info) {
  const int pid = info[0].As<Napi::Number>().Int32Value();
  const uint64_t start = toU64(info[1]) << pagewalk::kPageShift;
  const uint64_t end = toU64(info[2]) << pagewalk::kPageShift;
  const uint64_t offset = toU64(info[3]) << pagewalk::kPageShift;
  const bool holesOnly = info[4].As<Napi::Boolean>().Value();
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (holesOnly)
      return Napi::Number::New(
          info.Env(), static_cast<double>(pagewalk::shmemSwappedBehindHoles(pid, start, end, offset)));
    return resultValue(info.Env(), pagewalk::shmemSwappedPages(pid, start, end, offset));
  });
}

// shmemSwapMap(pid, startPage, endPage, fileOffsetPages, firstPage, out: Uint8Array)
//   -> pages marked in out (1: the file page behind that page of the mapping
//   is in swap); -1 when the file is not shmem; -2 without cachestat
Napi::Value ShmemSwapMap(const Napi::CallbackInfo& info) {
  const int pid = info[0].As<Napi::Number>().Int32Value();
  const uint64_t start = toU64(info[1]) << pagewalk::kPageShift;
  const uint64_t end = toU64(info[2]) << pagewalk::kPageShift;
  const uint64_t offset = toU64(info[3]) << pagewalk::kPageShift;
  const uint64_t first = toU64(info[4]);
  auto out = info[5].As<Napi::Uint8Array>();
  return guarded(info.Env(), [&]() -> Napi::Value {
    return resultValue(
        info.Env(), pagewalk::shmemSwapMap(pid, start, end, offset, first, out.ElementLength(), out.Data()));
  });
}

}  // namespace

}  // namespace binding

namespace pagewalk {

void InitShmemSwap(Napi::Env env, Napi::Object exports) {
  exports.Set("shmemSwap", Napi::Function::New(env, binding::ShmemSwap));
  exports.Set("shmemSwapMap", Napi::Function::New(env, binding::ShmemSwapMap));
}

}  // namespace pagewalk
