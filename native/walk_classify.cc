// Classifying the entries read (consume): exclusive anonymous pages settled
// on the spot, swap slots counted, every other present page kept as a
// pending run for the kpage lookups.
#include <algorithm>

#include "process_walk.h"
#include "walk_internal.h"

namespace pagewalk {

namespace {

// Dense private memory is one long stretch of present, exclusive, anonymous
// entries: blocks of them are recognised with one OR of XORs per block
// instead of a branch per entry (classify and the count of populated
// entries took 3.1 ms of thread time for 2M such entries).
constexpr size_t kAnonBlock = 64;

bool allExclusiveAnon(const uint64_t* e) {
  constexpr uint64_t mask = kPresent | kExclusive | kFileOrSharedAnon;
  constexpr uint64_t want = kPresent | kExclusive;
  // Four independent accumulators: one OR chain would take a cycle per entry.
  uint64_t d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  for (size_t k = 0; k < kAnonBlock; k += 4) {
    d0 |= (e[k] & mask) ^ want;
    d1 |= (e[k + 1] & mask) ^ want;
    d2 |= (e[k + 2] & mask) ^ want;
    d3 |= (e[k + 3] & mask) ^ want;
  }
  return (d0 | d1 | d2 | d3) == 0;
}

}  // namespace

size_t ProcessWalk::consume(size_t m, uint64_t firstPage, const uint64_t* entries, size_t n) {
  uint64_t* f = &figures_[m * kFields];
  const bool fastAnon = !options_.lookUpExclusiveAnon;
  // The bits that decide what happens to a present entry (besides its PFN):
  // entries that agree on them and continue each other's PFNs join one run.
  const uint64_t sameHandling = kPresent | kFileOrSharedAnon | (fastAnon ? kExclusive : 0);
  uint64_t present = 0, exclusiveAnon = 0, swapped = 0, swapFormat = 0;
  size_t i = 0;
  while (i < n) {
    if (fastAnon && i % kAnonBlock == 0 && n - i >= kAnonBlock && allExclusiveAnon(entries + i)) {
      present += kAnonBlock;
      exclusiveAnon += kAnonBlock;
      i += kAnonBlock;
      continue;
    }
    const uint64_t e = entries[i];
    if (e & kPresent) {
      if (fastAnon && (e & (kExclusive | kFileOrSharedAnon)) == kExclusive) {
        // Exclusive bit 56 is the kernel's own mapcount == 1 test and an
        // anonymous page without KSM or hugetlb is always a normal page.
        present++;
        exclusiveAnon++;
        i++;
        continue;
      }
      const uint64_t pfn = e & kPfnMask;
      if (pfn == 0) {
        stats_.sawHiddenPfn = true;
        present++;
        f[kUnresolvedPages]++;
        i++;
        continue;
      }
      stats_.pfnsVisible = true;
      // Whatever pagemap and the mapping decide needs no kpageflags read.
      // The kind holds for the entries that follow up to the end of the
      // mapping it was found from (fileKind), or of the chunk.
      FrameKind kind;
      size_t kindEnd = n;
      if (options_.lookUpAllFlags) {
        kind = kKindLookUp;
      } else if (!(e & kFileOrSharedAnon)) {
        kind = options_.lookUpAnonFlags ? kKindLookUp : kKindAnon;
      } else {
        const uint64_t page = firstPage + i;
        kind = fileKind(page);
        // Outside the cached mapping (no PROCMAP_QUERY answer) every page asks again.
        kindEnd = page >= kindStart_ && page < kindEnd_ ? std::min<uint64_t>(n, kindEnd_ - firstPage) : i + 1;
      }
      // A PFN beyond the run field is device memory (no struct page): any
      // PFN at or past the kpage files' end is skipped alike, each frame on
      // its own.
      if (pfn >= run::kPfnMask) {
        present++;
        pending_.add(run::kPfnMask, kind);
        i++;
        continue;
      }
      const size_t stop = static_cast<size_t>(std::min<uint64_t>(kindEnd, i + (run::kPfnMask - pfn) + 1));
      const uint64_t handling = e & sameHandling;
      size_t j = i + 1;
      while (j < stop && (entries[j] & sameHandling) == handling && (entries[j] & kPfnMask) == pfn + (j - i))
        j++;
      present += j - i;
      pending_.addRun(pfn, j - i, kind);
      i = j;
      continue;
    }
    if (e & kSwapped) {
      swapFormat++;
      if (isSwapSlot(e)) {
        swapped++;
        if (options_.collectSwapEntries) swapEntries_.push_back(e & kPfnMask);
      }
    }
    i++;
  }
  const size_t populated = static_cast<size_t>(present + swapFormat + blockPresent_);
  f[kPresentPages] += present + blockPresent_;
  blockPresent_ = 0;
  f[kSwapPages] += swapped;
  f[kRssPages] += exclusiveAnon;
  f[kPrivatePages] += exclusiveAnon;
  f[kAnonymousPages] += exclusiveAnon;
  f[kPssFixed] += exclusiveAnon * kFullPss;
  f[kPssAnonFixed] += exclusiveAnon * kFullPss;
  exclusiveAnonPages_ += exclusiveAnon;
  return populated;
}

}  // namespace pagewalk
