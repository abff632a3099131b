// The mappings of a process as numbers (readMappings(), Walk.shmemMappings()).
#pragma once

#include <napi.h>

#include <vector>

#include "../maps_parser.h"

namespace binding {

// One mapping of readMappings(): numbers exact in a double (pages, device
// numbers, the inode in two 32-bit halves).
enum MapField : size_t {
  kMapStartPage = 0,
  kMapEndPage,
  kMapOffsetPage,
  kMapDevMajor,
  kMapDevMinor,
  kMapInodeHigh,
  kMapInodeLow,
  kMapFlags,  // MapFlag bits: read, write, exec, shared
  kMapFields
};

// Map records as mapFields numbers each, laid out as MapField.
Napi::Float64Array mapRecordsArray(Napi::Env env, const std::vector<pagewalk::MapRecord>& records);

}  // namespace binding
