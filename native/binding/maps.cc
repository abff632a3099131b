// readMappings(): the mappings of a process as MapField records.
#include "maps.h"

#include <napi.h>

#include <memory>
#include <vector>

#include "../maps_parser.h"
#include "../page_size.h"
#include "../promise_worker.h"
#include "bindings.h"
#include "common.h"

namespace binding {

namespace {

// readMappings(pid, shmemOnly | 2, useQuery) -> Promise<Float64Array of
// mappings * kMapFields>: user-space mappings, laid out as MapField.
Napi::Value ReadMappings(const Napi::CallbackInfo& info) {
  const int pid = info[0].As<Napi::Number>().Int32Value();
  pagewalk::MapsReadOptions options;
  // true/false: shmem candidates or all; 2: every file mapping (the RAM census).
  const Napi::Value selection = info[1];
  options.selection = selection.IsBoolean()
                          ? (selection.As<Napi::Boolean>().Value() ? pagewalk::MapSelection::kShmemCandidates
                                                                   : pagewalk::MapSelection::kAll)
                          : pagewalk::MapSelection::kFileBacked;
  options.useQuery = info[2].As<Napi::Boolean>().Value();
  auto records = std::make_shared<std::vector<pagewalk::MapRecord>>();
  auto* worker = new PromiseWorker(
      info.Env(), [=] { *records = pagewalk::readMapRecords(pid, options); },
      [=](Napi::Env e) -> Napi::Value { return mapRecordsArray(e, *records); }, {});
  worker->Queue();
  return worker->promise();
}

}  // namespace

// Map records as mapFields numbers each, laid out as MapField.
Napi::Float64Array mapRecordsArray(Napi::Env env, const std::vector<pagewalk::MapRecord>& records) {
  auto out = Napi::Float64Array::New(env, records.size() * kMapFields);
  double* d = out.Data();
  for (const auto& r : records) {
    d[kMapStartPage] = static_cast<double>(r.start >> pagewalk::kPageShift);
    d[kMapEndPage] = static_cast<double>(r.end >> pagewalk::kPageShift);
    d[kMapOffsetPage] = static_cast<double>(r.offset >> pagewalk::kPageShift);
    d[kMapDevMajor] = r.devMajor;
    d[kMapDevMinor] = r.devMinor;
    d[kMapInodeHigh] = static_cast<double>(r.inode >> 32);
    d[kMapInodeLow] = static_cast<double>(r.inode & 0xffffffffu);
    d[kMapFlags] = r.flags;
    d += kMapFields;
  }
  return out;
}

}  // namespace binding

namespace pagewalk {

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("readMappings", Napi::Function::New(env, binding::ReadMappings));
  exports.Set("mapFields", Napi::Number::New(env, binding::kMapFields));
}

}  // namespace pagewalk
