#include "process_walk.h"

#include <algorithm>

#include "pagemap_entry.h"

namespace pagewalk {

namespace {

constexpr uint64_t kPageShift = 12;
constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
constexpr unsigned kPssShift = 12;
constexpr uint64_t kFullPss = kPageSize << kPssShift;
// 64K entries (512 KiB) per pread: far past the point where syscall cost
// matters, small enough to stay in L2 while it is consumed.
constexpr size_t kChunkEntries = 64 * 1024;
constexpr size_t kScanRegions = 1024;
// A chunk with fewer populated entries than 1/kSparseRatio of its length
// switches the walk to PAGEMAP_SCAN; a scanned window denser than 1/2 switches
// back to plain reads.
constexpr size_t kSparseRatio = 16;
// Populated regions closer than this are read in one pread.
constexpr uint64_t kRegionMergeGapPages = 32;

inline bool bit(uint32_t flags, unsigned b) { return (flags >> b) & 1u; }

// pagemap marks every non-present swap-format PTE as swapped, but only real
// swap slots count in smaps Swap: guard markers, uffd-wp markers, migration
// and device entries use the swap types above MAX_SWAPFILES (at least 24 on
// any configuration). With PFNs hidden the type reads 0 and only the guard
// bit can tell.
constexpr uint64_t kFirstNonSwapType = 24;
inline bool isSwapSlot(uint64_t e) { return !(e & kGuard) && (e & kSwapTypeMask) < kFirstNonSwapType; }

}  // namespace

void accountPage(uint64_t* f, uint32_t mapcount, uint32_t kpageFlags) {
  const uint64_t pss = mapcount < 2 ? kFullPss : kFullPss / mapcount;
  f[kRssPages]++;
  f[kPssFixed] += pss;
  if (mapcount < 2)
    f[kPrivatePages]++;
  else
    f[kSharedPages]++;
  if (bit(kpageFlags, kKpfAnon)) {
    f[kAnonymousPages]++;
    f[kPssAnonFixed] += pss;
  } else if (bit(kpageFlags, kKpfSwapBacked)) {
    f[kPssShmemFixed] += pss;
  } else {
    f[kPssFileFixed] += pss;
  }
  if (bit(kpageFlags, kKpfKsm)) f[kKsmPages]++;
}

ProcessWalk::ProcessWalk(int pid, std::vector<uint64_t> ranges, WalkOptions options)
    : pid_(pid), ranges_(std::move(ranges)), options_(options) {
  figures_.assign(mappings() * kFields, 0);
  pendingBegin_.assign(mappings() + 1, 0);
  swapBegin_.assign(mappings() + 1, 0);
}

void ProcessWalk::run() {
  // Kernel threads have no mappings, and their pagemap cannot even be
  // opened (ESRCH): nothing to walk is a walk of zeros, not an error.
  if (mappings() == 0) return;
  pagemap_ = std::make_unique<PagemapFile>(pid_);
  buffer_.resize(kChunkEntries);
  if (options_.useScan) regions_.resize(kScanRegions * 3);
  for (size_t m = 0; m < mappings(); m++) {
    pendingBegin_[m] = pending_.size();
    swapBegin_[m] = swapEntries_.size();
    walkMapping(m);
  }
  pendingBegin_[mappings()] = pending_.size();
  swapBegin_[mappings()] = swapEntries_.size();
  pagemap_.reset();
  // The buffers are per walk; a long-lived snapshot keeps only the figures.
  std::vector<uint64_t>().swap(buffer_);
  std::vector<uint64_t>().swap(regions_);
}

void ProcessWalk::walkMapping(size_t m) {
  uint64_t page = ranges_[2 * m] >> kPageShift;
  const uint64_t end = ranges_[2 * m + 1] >> kPageShift;
  bool sparse = false;
  while (page < end) {
    if (sparse && !stats_.scanUnsupported) {
      ScanRequest req;
      req.startAddress = page << kPageShift;
      req.endAddress = std::min(end, page + kChunkEntries * kSparseRatio) << kPageShift;
      req.categoryAnyofMask = kScanPresent | kScanSwapped;
      req.returnMask = kScanPresent | kScanSwapped;
      req.maxPages = kChunkEntries;
      stats_.scanCalls++;
      const ScanResult r = pagemap_->scan(req, regions_.data(), kScanRegions);
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
          const size_t got = pagemap_->read(p, n, buffer_.data());
          stats_.readCalls++;
          stats_.entriesRead += got;
          consume(m, buffer_.data(), got);
          if (got < n) return;
          p += n;
        }
        populated += last - first;
        i = j;
      }
      const uint64_t window = walkEnd > page ? walkEnd - page : 1;
      stats_.pagesSkippedByScan += window - populated;
      if (populated * 2 > window) sparse = false;
      page = std::max(walkEnd, page + 1);
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end - page, kChunkEntries));
    const size_t got = pagemap_->read(page, n, buffer_.data());
    stats_.readCalls++;
    stats_.entriesRead += got;
    size_t populated = 0;
    for (size_t i = 0; i < got; i++) populated += (buffer_[i] & (kPresent | kSwapped)) != 0;
    consume(m, buffer_.data(), got);
    if (got < n) return;  // end of the user address space ([vsyscall])
    page += n;
    // Only a full chunk is evidence of sparseness worth a switch.
    if (options_.useScan && n == kChunkEntries && populated * kSparseRatio < n) sparse = true;
  }
}

void ProcessWalk::consume(size_t m, const uint64_t* entries, size_t n) {
  uint64_t* f = &figures_[m * kFields];
  const bool fastAnon = !options_.lookUpExclusiveAnon;
  uint64_t present = 0, exclusiveAnon = 0, swapped = 0;
  for (size_t i = 0; i < n; i++) {
    const uint64_t e = entries[i];
    if (e & kPresent) {
      present++;
      if (fastAnon && (e & (kExclusive | kFileOrSharedAnon)) == kExclusive) {
        // Exclusive bit 56 is the kernel's own mapcount == 1 test and an
        // anonymous page without KSM or hugetlb is always a normal page.
        exclusiveAnon++;
        continue;
      }
      const uint64_t pfn = e & kPfnMask;
      if (pfn == 0) {
        stats_.sawHiddenPfn = true;
        f[kUnresolvedPages]++;
        continue;
      }
      stats_.pfnsVisible = true;
      pending_.push_back(pfn);
    } else if ((e & kSwapped) && isSwapSlot(e)) {
      swapped++;
      if (options_.collectSwapEntries) swapEntries_.push_back(e & kPfnMask);
    }
  }
  f[kPresentPages] += present;
  f[kSwapPages] += swapped;
  f[kRssPages] += exclusiveAnon;
  f[kPrivatePages] += exclusiveAnon;
  f[kAnonymousPages] += exclusiveAnon;
  f[kPssFixed] += exclusiveAnon * kFullPss;
  f[kPssAnonFixed] += exclusiveAnon * kFullPss;
  exclusiveAnonPages_ += exclusiveAnon;
}

void ProcessWalk::settle(const KpageTable& table) {
  for (size_t m = 0; m < mappings(); m++) {
    uint64_t* f = &figures_[m * kFields];
    for (size_t k = pendingBegin_[m]; k < pendingBegin_[m + 1]; k++) {
      const size_t idx = table.indexOf(pending_[k]);
      if (idx == KpageTable::kAbsent) continue;  // no struct page: PFNMAP, device
      const uint32_t flags = table.flags(idx);
      const uint32_t count = table.mapcount(idx);
      if (bit(flags, kKpfZeroPage)) {
        f[kZeroPages]++;
        continue;
      }
      if (bit(flags, kKpfNoPage) || count == 0) continue;
      if (bit(flags, kKpfHuge)) {
        f[kHugetlbPages]++;
        continue;
      }
      accountPage(f, count, flags);
    }
  }
}

void ProcessWalk::releasePending() {
  std::vector<uint64_t>().swap(pending_);
  std::vector<uint64_t>().swap(swapEntries_);
}

}  // namespace pagewalk
