// Settling a walk's pending runs once the kpage table is resolved, by the
// kernel's smaps rules (smaps_account(), smaps_page_accumulate()).
#include <algorithm>

#include "process_walk.h"
#include "walk_internal.h"

namespace pagewalk {

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

void ProcessWalk::settle(const KpageTable& table, bool withoutObserver,
                         const std::function<const uint64_t*(const RunBlock*)>& blockFigures) {
  const auto& blocks = pending_.blocks();
  const auto& blockFirst = pending_.blockFirst();
  size_t b = 0;
  for (size_t m = 0; m < mappings(); m++) {
    uint64_t* f = &figures_[m * kFields];
    size_t k = pendingBegin_[m];
    const size_t end = pendingBegin_[m + 1];
    while (k < end) {
      while (blockFirst[b + 1] <= k) b++;
      const size_t blockEnd = blockFirst[b + 1];
      // A block wholly inside this mapping: its figures, once for all walks.
      if (blockFigures && blockFirst[b] == k && blockEnd <= end) {
        const uint64_t* add = blockFigures(blocks[b].get());
        for (size_t i = 0; i < kFields; i++) f[i] += add[i];
        k = blockEnd;
        continue;
      }
      const std::vector<uint64_t>& runs = blocks[b]->runs;
      for (const size_t stop = std::min(end, blockEnd); k < stop; k++)
        settleRun(f, table, runs[k - blockFirst[b]], withoutObserver);
    }
  }
}

void ProcessWalk::settleRun(uint64_t* f, const KpageTable& table, uint64_t r, bool withoutObserver) {
  const uint64_t first = run::first(r), length = run::length(r);
  const FrameKind kind = run::kind(r);
  // Every frame of a run is wanted, so their dense indices run on too,
  // unless part of the run lies beyond the table (no struct page).
  const size_t firstIdx = table.indexOf(first);
  const bool inTable = firstIdx != KpageTable::kAbsent && first + length <= table.pfnLimit();
  for (uint64_t i = 0; i < length; i++)
    settlePage(f, table, inTable ? firstIdx + i : table.indexOf(first + i), withoutObserver, kind);
}

void ProcessWalk::settlePage(uint64_t* f, const KpageTable& table, size_t idx, bool withoutObserver,
                             FrameKind kind) {
  if (idx == KpageTable::kAbsent) return;  // no struct page: PFNMAP, device
  const uint32_t count = withoutObserver ? table.mapcountWithoutObserver(idx) : table.mapcount(idx);
  // Flags are read for every frame whose count is 0 (the zero page among
  // them) and every frame of unknown kind; the rest take them from the kind.
  uint32_t flags;
  if (table.flagsKnown(idx))
    flags = table.flags(idx);
  else
    flags = kind == kKindAnon ? 1u << kKpfAnon : kind == kKindShmem ? 1u << kKpfSwapBacked : 0;
  if (bit(flags, kKpfZeroPage)) {
    f[kZeroPages]++;
    return;
  }
  if (bit(flags, kKpfNoPage) || count == 0) return;
  if (bit(flags, kKpfHuge)) {
    f[kHugetlbPages]++;
    return;
  }
  accountPage(f, count, flags);
}

}  // namespace pagewalk
