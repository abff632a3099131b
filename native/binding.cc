// The module: the only place that knows every feature. Each binding file of
// native/binding/ binds one feature of the pure C++ core to JavaScript.
// Arguments arrive validated and normalised by lib/native.ts; only numbers,
// bigints and typed arrays cross this boundary.
#include <napi.h>

#include <string>

#include "binding/bindings.h"
#include "page_size.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Every pagemap, kpagecount and kpageflags offset and every figure is
  // counted in 4 KiB pages (page_size.h): on a kernel with other pages they
  // would read the wrong entries, so the addon does not load there.
  if (pagewalk::kernelPageSize() != pagewalk::kPageSize) {
    throw Napi::Error::New(env, "pagewalk supports kernels with " + std::to_string(pagewalk::kPageSize) +
                                    "-byte pages only; this kernel's page size is " +
                                    std::to_string(pagewalk::kernelPageSize()) +
                                    " bytes (sysconf(_SC_PAGESIZE)), at which its pagemap, kpagecount "
                                    "and kpageflags would be read at the wrong entries");
  }
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(pagewalk::kernelPageSize())));
  pagewalk::InitPagemap(env, exports);
  pagewalk::InitEntries(env, exports);
  pagewalk::InitWalk(env, exports);
  pagewalk::InitTally(env, exports);
  pagewalk::InitKpage(env, exports);
  pagewalk::InitShmemSwap(env, exports);
  pagewalk::InitMaps(env, exports);
  pagewalk::InitProcFacts(env, exports);
  pagewalk::InitRamCensus(env, exports);
  pagewalk::InitThreadCpu(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(pagewalk, Init)
