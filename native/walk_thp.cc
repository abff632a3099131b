// PMD-mapped anonymous THP (smaps AnonHugePages): the 2 MiB stretches whose
// entries could be one are noted while reading, then asked of PAGEMAP_SCAN.
#include <algorithm>

#include "page_size.h"
#include "process_walk.h"
#include "walk_internal.h"

namespace pagewalk {

// A PMD-mapped THP shows in pagemap as 512 present entries of a 2 MiB
// aligned stretch whose PFNs run on from a 512-aligned PFN. Only such
// stretches are handed to PAGEMAP_SCAN to ask for PAGE_IS_HUGE: a HUGE scan
// of a whole mapping costs as much as reading its pagemap again (every PTE is
// classified), and on the event loop. Stretches cut by a read boundary are
// kept when their first present entry is in step. Hidden PFNs find nothing:
// such walks degrade to smaps_rollup figures anyway.
void ProcessWalk::noteHugeCandidates(uint64_t firstPage, const uint64_t* e, size_t n) {
  if (!options_.useScan || stats_.scanUnsupported || n == 0) return;
  const uint64_t endPage = firstPage + n;
  auto anonPfn = [](uint64_t entry) -> uint64_t {
    if (!(entry & kPresent) || (entry & kFileOrSharedAnon)) return 0;
    return entry & kPfnMask;
  };
  auto note = [&](uint64_t group) {
    if (hugeCandidates_.empty() || hugeCandidates_.back() != group) hugeCandidates_.push_back(group);
  };
  // A stretch only partly inside this read.
  auto partial = [&](uint64_t from, uint64_t to) {
    for (uint64_t p = from; p < to; p++) {
      const uint64_t pfn = anonPfn(e[p - firstPage]);
      if (!(e[p - firstPage] & kPresent)) continue;
      if (pfn != 0 && (pfn & (kPmdPages - 1)) == (p & (kPmdPages - 1))) note(p & ~(kPmdPages - 1));
      return;
    }
  };
  uint64_t p = (firstPage + kPmdPages - 1) & ~(kPmdPages - 1);
  if (p > firstPage) partial(firstPage, std::min(p, endPage));
  for (; p + kPmdPages <= endPage; p += kPmdPages) {
    const uint64_t first = anonPfn(e[p - firstPage]);
    if (first == 0 || (first & (kPmdPages - 1)) != 0) continue;
    if (anonPfn(e[p - firstPage + kPmdPages - 1]) == first + kPmdPages - 1) note(p);
  }
  if (p < endPage) partial(p, endPage);
}

void ProcessWalk::scanAnonHuge(size_t m) {
  if (hugeCandidates_.empty()) return;
  const uint64_t began = monotonicNs();
  const uint64_t mapStart = ranges_[2 * m] >> kPageShift;
  const uint64_t mapEnd = ranges_[2 * m + 1] >> kPageShift;
  uint64_t* f = &figures_[m * kFields];
  size_t i = 0;
  while (i < hugeCandidates_.size() && !stats_.scanUnsupported) {
    // Adjacent candidates are scanned in one call.
    uint64_t first = hugeCandidates_[i];
    uint64_t last = first + kPmdPages;
    while (++i < hugeCandidates_.size() && hugeCandidates_[i] == last) last += kPmdPages;
    uint64_t page = std::max(first, mapStart);
    const uint64_t end = std::min(last, mapEnd);
    while (page < end) {
      ScanRequest req;
      req.startAddress = page << kPageShift;
      req.endAddress = std::min(end, page + kHugeScanMaxPages) << kPageShift;
      req.categoryInverted = kScanFile | kScanPfnZero;
      req.categoryMask = kScanHuge | kScanPresent | kScanFile | kScanPfnZero;
      req.categoryAnyofMask = 0;
      req.returnMask = kScanHuge;
      stats_.scanCalls++;
      const ScanResult r = pagemap_->scan(req, regions_.data(), kScanRegions);
      if (r.unsupported) {
        stats_.scanUnsupported = true;
        break;
      }
      for (size_t k = 0; k < r.regions; k++)
        f[kAnonHugePages] += (regions_[3 * k + 1] - regions_[3 * k]) >> kPageShift;
      // Fewer regions than room for: the scan covered its whole range.
      page = r.regions < kScanRegions ? req.endAddress >> kPageShift
                                      : std::max(r.walkEnd >> kPageShift, page + 1);
    }
  }
  hugeCandidates_.clear();
  timings_.thpNs += withoutPauses(monotonicNs() - began);
}

}  // namespace pagewalk
