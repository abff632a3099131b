#include "ram_census.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "large_vector.h"
#include "readonly_file.h"
#include "system_error.h"

namespace pagewalk {
namespace {

constexpr uint64_t bit(unsigned b) { return uint64_t{1} << b; }
// kpageflags bits (include/uapi/linux/kernel-page-flags.h), raw ones included.
constexpr uint64_t kLocked = bit(0), kUptodate = bit(3), kDirty = bit(4), kLru = bit(5), kSlab = bit(7),
                   kWriteback = bit(8), kBuddy = bit(10), kMmap = bit(11), kAnon = bit(12),
                   kSwapCache = bit(13), kSwapBacked = bit(14), kCompoundHead = bit(15),
                   kCompoundTail = bit(16), kHuge = bit(17), kHwPoison = bit(19), kNoPage = bit(20),
                   kOffline = bit(23), kZeroPage = bit(24), kPgTable = bit(26), kReserved = bit(32),
                   kMappedToDisk = bit(34), kPrivate = bit(35);
// A page-cache page off the LRU (isolated, or on its way there) still says so.
constexpr uint64_t kFileState = kLru | kUptodate | kDirty | kWriteback | kMappedToDisk | kPrivate | kLocked;

// preadEntries(), counting the bytes read.
size_t readEntries(const ReadOnlyFile& file, uint64_t pfn, size_t entries, uint64_t* out, uint64_t& bytes) {
  const size_t got = preadEntries(file, pfn, entries, out);
  bytes += got * sizeof(uint64_t);
  return got;
}

// Whether a frame's own mapcount must be read: KPF_MMAP says whether its
// folio is mapped, which for a single page is whether the page is; a page of
// a large folio (THP, large file folio) may be unmapped while others are.
bool needsMapcount(uint64_t f) { return (f & kMmap) && (f & (kCompoundHead | kCompoundTail)); }

// The class a frame's flags decide alone, or kFrameClasses when its
// mapcount decides (a page that may be mapped).
FrameClass classByFlags(uint64_t f) {
  if (f & kNoPage) return kFrameHole;
  if (f & kBuddy) return kFrameBuddy;
  if (f & kHuge) return kFrameHugetlb;
  if (f & kOffline) return kFrameOffline;
  if (f & kHwPoison) return kFrameHwPoison;
  // The zero page is PG_reserved; the huge zero page is not, but is as much
  // the kernel's.
  if (f & (kReserved | kZeroPage)) return kFrameReserved;
  if (f & kSlab) return kFrameSlab;
  if (f & kPgTable) return kFramePageTable;
  if (f == 0) return kFrameUnflagged;
  return kFrameClasses;
}

FrameClass classByMapping(uint64_t f, uint64_t mapcount) {
  if (mapcount > 0) {
    if (f & kAnon) return kFrameMappedAnon;
    if (f & kSwapBacked) return kFrameMappedShmem;
    return kFrameMappedFile;
  }
  if (f & kAnon) return (f & kSwapCache) ? kFrameSwapCache : kFrameAnonUnmapped;
  if (f & kSwapBacked) return kFrameShmem;
  if (f & kFileState) return kFrameFile;
  return kFrameOtherFlagged;
}

// The classes whose frames kpagecgroup names a memory cgroup for: pages
// charged one by one. Slab pages are charged per object (kpagecgroup reads
// 0 for them), unflagged and boot-time frames to nobody.
bool chargedClass(FrameClass c) {
  switch (c) {
    case kFramePageTable:
    case kFrameMappedAnon:
    case kFrameMappedShmem:
    case kFrameMappedFile:
    case kFrameSwapCache:
    case kFrameAnonUnmapped:
    case kFrameShmem:
    case kFrameFile:
    case kFrameOtherFlagged:
      return true;
    default:
      return false;
  }
}

// Reads the entries of the frames `wanted` among [pfn, pfn + n) into
// out[0..n), in runs that step over gaps of up to kGap frames: a pread costs
// about what 20-30 entries do, so a short gap is cheaper read than split.
// The other entries are left as they were.
template <class Wanted>
void readRuns(const ReadOnlyFile& file, uint64_t pfn, size_t n, uint64_t* out, uint64_t& bytes,
              Wanted wanted) {
  constexpr size_t kGap = 32;
  size_t i = 0;
  while (i < n) {
    while (i < n && !wanted(i)) i++;
    if (i == n) break;
    const size_t first = i;
    size_t last = i;  // last wanted frame of the run
    for (size_t j = i + 1; j < n && j <= last + kGap; j++)
      if (wanted(j)) last = j;
    const size_t got = readEntries(file, pfn + first, last + 1 - first, out + first, bytes);
    std::fill(out + first + got, out + last + 1, 0);
    i = last + 1;
  }
}

}  // namespace

CensusResult censusRange(const CensusPaths& paths, const std::vector<uint64_t>& ramRanges, uint64_t first,
                         uint64_t end, size_t chunkFrames) {
  CensusResult out;
  if (first >= end) return out;
  chunkFrames = std::max<size_t>(chunkFrames, 64);
  ReadOnlyFile flagsFile(paths.flags);
  ReadOnlyFile countFile(paths.count);
  std::unique_ptr<ReadOnlyFile> cgroupFile;
  if (!paths.cgroup.empty()) cgroupFile = std::make_unique<ReadOnlyFile>(paths.cgroup);
  LargeVector<uint64_t> flags(chunkFrames), counts(chunkFrames), cgroups(chunkFrames);
  std::vector<uint8_t> klass(chunkFrames);
  // The RAM range at or after the current frame.
  size_t range = 0;
  auto inRam = [&](uint64_t pfn) {
    if (ramRanges.empty()) return true;
    while (range + 1 < ramRanges.size() && ramRanges[range + 1] <= pfn) range += 2;
    return range + 1 < ramRanges.size() && ramRanges[range] <= pfn && pfn < ramRanges[range + 1];
  };
  std::vector<uint64_t>* lastCgroupCounts = nullptr;
  uint64_t lastCgroup = UINT64_MAX;
  for (uint64_t pfn = first; pfn < end;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunkFrames, end - pfn));
    const size_t got = readEntries(flagsFile, pfn, want, flags.data(), out.bytesRead);
    if (got == 0) break;
    // Flags decide most frames (KPF_MMAP whether a single page is mapped);
    // the mapcount is read only for the pages of mapped large folios, and
    // the cgroup only for the frames charged to one, in runs (free and never-used memory needs neither, and
    // is most of an idle machine).
    for (size_t i = 0; i < got; i++)
      klass[i] = static_cast<uint8_t>(inRam(pfn + i) ? classByFlags(flags[i]) : kFrameHole);
    readRuns(countFile, pfn, got, counts.data(), out.bytesRead,
             [&](size_t i) { return klass[i] == kFrameClasses && needsMapcount(flags[i]); });
    for (size_t i = 0; i < got; i++) {
      if (klass[i] != kFrameClasses) continue;
      const uint64_t mapcount = needsMapcount(flags[i]) ? counts[i] : (flags[i] & kMmap) ? 1 : 0;
      klass[i] = static_cast<uint8_t>(classByMapping(flags[i], mapcount));
    }
    if (cgroupFile)
      readRuns(*cgroupFile, pfn, got, cgroups.data(), out.bytesRead,
               [&](size_t i) { return chargedClass(static_cast<FrameClass>(klass[i])); });
    for (size_t i = 0; i < got; i++) {
      const auto c = static_cast<FrameClass>(klass[i]);
      out.frames[c]++;
      if (!cgroupFile || !chargedClass(c)) continue;
      const uint64_t ino = cgroups[i];
      if (ino != lastCgroup) {
        auto& slot = out.perCgroup[ino];
        if (slot.empty()) slot.assign(kFrameClasses, 0);
        lastCgroupCounts = &slot;
        lastCgroup = ino;
      }
      (*lastCgroupCounts)[c]++;
    }
    out.framesRead += got;
    pfn += got;
    if (got < want) break;  // max_pfn reached
  }
  return out;
}

}  // namespace pagewalk
