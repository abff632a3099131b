// Per-mapping walks: each mapping read in chunks, switching to PAGEMAP_SCAN
// over sparse stretches.
#include <algorithm>

#include "page_size.h"
#include "process_walk.h"
#include "walk_internal.h"

namespace pagewalk {

// Walks mappings [0, count) on this thread.
void ProcessWalk::runSerial(size_t count) {
  openPagemap();
  if (options_.useScan) regions_.resize(kScanRegions * 3);
  for (size_t m = 0; m < count; m++) {
    pendingBegin_[m] = pending_.runs();
    pending_.fence();  // no run spans two mappings
    swapBegin_[m] = swapEntries_.size();
    walkMapping(m);
    scanAnonHuge(m);
  }
  for (size_t m = count; m <= mappings(); m++) {
    pendingBegin_[m] = pending_.runs();
    swapBegin_[m] = swapEntries_.size();
  }
  closePagemap();
  closeMaps();
  // The buffers are per walk; a long-lived snapshot keeps only the figures
  // (the entry buffer goes back to the pool for the next walk).
  buffer_.release();
  LargeVector<uint64_t>().swap(regions_);
}

void ProcessWalk::walkMapping(size_t m) {
  uint64_t page = ranges_[2 * m] >> kPageShift;
  const uint64_t end = ranges_[2 * m + 1] >> kPageShift;
  bool sparse = false;
  // The scan window doubles while scans find nothing, so an empty TiB costs
  // a handful of ioctls rather than one per 4 GiB.
  uint64_t scanWindow = kChunkEntries * kSparseRatio;
  while (page < end) {
    if (sparse && !stats_.scanUnsupported) {
      ScanRequest req;
      req.startAddress = page << kPageShift;
      req.endAddress = std::min(end, page + scanWindow) << kPageShift;
      req.categoryAnyofMask = kScanPresent | kScanSwapped;
      req.returnMask = kScanPresent | kScanSwapped;
      req.maxPages = kScanMaxPages;
      stats_.scanCalls++;
      const uint64_t scanBegan = monotonicNs();
      const ScanResult r = pagemap_->scan(req, regions_.data(), kScanRegions);
      timings_.scanNs += withoutPauses(monotonicNs() - scanBegan);
      if (r.unsupported) {
        stats_.scanUnsupported = true;
        continue;
      }
      const uint64_t windowEnd = req.endAddress >> kPageShift;
      // With no region found the walk covered the whole window.
      const uint64_t walkEnd = r.regions ? std::max(r.walkEnd >> kPageShift, page + 1)
                                         : std::max(r.walkEnd >> kPageShift, windowEnd);
      uint64_t populated = 0;
      size_t i = 0;
      while (i < r.regions) {
        uint64_t first = regions_[3 * i] >> kPageShift;
        uint64_t last = regions_[3 * i + 1] >> kPageShift;
        size_t j = i + 1;
        while (j < r.regions && (regions_[3 * j] >> kPageShift) - last <= kRegionMergeGapPages &&
               (regions_[3 * j + 1] >> kPageShift) - first <= kChunkEntries) {
          last = regions_[3 * j + 1] >> kPageShift;
          j++;
        }
        for (uint64_t p = first; p < last;) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(last - p, kChunkEntries));
          const size_t got = readEntries(p, n, buffer_.data());
          const uint64_t readDone = monotonicNs();
          noteHugeCandidates(p, buffer_.data(), got);
          consume(m, p, buffer_.data(), got);
          timings_.consumeNs += monotonicNs() - readDone;
          if (got < n) return;
          p += n;
        }
        populated += last - first;
        i = j;
      }
      const uint64_t window = walkEnd > page ? walkEnd - page : 1;
      stats_.pagesSkippedByScan += window - populated;
      if (populated * 2 > window) sparse = false;
      scanWindow =
          r.regions ? kChunkEntries * kSparseRatio : std::min<uint64_t>(scanWindow * 2, uint64_t{1} << 36);
      page = std::max(walkEnd, page + 1);
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end - page, kChunkEntries));
    uint64_t* const entries = buffer_.data();
    const size_t got = readEntries(page, n, entries);
    const uint64_t readDone = monotonicNs();
    noteHugeCandidates(page, entries, got);
    const size_t populated = consume(m, page, entries, got);
    timings_.consumeNs += monotonicNs() - readDone;
    if (got < n) return;  // end of the user address space ([vsyscall])
    page += n;
    // Only a full chunk is evidence of sparseness worth a switch.
    if (options_.useScan && n == kChunkEntries && populated * kSparseRatio < n) sparse = true;
  }
}

}  // namespace pagewalk
