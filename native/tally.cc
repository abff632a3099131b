#include "tally.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <exception>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "extra_thread.h"

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
  const AddThreadCpu cpu(cpuNs_);
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
  table_->index();
  FrameCounts before;
  if (excludeObserver_) {
    bool hidden = false;
    before = observerFrames(hidden);
    // Without its own PFNs the observer cannot tell its frames: the kernel's view.
    if (hidden) excludeObserver_ = false;
  }
  table_->resolve(extraThreadsAllowed());
  cpuNs_ += table_->workerCpuNs();
  if (excludeObserver_) resolveObserver(before);
  checkRebuiltFrames();
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
  uint64_t workerCpu = 0;
  std::thread worker = tryStartThread([&] {
    const AddThreadCpu cpu(workerCpu);
    try {
      settleWalks(split, walks_.size());
    } catch (...) {
      error = std::current_exception();
    }
  });
  if (!worker.joinable()) {
    settleWalks(0, walks_.size());
    return;
  }
  try {
    settleWalks(0, split);
  } catch (...) {
    worker.join();
    throw;
  }
  worker.join();
  cpuNs_ += workerCpu;
  if (error) std::rethrow_exception(error);
}

// A frame another walk read, taken by a later walk for a present page of a
// shared file mapping at the same file offset, is the page it maps only if
// the file's page at that offset has stayed the same frame in between. When
// it changed (truncated and refilled, reclaimed and faulted in again,
// migrated, shmem swapped out and in), the kernel first unmapped the
// recorded frame from every process, the recording one included, and then
// freed it or gave it to other use. So the frame's kpagecount, read for
// every pending frame anyway, must now be at least the number of PTEs the
// walks of this tally claim for it (the recorder's claim and the later
// walk's are both stale, so a frame freed, or reused as a page mapped once,
// falls short); where its kpageflags were read too (kinds looked up, or
// hugetlb pages on the machine), it must be a mapped page-cache page of the
// mapping's kind: not free, anonymous, slab or a page table, swap-backed
// exactly for shmem. (Reading the flags of every rebuilt frame only for
// this cost snapshot() of 16 backends of a 1 GiB pool 16,000 more preads:
// 207 ms of kpage time against 31-95.) A frame that fails is stale, and
// the walk that took it is measured again by reading its own pagemap
// (lib/pipeline.ts). What passes: a frame that became another page mapped
// by at least as many PTEs as claim it, most often a page of the same file
// (the allocator hands a freed frame out again first), which changes no
// figure. The check costs about 12-16 ms for 16 backends of a 1 GiB pool
// (262,000 distinct frames, 4.2 million pending pages). docs/reliability.md.
void Tally::checkRebuiltFrames() {
  staleFrames_.assign(walks_.size(), 0);
  claims_ = ZeroArray<uint32_t>();
  bool any = false;
  for (const auto& w : walks_) any = any || w->rebuilt().runs() > 0;
  if (!any) return;
  // The dense table index of each frame of a run, one lookup per run: every
  // frame of a run is wanted, so their indices run on (as in settleRun()).
  auto forEachIndex = [&](uint64_t r, auto fn) {
    const uint64_t first = run::first(r), length = run::length(r);
    const size_t firstIdx = table_->indexOf(first);
    const bool inTable = firstIdx != KpageTable::kAbsent && first + length <= table_->pfnLimit();
    for (uint64_t i = 0; i < length; i++) fn(inTable ? firstIdx + i : table_->indexOf(first + i));
  };
  // PTEs the walks claim for each frame: every block once, times its holders.
  std::unordered_map<const RunBlock*, uint32_t> holders;
  for (const auto& w : walks_)
    for (const auto& b : w->pending().blocks()) holders[b.get()]++;
  claims_ = ZeroArray<uint32_t>(table_->size());
  ZeroArray<uint32_t>& claims = claims_;
  for (const auto& [block, times] : holders)
    for (uint64_t r : block->runs)
      forEachIndex(r, [&](size_t idx) {
        if (idx != KpageTable::kAbsent) claims[idx] += times;
      });
  constexpr uint32_t kNotMappedPageCache = (1u << kKpfNoPage) | (1u << kKpfBuddy) | (1u << kKpfAnon) |
                                           (1u << kKpfSlab) | (1u << kKpfPgtable) | (1u << kKpfZeroPage) |
                                           (1u << kKpfHuge);
  // Each block of rebuilt runs once, however many walks hold it.
  std::unordered_map<const RunBlock*, uint64_t> staleIn;
  for (size_t w = 0; w < walks_.size(); w++) {
    for (const auto& block : walks_[w]->rebuilt().blocks()) {
      auto found = staleIn.find(block.get());
      if (found == staleIn.end()) {
        uint64_t stale = 0;
        for (uint64_t r : block->runs) {
          const bool shmem = run::kind(r) == kKindShmem;
          forEachIndex(r, [&](size_t idx) {
            if (idx == KpageTable::kAbsent) {
              stale++;
              return;
            }
            bool bad = table_->mapcount(idx) < std::max<uint32_t>(claims[idx], 1);
            if (!bad && table_->flagsKnown(idx)) {
              const uint32_t f = table_->flags(idx);
              bad = !((f >> kKpfMmap) & 1u) || (f & kNotMappedPageCache) != 0 ||
                    (((f >> kKpfSwapBacked) & 1u) != 0) != shmem;
            }
            stale += bad;
          });
        }
        found = staleIn.emplace(block.get(), stale).first;
      }
      staleFrames_[w] += found->second;
    }
  }
}

Tally::FrameCounts Tally::observerFrames(bool& hidden) {
  ProcessWalk self(static_cast<int>(::getpid()), observer_.ranges, observer_.options);
  self.run();
  observerReads_++;
  FrameCounts out;
  hidden = self.stats().sawHiddenPfn && !self.stats().pfnsVisible;
  if (hidden) return out;
  std::vector<size_t> indices;
  indices.reserve(self.pendingPages());
  // Frames no measured process maps are not in the table: they change no figure.
  self.forEachPendingPfn([&](uint64_t pfn) {
    const size_t idx = table_->indexOf(pfn);
    if (idx != KpageTable::kAbsent) indices.push_back(idx);
  });
  std::sort(indices.begin(), indices.end());
  for (size_t idx : indices) {
    if (!out.empty() && out.back().first == idx)
      out.back().second++;
    else
      out.emplace_back(idx, 1);
  }
  return out;
}

namespace {

uint32_t timesMapped(const Tally::FrameCounts& frames, size_t idx) {
  const auto it = std::lower_bound(frames.begin(), frames.end(), std::make_pair(idx, uint32_t{0}));
  return it != frames.end() && it->first == idx ? it->second : 0;
}

// Indices whose counts differ between two reads (absent: mapped 0 times).
std::vector<size_t> differing(const Tally::FrameCounts& a, const Tally::FrameCounts& b) {
  std::vector<size_t> out;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      out.push_back(a[i++].first);
    } else if (i == a.size() || b[j].first < a[i].first) {
      out.push_back(b[j++].first);
    } else {
      if (a[i].second != b[j].second) out.push_back(a[i].first);
      i++;
      j++;
    }
  }
  return out;
}

}  // namespace

// The observer keeps running while the counts are read: a young process
// faults in pages of libc and of its own binary, a collector unmaps. A
// frame's count includes the observer's mappings of the moment it was read,
// so the observer's pagemap is read before and after the counts: where the
// two reads agree, that is how often it mapped the frame when its count was
// read. Frames where they differ (mapped or unmapped meanwhile) have their
// count read again between two further reads of the observer's pagemap,
// until the reads around it agree. (Reads that agree cannot tell a frame
// the observer mapped and unmapped again in between.) A frame still moving
// after kObserverRereads re-reads is taken off only the smaller of the two
// readings around its last count: its figure then errs towards the
// kernel's view, never beyond the observer-free one.
void Tally::resolveObserver(const FrameCounts& before) {
  constexpr unsigned kObserverRereads = 8;
  bool hidden = false;
  const FrameCounts after = observerFrames(hidden);
  if (hidden) {  // its PFNs hidden since the first read: the kernel's view
    excludeObserver_ = false;
    return;
  }
  SparseZeros<uint32_t> perFrame(table_->size());
  for (const auto& [idx, times] : after) perFrame.set(idx, times);
  std::vector<size_t> moving = differing(before, after);
  // The readings just before and just after each moving frame's latest count.
  std::vector<uint32_t> earlier(moving.size()), latest(moving.size());
  for (size_t k = 0; k < moving.size(); k++) {
    earlier[k] = timesMapped(before, moving[k]);
    latest[k] = timesMapped(after, moving[k]);
  }
  for (unsigned pass = 0; pass < kObserverRereads && !moving.empty(); pass++) {
    observerRereadFrames_ += moving.size();
    table_->reread(moving);
    const FrameCounts next = observerFrames(hidden);
    if (hidden) break;
    size_t kept = 0;
    for (size_t k = 0; k < moving.size(); k++) {
      const uint32_t now = timesMapped(next, moving[k]);
      perFrame.set(moving[k], now);
      if (now == latest[k]) continue;  // unchanged around the re-read: settled
      moving[kept] = moving[k];
      earlier[kept] = latest[k];
      latest[kept] = now;
      kept++;
    }
    moving.resize(kept);
    earlier.resize(kept);
    latest.resize(kept);
  }
  for (size_t k = 0; k < moving.size(); k++) perFrame.set(moving[k], std::min(earlier[k], latest[k]));
  observerUnsettledFrames_ = moving.size();
  table_->setObserverMappings(std::move(perFrame));
}

void Tally::groups(const int32_t* groupOf, size_t groups, uint64_t* out) const {
  std::fill(out, out + groups * kGroupFields, 0);
  const size_t frames = table_ ? table_->size() : 0;
  // Marks a frame the observer's own walk saw, without counting a mapping.
  constexpr uint32_t kObserverSaw = uint32_t{1} << 31;
  for (size_t g = 0; g < groups; g++) {
    uint64_t* o = out + g * kGroupFields;
    // A group that holds the observer's own walk counts the observer's
    // mappings as they were when the counts were read, not as its walk saw
    // them earlier: the walk marks the frames, the observer's reads count.
    const bool observerInside = excludeObserver_ && observerWalk_ < walks_.size() &&
                                groupOf[observerWalk_] == static_cast<int32_t>(g);
    // The group of every walk maps each frame as often as all the walks
    // claim it, which checkRebuiltFrames() counted already (unless the
    // observer's walk is among them: its frames are marked, not counted).
    bool everyWalk =
        table_ && claims_.size() == frames && !(excludeObserver_ && observerWalk_ < walks_.size());
    for (size_t w = 0; w < walks_.size() && everyWalk; w++) everyWalk = groupOf[w] == static_cast<int32_t>(g);
    // Mappings of each distinct PFN by the group's processes, compared with
    // the kernel's mapcount: equal means no one outside the group maps the
    // page. Every walk's are the claims themselves (no copy of 4 MiB for a
    // million frames); another group's are counted in zeros of their own,
    // which take memory only where the group maps frames.
    SparseZeros<uint32_t> counted(everyWalk ? 0 : frames);
    auto inGroup = [&](size_t idx) { return everyWalk ? claims_[idx] : counted.get(idx); };
    std::unordered_map<const RunBlock*, uint32_t> holders;
    for (size_t w = 0; w < walks_.size(); w++) {
      if (groupOf[w] != static_cast<int32_t>(g)) continue;
      // Exclusive anonymous pages settled without lookup are mapped once.
      o[kGroupOnlyPages] += walks_[w]->exclusiveAnonPages();
      o[kGroupDistinctPages] += walks_[w]->exclusiveAnonPages();
      if (!table_ || everyWalk) continue;
      const bool marksOnly = observerInside && w == observerWalk_;
      for (const auto& b : walks_[w]->pending().blocks()) {
        uint32_t& held = holders[b.get()];
        held = marksOnly ? held | kObserverSaw : held + 1;
      }
    }
    // Each block once, counted as often as the group's walks hold it. A
    // run's frames are all wanted: their indices run on from the first's.
    for (const auto& [block, held] : holders) {
      const uint32_t times = held & ~kObserverSaw, mark = held & kObserverSaw;
      auto note = [&](size_t at) { counted.set(at, (counted.get(at) + times) | mark); };
      for (uint64_t r : block->runs) {
        const uint64_t first = run::first(r), length = run::length(r);
        const size_t idx = table_->indexOf(first);
        if (idx != KpageTable::kAbsent && first + length <= table_->pfnLimit()) {
          for (uint64_t i = 0; i < length; i++) note(idx + i);
          continue;
        }
        for (uint64_t i = 0; i < length; i++) {
          const size_t at = table_->indexOf(first + i);
          if (at != KpageTable::kAbsent) note(at);
        }
      }
    }
    holders.clear();
    for (size_t idx = 0; idx < frames; idx++) {
      if (!inGroup(idx) || !isNormalPage(*table_, idx)) continue;
      o[kGroupDistinctPages]++;
      uint32_t mappers = inGroup(idx) & ~kObserverSaw;
      uint32_t mapcount = table_->mapcount(idx);
      if (observerInside)
        mappers += table_->observerMappings(idx);
      else if (excludeObserver_)
        mapcount = table_->mapcountWithoutObserver(idx);
      // ">=": the mapcount read can trail a PTE seen moments earlier.
      if (mappers >= mapcount)
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
  const AddThreadCpu cpu(cpuNs_);
  const uint64_t began = monotonicNs();
  const AddElapsed settleClock(settleNs_, began);
  std::unordered_map<uint64_t, uint32_t> slotUsers;
  for (const auto& w : walks_)
    for (uint64_t e : w->swapEntries()) slotUsers[e]++;
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
