// Walk and SharedFrames (walk.h) as exports, with the walk's layouts and
// option bits.
#include "walk.h"

#include <napi.h>

#include "../process_walk.h"
#include "bindings.h"

namespace pagewalk {

void InitWalk(Napi::Env env, Napi::Object exports) {
  exports.Set("Walk", binding::Walk::Define(env));
  exports.Set("SharedFrames", binding::SharedFramesHandle::Define(env));
  // wholeSpaceEndPage() -> TASK_SIZE as a page number, or 0 without PAGEMAP_SCAN
  exports.Set("wholeSpaceEndPage", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(pagewalk::wholeSpaceEndPage()));
              }));
  exports.Set("mappingFields", Napi::Number::New(env, pagewalk::kFields));
  exports.Set("walkStatFields", Napi::Number::New(env, binding::kWalkStats));
  exports.Set("walkTimingFields", Napi::Number::New(env, binding::kWalkTimings));
  Napi::Object walkOptions = Napi::Object::New(env);
  walkOptions.Set("lookUpExclusiveAnon", Napi::Number::New(env, binding::kLookUpExclusiveAnon));
  walkOptions.Set("collectSwapEntries", Napi::Number::New(env, binding::kCollectSwapEntries));
  walkOptions.Set("noScan", Napi::Number::New(env, binding::kNoScan));
  walkOptions.Set("wholeSpace", Napi::Number::New(env, binding::kWholeSpace));
  walkOptions.Set("oneThread", Napi::Number::New(env, binding::kOneThread));
  walkOptions.Set("noKsm", Napi::Number::New(env, binding::kNoKsm));
  walkOptions.Set("noHugetlb", Napi::Number::New(env, binding::kNoHugetlb));
  walkOptions.Set("noProcmapQuery", Napi::Number::New(env, binding::kNoProcmapQuery));
  walkOptions.Set("shmemMappings", Napi::Number::New(env, binding::kShmemMappings));
  exports.Set("walkOptions", walkOptions);
}

}  // namespace pagewalk
