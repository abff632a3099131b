// Whole-space walks: the address space as one range, its populated
// stretches found with PAGEMAP_SCAN and handed out chunk by chunk to up to
// two threads (SpaceCursor).
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <mutex>

#include "page_size.h"
#include "process_walk.h"
#include "system_error.h"
#include "walk_internal.h"

namespace pagewalk {

uint64_t wholeSpaceEndPage() {
  static const uint64_t end = [] {
    uint64_t result = 0;
    try {
      PagemapFile self(static_cast<int>(::getpid()));
      ScanRequest req;
      req.startAddress = 0;
      req.endAddress = kPageSize;
      req.categoryAnyofMask = kScanPresent;
      req.returnMask = kScanPresent;
      uint64_t region[3];
      if (self.scan(req, region, 1).unsupported) return uint64_t{0};
      // The highest page whose entry reads: pagemap stops at TASK_SIZE.
      uint64_t lo = 1, hi = uint64_t{1} << 52, entry;
      while (hi - lo > 1) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (self.read(mid, 1, &entry) == 1)
          lo = mid;
        else
          hi = mid;
      }
      result = hi;
    } catch (...) {
      result = 0;
    }
    return result;
  }();
  return end;
}

// One thread of a whole-space walk: everything it reads is mapping 0.
void ProcessWalk::runSpace(SpaceCursor& c) {
  openPagemap();
  regions_.resize(kScanRegions * 3);
  for (;;) {
    uint64_t first = 0, count = 0;
    bool dense = false;
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      if (c.done || c.error) break;
      if (c.queued < c.queue.size() / 2) {
        first = c.queue[2 * c.queued];
        count = c.queue[2 * c.queued + 1] - first;
        c.queued++;
      } else if (c.page >= c.end) {
        c.done = true;
        break;
      } else if (c.sparse) {
        // Find the next populated stretches; empty windows double so that
        // an empty TiB costs a handful of calls.
        ScanRequest req;
        req.startAddress = c.page << kPageShift;
        req.endAddress = std::min(c.end, c.page + c.scanWindow) << kPageShift;
        req.categoryAnyofMask = kScanPresent | kScanSwapped;
        req.returnMask = kScanPresent | kScanSwapped;
        req.maxPages = kScanMaxPages;
        stats_.scanCalls++;
        const uint64_t began = monotonicNs();
        ScanResult r;
        try {
          r = pagemap_->scan(req, regions_.data(), kScanRegions);
        } catch (...) {
          c.error = std::current_exception();
          break;
        }
        timings_.scanNs += withoutPauses(monotonicNs() - began);
        if (r.unsupported) {
          // Checked by wholeSpaceEndPage(); reading a whole space instead
          // would take minutes, so say so.
          c.error =
              std::make_exception_ptr(SystemError(ENOTTY, "ioctl", pagemap_->path(), "no PAGEMAP_SCAN"));
          break;
        }
        const uint64_t windowEnd = req.endAddress >> kPageShift;
        const uint64_t walkEnd = r.regions ? std::max(r.walkEnd >> kPageShift, c.page + 1)
                                           : std::max(r.walkEnd >> kPageShift, windowEnd);
        c.queue.clear();
        c.queued = 0;
        uint64_t populated = 0, lastStretch = 0;
        for (size_t i = 0; i < r.regions;) {
          uint64_t a = regions_[3 * i] >> kPageShift, b = regions_[3 * i + 1] >> kPageShift;
          size_t j = i + 1;
          while (j < r.regions && (regions_[3 * j] >> kPageShift) - b <= kRegionMergeGapPages &&
                 (regions_[3 * j + 1] >> kPageShift) - a <= kChunkEntries) {
            b = regions_[3 * j + 1] >> kPageShift;
            j++;
          }
          for (uint64_t p = a; p < b; p = c.queue.back()) {
            c.queue.push_back(p);
            c.queue.push_back(c.chunkEnd(p, b));
          }
          populated += b - a;
          lastStretch = b == walkEnd ? b - a : 0;
          i = j;
        }
        const uint64_t window = walkEnd > c.page ? walkEnd - c.page : 1;
        stats_.pagesSkippedByScan += window - std::min(window, populated);
        // A scan that stopped early (kScanMaxPages) inside a long populated
        // stretch has most likely reached dense memory: reading on from here
        // saves scanning it once more (every scan call over 60,000 one-page
        // mappings costs as much as reading them). A wrong guess costs one
        // chunk read over a hole, after which the walk scans again.
        const bool stoppedInStretch = walkEnd < windowEnd && lastStretch * 2 >= kScanMaxPages;
        if (populated * 2 > window || stoppedInStretch) c.sparse = false;
        c.scanWindow = r.regions ? kChunkEntries * kSparseRatio
                                 : std::min<uint64_t>(c.scanWindow * 2, uint64_t{1} << 36);
        c.page = std::max(walkEnd, c.page + 1);
        continue;
      } else {
        first = c.page;
        c.page = c.chunkEnd(c.page, c.end);
        count = c.page - first;
        dense = true;
      }
    }
    size_t got = 0, populated = 0;
    try {
      // Chunks of equal address spaces give equal blocks of runs (readEntries()
      // may add a shared chunk's runs itself).
      pending_.fenceAndClose();
      const uint64_t cpuBegan = threadCpuNs();
      uint64_t* const entries = buffer_.data();
      got = readEntries(first, static_cast<size_t>(count), entries);
      if (got >= kSlowChunkEntries / 2) {
        const uint64_t ns = threadCpuNs() - cpuBegan;
        c.chunkEntries.store(ns > got * kSlowEntryNs ? kSlowChunkEntries : kSpaceChunkEntries,
                             std::memory_order_relaxed);
      }
      const uint64_t readDone = monotonicNs();
      noteHugeCandidates(first, entries, got);
      populated = consume(0, first, entries, got);
      timings_.consumeNs += monotonicNs() - readDone;
    } catch (...) {
      std::lock_guard<std::mutex> lock(c.mutex);
      if (!c.error) c.error = std::current_exception();
      break;
    }
    if (got < count || (dense && count >= kSlowChunkEntries && populated * kSparseRatio < count)) {
      std::lock_guard<std::mutex> lock(c.mutex);
      if (got < count) c.end = std::min(c.end, first + got);  // end of the user address space
      // A sparse full chunk: back to scanning from wherever the cursor is.
      else if (!c.sparse) {
        c.sparse = true;
        c.scanWindow = kChunkEntries * kSparseRatio;
      }
    }
  }
  scanAnonHuge(0);
  closePagemap();
  closeMaps();
  buffer_.release();
  LargeVector<uint64_t>().swap(regions_);
}

}  // namespace pagewalk
