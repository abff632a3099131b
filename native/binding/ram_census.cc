// Binds the frame census (ram_census.h) to JavaScript: one range per call,
// on the libuv pool; the counts come back as one Float64Array.
#include "../ram_census.h"

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../file_cache.h"
#include "../promise_worker.h"
#include "bindings.h"

namespace pagewalk {
namespace {

// ramCensusRange(flagsPath, countPath, cgroupPath | '', ramRanges: Float64Array,
//                firstPfn, endPfn) -> Promise<Float64Array>, laid out as
// [framesRead, bytesRead, frames per class (kFrameClasses),
//  then per cgroup: inode, frames per class].
Napi::Value RamCensusRange(const Napi::CallbackInfo& info) {
  CensusPaths paths;
  paths.flags = info[0].As<Napi::String>().Utf8Value();
  paths.count = info[1].As<Napi::String>().Utf8Value();
  paths.cgroup = info[2].As<Napi::String>().Utf8Value();
  auto rangesArray = info[3].As<Napi::Float64Array>();
  std::vector<uint64_t> ranges(rangesArray.ElementLength());
  for (size_t i = 0; i < ranges.size(); i++) ranges[i] = static_cast<uint64_t>(rangesArray[i]);
  const auto first = static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value());
  const auto end = static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value());
  auto result = std::make_shared<CensusResult>();
  auto* worker = new PromiseWorker(
      info.Env(), [=] { *result = censusRange(paths, ranges, first, end); },
      [=](Napi::Env env) -> Napi::Value {
        const size_t row = 1 + kFrameClasses;
        auto out = Napi::Float64Array::New(env, 2 + kFrameClasses + result->perCgroup.size() * row);
        double* d = out.Data();
        *d++ = static_cast<double>(result->framesRead);
        *d++ = static_cast<double>(result->bytesRead);
        for (uint64_t n : result->frames) *d++ = static_cast<double>(n);
        for (const auto& [inode, frames] : result->perCgroup) {
          *d++ = static_cast<double>(inode);
          for (uint64_t n : frames) *d++ = static_cast<double>(n);
        }
        return out;
      },
      {});
  worker->Queue();
  return worker->promise();
}

// fileCache(paths: string[]) -> Promise<Float64Array>, 6 numbers per path:
// cached, dirty, writeback, evicted pages, errno (0: ok), 1 when via mincore.
Napi::Value FileCacheOf(const Napi::CallbackInfo& info) {
  auto list = info[0].As<Napi::Array>();
  auto paths = std::make_shared<std::vector<std::string>>();
  for (uint32_t i = 0; i < list.Length(); i++) paths->push_back(list.Get(i).As<Napi::String>().Utf8Value());
  auto results = std::make_shared<std::vector<FileCache>>();
  auto* worker = new PromiseWorker(
      info.Env(),
      [=] {
        results->reserve(paths->size());
        for (const auto& p : *paths) results->push_back(fileCacheOf(p));
      },
      [=](Napi::Env env) -> Napi::Value {
        auto out = Napi::Float64Array::New(env, results->size() * 6);
        double* d = out.Data();
        for (const auto& r : *results) {
          *d++ = static_cast<double>(r.cached);
          *d++ = static_cast<double>(r.dirty);
          *d++ = static_cast<double>(r.writeback);
          *d++ = static_cast<double>(r.evicted);
          *d++ = r.error;
          *d++ = r.viaMincore ? 1 : 0;
        }
        return out;
      },
      {});
  worker->Queue();
  return worker->promise();
}

}  // namespace

void InitRamCensus(Napi::Env env, Napi::Object exports) {
  exports.Set("ramCensusRange", Napi::Function::New(env, RamCensusRange));
  exports.Set("fileCache", Napi::Function::New(env, FileCacheOf));
  exports.Set("frameClasses", Napi::Number::New(env, kFrameClasses));
}

}  // namespace pagewalk
