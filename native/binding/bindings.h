// The binding files, one per feature: each adds its classes and functions
// to the module's exports. native/binding.cc's Init() calls them all.
#pragma once

#include <napi.h>

namespace pagewalk {

void InitProcFacts(Napi::Env env, Napi::Object exports);
void InitRamCensus(Napi::Env env, Napi::Object exports);

}  // namespace pagewalk
