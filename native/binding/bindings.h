// The binding files, one per feature: each adds its classes and functions
// to the module's exports, with the sizes of the layouts lib/native.ts
// mirrors (checked on load, so that a stale build is caught).
// native/binding.cc's Init() calls them all.
#pragma once

#include <napi.h>

namespace pagewalk {

void InitPagemap(Napi::Env env, Napi::Object exports);
void InitEntries(Napi::Env env, Napi::Object exports);
void InitWalk(Napi::Env env, Napi::Object exports);
void InitTally(Napi::Env env, Napi::Object exports);
void InitKpage(Napi::Env env, Napi::Object exports);
void InitShmemSwap(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitProcFacts(Napi::Env env, Napi::Object exports);
void InitRamCensus(Napi::Env env, Napi::Object exports);
void InitThreadCpu(Napi::Env env, Napi::Object exports);

}  // namespace pagewalk
