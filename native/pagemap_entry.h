// Bit layout of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst)
// and the bulk decoders that run over raw entries without creating any
// per-page object.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pagewalk {

constexpr uint64_t kPfnMask = (uint64_t{1} << 55) - 1;
constexpr uint64_t kSwapTypeMask = 0x1f;
constexpr unsigned kSwapOffsetShift = 5;
constexpr uint64_t kSoftDirty = uint64_t{1} << 55;
constexpr uint64_t kExclusive = uint64_t{1} << 56;
constexpr uint64_t kUffdWp = uint64_t{1} << 57;
constexpr uint64_t kGuard = uint64_t{1} << 58;
constexpr uint64_t kFileOrSharedAnon = uint64_t{1} << 61;
constexpr uint64_t kSwapped = uint64_t{1} << 62;
constexpr uint64_t kPresent = uint64_t{1} << 63;
// Every bit above the PFN field: two entries with equal flag bits are in the
// same state for run-length purposes.
constexpr uint64_t kFlagBits = ~kPfnMask;

inline bool isPresent(uint64_t e) { return (e & kPresent) != 0; }
inline bool isSwapped(uint64_t e) { return (e & kSwapped) != 0; }
inline uint64_t pfnOf(uint64_t e) { return e & kPfnMask; }

// Counts of each state over a range of entries. Field order is the order of
// the Float64Array the binding fills; keep lib/pagemap.ts in step.
struct StateCounts {
  uint64_t pages = 0;
  uint64_t present = 0;
  uint64_t swapped = 0;
  uint64_t notPresent = 0;  // neither present nor swapped
  uint64_t file = 0;        // bit 61: file page or shared anonymous
  uint64_t exclusive = 0;
  uint64_t softDirty = 0;
  uint64_t uffdWp = 0;
  uint64_t guard = 0;
  uint64_t presentWithPfn = 0;  // present and PFN != 0 (PFNs visible)
  static constexpr size_t kFields = 10;
};

void countStates(const uint64_t* entries, size_t count, StateCounts* out);

// Index of the first present or swapped entry, or count when there is none.
// What a walk needs to know of a chunk: it stops at once on a populated one.
size_t firstPopulated(const uint64_t* entries, size_t count);

// Copies the PFNs of present entries to out (at most capacity of them) and
// returns how many present entries there were in total.
size_t extractPfns(const uint64_t* entries, size_t count, uint64_t* out, size_t capacity);

// Writes runs of entries whose (entry & mask) agree as (firstIndex, length,
// maskedBits) triples; returns the number of runs, which may exceed capacity
// (only the first capacity runs are written).
size_t runLengths(const uint64_t* entries, size_t count, uint64_t mask, uint64_t* triples, size_t capacity);

}  // namespace pagewalk
