#include "tally.h"

#include <algorithm>
#include <array>
#include <exception>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace pagewalk {

namespace {

bool isNormalPage(const KpageTable& t, size_t idx) {
  const uint32_t f = t.flags(idx);
  return t.mapcount(idx) > 0 && !((f >> kKpfZeroPage) & 1u) && !((f >> kKpfNoPage) & 1u) &&
         !((f >> kKpfHuge) & 1u);
}

// Adds the time from `from` to the end of its scope to `sink`.
class AddElapsed {
 public:
  AddElapsed(uint64_t& sink, uint64_t from) : sink_(sink), from_(from) {}
  ~AddElapsed() { sink_ += monotonicNs() - from_; }
  AddElapsed(const AddElapsed&) = delete;
  AddElapsed& operator=(const AddElapsed&) = delete;

 private:
  uint64_t& sink_;
  uint64_t from_;
};

}  // namespace

void Tally::resolve() {
  bool anyPending = false;
  for (const auto& w : walks_) anyPending = anyPending || w->pendingPages() > 0;
  if (!anyPending) return;  // nothing to look up: never open the kpage files
  const uint64_t began = monotonicNs();
  table_ = std::make_unique<KpageTable>(paths_);
  {
    // Each block once, however many walks hold it; flags only where the
    // walk could not tell the frame's kind.
    std::unordered_set<const RunBlock*> seen;
    for (const auto& w : walks_) {
      for (const auto& b : w->pending().blocks()) {
        if (!seen.insert(b.get()).second) continue;
        for (uint64_t r : b->runs)
          table_->wantRange(run::first(r), run::length(r), run::kind(r) == kKindLookUp);
      }
    }
  }
  table_->resolve(extraThreadsAllowed());
  if (excludeObserver_) {
    table_->discountObserver(observerPfns_.data(), observerPfns_.size());
    LargeVector<uint64_t>().swap(observerPfns_);
  }
  const uint64_t resolved = monotonicNs();
  kpageNs_ += resolved - began;
  const AddElapsed settleClock(settleNs_, resolved);
  // Settling reads the table and writes only its own walk's figures: the
  // walks are split in two halves of about equal pending runs, one per core.
  // Each thread computes the figures of a block once, for all its walks
  // that hold the block.
  size_t total = 0;
  for (const auto& w : walks_) total += w->pending().runs();
  size_t split = 0, head = 0;
  while (split < walks_.size() && head * 2 < total) head += walks_[split++]->pending().runs();
  auto settleWalks = [&](size_t from, size_t to) {
    using Figures = std::array<uint64_t, kFields>;
    std::unordered_map<const RunBlock*, Figures> memo[2];
    for (size_t i = from; i < to; i++) {
      const bool without = withoutObserver(i);
      walks_[i]->settle(*table_, without, [&](const RunBlock* block) -> const uint64_t* {
        auto found = memo[without].find(block);
        if (found != memo[without].end()) return found->second.data();
        Figures& f = memo[without][block];
        f.fill(0);
        for (uint64_t r : block->runs) ProcessWalk::settleRun(f.data(), *table_, r, without);
        return f.data();
      });
    }
  };
  if (walks_.size() < 2 || split >= walks_.size() || total < (size_t{1} << 16) || !extraThreadsAllowed()) {
    settleWalks(0, walks_.size());
    return;
  }
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      settleWalks(split, walks_.size());
    } catch (...) {
      error = std::current_exception();
    }
  });
  try {
    settleWalks(0, split);
  } catch (...) {
    worker.join();
    throw;
  }
  worker.join();
  if (error) std::rethrow_exception(error);
}

void Tally::groups(const int32_t* groupOf, size_t groups, uint64_t* out) const {
  std::fill(out, out + groups * kGroupFields, 0);
  // Mappings of each distinct PFN by the group's processes, compared with the
  // kernel's mapcount: equal means no one outside the group maps the page.
  LargeVector<uint32_t> inGroup(table_ ? table_->size() : 0);
  for (size_t g = 0; g < groups; g++) {
    std::fill(inGroup.begin(), inGroup.end(), 0);
    std::unordered_map<const RunBlock*, uint32_t> holders;
    uint64_t* o = out + g * kGroupFields;
    // A group that holds the observer's own walk counts its mappings itself.
    const bool observerOutside = excludeObserver_ && (observerWalk_ >= walks_.size() ||
                                                      groupOf[observerWalk_] != static_cast<int32_t>(g));
    for (size_t w = 0; w < walks_.size(); w++) {
      if (groupOf[w] != static_cast<int32_t>(g)) continue;
      // Exclusive anonymous pages settled without lookup are mapped once.
      o[kGroupOnlyPages] += walks_[w]->exclusiveAnonPages();
      o[kGroupDistinctPages] += walks_[w]->exclusiveAnonPages();
      if (!table_) continue;
      for (const auto& b : walks_[w]->pending().blocks()) holders[b.get()]++;
    }
    // Each block once, counted as often as the group's walks hold it. A
    // run's frames are all wanted: their indices run on from the first's.
    for (const auto& [block, times] : holders) {
      for (uint64_t r : block->runs) {
        const uint64_t first = run::first(r), length = run::length(r);
        const size_t idx = table_->indexOf(first);
        if (idx != KpageTable::kAbsent && first + length <= table_->pfnLimit()) {
          for (uint64_t i = 0; i < length; i++) inGroup[idx + i] += times;
          continue;
        }
        for (uint64_t i = 0; i < length; i++) {
          const size_t at = table_->indexOf(first + i);
          if (at != KpageTable::kAbsent) inGroup[at] += times;
        }
      }
    }
    holders.clear();
    for (size_t idx = 0; idx < inGroup.size(); idx++) {
      if (!inGroup[idx] || !isNormalPage(*table_, idx)) continue;
      o[kGroupDistinctPages]++;
      // ">=": the mapcount read can trail a PTE seen moments earlier.
      const uint32_t mapcount =
          observerOutside ? table_->mapcountWithoutObserver(idx) : table_->mapcount(idx);
      if (inGroup[idx] >= mapcount)
        o[kGroupOnlyPages]++;
      else
        o[kGroupSharedOutside]++;
    }
  }
}

void Tally::sharingMatrix(uint64_t* out) const {
  const size_t n = walks_.size();
  std::fill(out, out + n * n, 0);
  for (size_t w = 0; w < n; w++) out[w * n + w] += walks_[w]->exclusiveAnonPages();
  if (!table_) return;
  // Mappers of each distinct PFN in CSR form, each process once per page.
  LargeVector<uint32_t> lastSeen(table_->size(), UINT32_MAX);
  LargeVector<uint32_t> degree(table_->size() + 1, 0);
  for (size_t w = 0; w < n; w++) {
    walks_[w]->forEachPendingPfn([&](uint64_t pfn) {
      const size_t idx = table_->indexOf(pfn);
      if (idx == KpageTable::kAbsent || lastSeen[idx] == w || !isNormalPage(*table_, idx)) return;
      lastSeen[idx] = static_cast<uint32_t>(w);
      degree[idx + 1]++;
    });
  }
  for (size_t i = 1; i < degree.size(); i++) degree[i] += degree[i - 1];
  LargeVector<uint32_t> mappers(degree.back());
  LargeVector<uint32_t> fill(degree.begin(), degree.end() - 1);
  std::fill(lastSeen.begin(), lastSeen.end(), UINT32_MAX);
  for (size_t w = 0; w < n; w++) {
    walks_[w]->forEachPendingPfn([&](uint64_t pfn) {
      const size_t idx = table_->indexOf(pfn);
      if (idx == KpageTable::kAbsent || lastSeen[idx] == w || !isNormalPage(*table_, idx)) return;
      lastSeen[idx] = static_cast<uint32_t>(w);
      mappers[fill[idx]++] = static_cast<uint32_t>(w);
    });
  }
  for (size_t idx = 0; idx < table_->size(); idx++) {
    for (uint32_t a = degree[idx]; a < degree[idx + 1]; a++) {
      const uint32_t i = mappers[a];
      out[i * n + i]++;
      for (uint32_t b = a + 1; b < degree[idx + 1]; b++) {
        const uint32_t j = mappers[b];
        out[i * n + j]++;
        out[j * n + i]++;
      }
    }
  }
}

void Tally::approximateSwapPss() {
  const uint64_t began = monotonicNs();
  const AddElapsed settleClock(settleNs_, began);
  std::unordered_map<uint64_t, uint32_t> slotUsers;
  for (const auto& w : walks_)
    for (uint64_t e : w->swapEntries()) slotUsers[e]++;
  constexpr uint64_t kFullPss = uint64_t{4096} << 12;
  for (const auto& w : walks_) {
    auto& fig = w->figures();
    const auto& begin = w->swapBegin();
    for (size_t m = 0; m < w->mappings(); m++) {
      uint64_t sum = 0;
      for (size_t k = begin[m]; k < begin[m + 1]; k++) sum += kFullPss / slotUsers[w->swapEntries()[k]];
      fig[m * kFields + kSwapPssFixed] = sum;
    }
  }
}

}  // namespace pagewalk
