// The accounting walk of one process: pagemap entries of every mapping,
// classified by the kernel's smaps rules (fs/proc/task_mmu.c). Exclusive
// anonymous pages are settled on the spot; every other present page is kept
// as a PFN to be settled once kpagecount/kpageflags are known.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kpage_table.h"
#include "large_vector.h"
#include "maps_parser.h"
#include "page_size.h"
#include "pagemap_file.h"
#include "pending_runs.h"
#include "shared_frames.h"
#include "walk_buffer.h"

namespace pagewalk {

struct ProcmapQuery;

// The kernel's fixed point for PSS (PSS_SHIFT in fs/proc/task_mmu.c): PSS
// is summed as bytes << 12. Not the page size (page_size.h), whatever the
// two happen to share on x86-64.
constexpr unsigned kPssShift = 12;
// One whole page's PSS in that fixed point.
constexpr uint64_t kFullPss = kPageSize << kPssShift;

// Per-mapping figures. Field order is the layout of the BigUint64Array the
// binding fills (kFields per mapping); mirrored as MappingField in
// lib/native.ts: keep the two in step.
enum MappingField : size_t {
  kRssPages = 0,  // pages with a normal struct page (smaps Rss)
  kPssFixed,      // sum of kFullPss / mapcount (smaps PSS_SHIFT)
  kPrivatePages,  // mapcount < 2 (Private_*; smem USS)
  kSharedPages,   // mapcount >= 2 (Shared_*)
  kPssAnonFixed,
  kPssFileFixed,
  kPssShmemFixed,
  kAnonymousPages,  // KPF_ANON (smaps Anonymous)
  kKsmPages,
  kSwapPages,        // swap PTEs (shmem swap is added by the caller)
  kSwapPssFixed,     // approximate: swap slot shared among scanned processes
  kPresentPages,     // every present PTE, zero page and PFNMAP included
  kZeroPages,        // shared zero page or huge zero page
  kHugetlbPages,     // present but hugetlb: smaps puts them elsewhere
  kUnresolvedPages,  // present, but its PFN could not be looked up (hidden)
  kAnonHugePages,    // PMD-mapped anonymous THP (smaps AnonHugePages): scanAnonHuge()
  kFields
};

struct WalkOptions {
  // Exclusive anonymous pages can be settled without a kpageflags lookup only
  // when no KSM page or hugetlb page may hide among them.
  bool lookUpExclusiveAnon = false;
  // kpageflags of pending anonymous frames (pagemap bit 61 clear) are read
  // only when KSM may have merged some; of every pending frame when hugetlb
  // pages may be among them (smaps leaves those out).
  bool lookUpAnonFlags = true;
  bool lookUpAllFlags = true;
  bool collectSwapEntries = false;
  bool useScan = true;
  // Split a large walk over two threads.
  bool parallel = true;
  // The single range is a whole address space, not a mapping: its populated
  // stretches are found with PAGEMAP_SCAN (no /proc/PID/maps needed), and
  // up to two threads share the work chunk by chunk. Needs PAGEMAP_SCAN.
  bool wholeSpace = false;
  // Ask PROCMAP_QUERY for mappings (shared frames, kinds of file frames,
  // shmemMappings); false: as on a kernel without it (before 6.11).
  bool procmapQuery = true;
  // Read the mappings that may be shmem (shmemMappings()) as the walk
  // starts, through the same /proc/PID/maps descriptor its queries use.
  bool shmemMappings = false;
  // Pauses that give a running target's waiting mmap writers the lock; the
  // two threads of a split walk pause together (PaceGate).
  LockPauses lockPauses;
};

// Shared progress of the threads of a whole-space walk.
struct SpaceCursor;

// Where a walk's time went, in nanoseconds of its own threads (summed over
// both when a walk is split), for the timings breakdown of lib/.
struct WalkTimings {
  uint64_t pagemapNs = 0;  // pread of pagemap entries
  uint64_t scanNs = 0;     // PAGEMAP_SCAN for populated stretches
  uint64_t thpNs = 0;      // PAGEMAP_SCAN for PMD-mapped THP
  uint64_t consumeNs = 0;  // classifying entries (the rest of the walk)
  uint64_t pausedNs = 0;   // pauses for the target's mmap writers (LockPauses)
  uint64_t cpuNs = 0;      // CPU time of the walk's threads (CLOCK_THREAD_CPUTIME_ID)
  uint64_t mapsNs = 0;     // reading the shmem candidates (WalkOptions::shmemMappings)
  // Calls made at normal priority on a running target because the kernel
  // refused the raise to SCHED_FIFO between pauses (PagemapFile::unraisedNs).
  uint64_t unraisedNs = 0;
};

struct WalkStats {
  uint64_t entriesRead = 0;
  uint64_t readCalls = 0;
  uint64_t scanCalls = 0;
  uint64_t pagesSkippedByScan = 0;
  uint64_t lockPauses = 0;
  // Present entries rebuilt from frames another walk read (SharedFrames)
  // instead of read from this process's pagemap.
  uint64_t sharedFramePages = 0;
  // Of those, pages of whole chunks added as the chunk's runs, with no entry
  // rebuilt or classified (sharedFramePages counts them too).
  uint64_t sharedBlockPages = 0;
  bool scanUnsupported = false;
  bool pfnsVisible = false;   // at least one present entry carried a PFN
  bool sawHiddenPfn = false;  // a present entry with PFN 0
};

class ProcessWalk {
 public:
  // ranges: start and end addresses (page-aligned) of each mapping.
  ProcessWalk(int pid, LargeVector<uint64_t> ranges, WalkOptions options);
  ~ProcessWalk() { closeMaps(); }
  ProcessWalk(const ProcessWalk&) = delete;
  ProcessWalk& operator=(const ProcessWalk&) = delete;

  // Frames of MAP_SHARED file and shmem pages, recorded and looked up
  // across the walks of one measurement (shared_frames.h). Call before run().
  void shareFrames(std::shared_ptr<SharedFrames> frames) { share_ = std::move(frames); }

  // Reads pagemap for every mapping. Throws SystemError (ESRCH when the
  // process exits part-way).
  void run();

  // After the caller has resolved the kpage table from pendingRuns():
  // settles the pending pages into the per-mapping figures. withoutObserver:
  // with the mapcounts the frames will have once the observer has exited
  // (KpageTable::setObserverMappings), instead of the kernel's.
  // blockFigures: the figures of a whole block's runs, computed once for all
  // the walks that hold it (Tally), or null.
  void settle(const KpageTable& table, bool withoutObserver = false,
              const std::function<const uint64_t*(const RunBlock*)>& blockFigures = nullptr);
  // Adds one pending run's pages to a mapping's figures.
  static void settleRun(uint64_t* f, const KpageTable& table, uint64_t run, bool withoutObserver);

  size_t mappings() const { return ranges_.size() / 2; }
  const LargeVector<uint64_t>& figures() const { return figures_; }
  LargeVector<uint64_t>& figures() { return figures_; }
  // Pending PFNs as runs of consecutive frames (pending_runs.h): shared
  // memory is mostly allocated in runs, so a run costs one entry and one
  // table lookup instead of one per page.
  const PendingRuns& pending() const { return pending_; }
  // Pages the pending runs cover (a frame mapped twice counts twice).
  uint64_t pendingPages() const { return pending_.pages(); }
  template <typename Fn>
  void forEachPendingPfn(Fn fn) const {
    pending_.forEachRun([&](uint64_t r) {
      for (uint64_t p = run::first(r), end = p + run::length(r); p < end; p++) fn(p);
    });
  }
  // Runs pendingBegin_[m] .. pendingBegin_[m+1] (in run order) belong to mapping m.
  const LargeVector<size_t>& pendingBegin() const { return pendingBegin_; }
  // Raw swap entries (type | offset << 5), when collected.
  const LargeVector<uint64_t>& swapEntries() const { return swapEntries_; }
  const LargeVector<size_t>& swapBegin() const { return swapBegin_; }
  // The mappings that may be shmem (device major 0 with an inode), when
  // WalkOptions::shmemMappings asked for them.
  const std::vector<MapRecord>& shmemMappings() const { return shmemMappings_; }
  const WalkStats& stats() const { return stats_; }
  const WalkTimings& timings() const { return timings_; }
  uint64_t exclusiveAnonPages() const { return exclusiveAnonPages_; }

  // The frames this walk took from shared frames (another walk read them)
  // instead of reading them, as runs tagged with the kind their mapping
  // says they have, in blocks interned like the pending ones (the mappers of
  // one object hold the same blocks). A recorded frame may have gone stale
  // since it was read (truncated, reclaimed and refaulted, migrated, shmem
  // swapped in): the tally checks each (Tally::staleFrames()).
  const PendingRuns& rebuilt() const { return rebuilt_; }

  // Releases the buffers that are only needed until settle().
  void releasePending();

 private:
  void runUnshrunk();
  bool runsAndPauses();
  void followedBy(ProcessWalk& tail);
  void openPagemap();
  void closePagemap();
  // ns minus the pauses taken since the last call: the time of the call itself.
  uint64_t withoutPauses(uint64_t ns);
  void runSerial(size_t count);
  void runSpace(SpaceCursor& cursor);
  void absorb(ProcessWalk& tail, size_t firstMapping, bool continuesMapping);
  void walkMapping(size_t m);
  // Classifies n entries read for mapping m. Returns how many were populated
  // (present or swapped; the pages readShared() added as blocks included).
  size_t consume(size_t m, uint64_t firstPage, const uint64_t* entries, size_t n);
  // Entries [first, first + count) into out: read from pagemap, or rebuilt
  // from shared frames where an earlier walk read them. Returns the number
  // of entries, fewer than count only at the end of the address space.
  size_t readEntries(uint64_t first, size_t count, uint64_t* out);
  size_t readPagemap(uint64_t first, size_t count, uint64_t* out);
  // A MAP_SHARED mapping of a file whose pages are page cache (or shmem).
  struct SharedVma {
    uint64_t start = 0, end = 0;  // pages
    uint64_t offset = 0;          // file page at start
    FileKey file;
    FrameKind kind = kKindLookUp;  // of its frames: file or shmem (mappingKind())
  };
  // The first such mapping covering or following `page`, or null.
  const SharedVma* sharedVmaFrom(uint64_t page);
  // Whole-space walks: the shared file mapping covering `page` or starting
  // before `end`, found by stepping over at most a few mappings from `page`.
  const SharedVma* sharedVmaWithin(uint64_t page, uint64_t end);
  size_t readShared(const SharedVma& vma, uint64_t first, size_t count, uint64_t* out);
  // Entries of pages [a, b) of vma, present by PAGEMAP_SCAN, into e: rebuilt
  // from recorded frames, read (and recorded) where none is.
  void rebuildShared(const SharedVma& vma, uint64_t offset, uint64_t first, uint64_t a, uint64_t b,
                     uint64_t* e);
  // The mapping a shared file mapping's frames can be shared for, into vma.
  static bool sharedVmaOf(const ProcmapQuery& q, SharedVma& vma);
  // The /proc/PID/maps descriptor, opened once per walk: false when it
  // cannot be opened.
  bool openMapsFile();
  // openMapsFile() for PROCMAP_QUERY: false when the query is out of use.
  bool openMaps();
  void readShmemMappings();
  // One PROCMAP_QUERY of the target's maps into q: 0, or the errno (ENOENT:
  // no such mapping; anything else leaves PROCMAP_QUERY unused from then on).
  int queryMaps(uint64_t address, uint64_t flags, ProcmapQuery& q);
  FrameKind fileKind(uint64_t page) {
    return page >= kindStart_ && page < kindEnd_ ? kind_ : queryFileKind(page);
  }
  FrameKind queryFileKind(uint64_t page);
  void closeMaps();
  // Both descriptors, whatever state the walk is in (run() on its way out).
  void closeDescriptors();
  void noteHugeCandidates(uint64_t firstPage, const uint64_t* entries, size_t n);
  void scanAnonHuge(size_t m);

  int pid_;
  LargeVector<uint64_t> ranges_;
  WalkOptions options_;
  std::unique_ptr<PagemapFile> pagemap_;
  uint64_t pausedSeenNs_ = 0;
  TargetState targetState_ = TargetState::kUnknown;
  // Shared by the threads of a split walk of a running target; only the
  // first thread is raised between pauses (pagemap_file.h).
  std::shared_ptr<PaceGate> gate_;
  bool raise_ = true;
  LargeVector<uint64_t> figures_;
  static void settlePage(uint64_t* f, const KpageTable& table, size_t idx, bool withoutObserver,
                         FrameKind kind);

  PendingRuns pending_;
  LargeVector<size_t> pendingBegin_;
  // The mapping whose kind fileKind() found last: [kindStart_, kindEnd_) pages.
  int mapsFd_ = -1;
  bool mapsQueryUnsupported_ = false;
  std::vector<MapRecord> shmemMappings_;
  std::shared_ptr<SharedFrames> share_;
  // The last sharedVmaFrom() answer, valid for pages from shareQueriedFrom_
  // on (walks go up the address space): the mapping, or none at all.
  SharedVma shareVma_;
  bool shareQueried_ = false;
  bool shareNone_ = false;
  uint64_t shareQueriedFrom_ = 0;
  // sharedVmaWithin(): mappings over [shareSeenFrom_, shareSeenTo_) were
  // looked at; shareFound_: shareVma_ is the first shared one among them.
  uint64_t shareSeenFrom_ = 0, shareSeenTo_ = 0;
  bool shareFound_ = false;
  uint64_t kindStart_ = 0, kindEnd_ = 0;
  FrameKind kind_ = kKindLookUp;
  LargeVector<uint64_t> swapEntries_;
  LargeVector<size_t> swapBegin_;
  PendingRuns rebuilt_;
  // count frames from pfn on, rebuilt from shared frames.
  void noteRebuilt(uint64_t pfn, FrameKind kind, uint64_t count = 1) { rebuilt_.addRun(pfn, count, kind); }
  // Entries as read, reused from walk to walk (walk_buffer.h).
  WalkBuffer buffer_;
  LargeVector<uint64_t> regions_;
  LargeVector<uint64_t> shareRegions_;  // readShared()'s own: regions_ may be in use
  // First pages of the 2 MiB stretches of the current mapping whose entries
  // could be one PMD-mapped THP (present, anonymous, PFNs aligned and in step).
  LargeVector<uint64_t> hugeCandidates_;
  // Present pages readShared() added as whole chunks' runs (their entries
  // read as zero): consume() adds them to the mapping's present pages.
  uint64_t blockPresent_ = 0;
  WalkStats stats_;
  WalkTimings timings_;
  uint64_t exclusiveAnonPages_ = 0;
};

// Adds one page's share to a mapping's figures, exactly as smaps_account()
// and smaps_page_accumulate() do.
// Whether walks and tallies may start threads of their own (two CPUs or more,
// unless PAGEWALK_WALK_THREADS=1).
bool extraThreadsAllowed();

// The end of the user address space of this process's kind (TASK_SIZE, as a
// page number), and 0 when the kernel has no PAGEMAP_SCAN: whole-space walks
// need both. Found once by probing /proc/self/pagemap.
uint64_t wholeSpaceEndPage();

void accountPage(uint64_t* f, uint32_t mapcount, uint32_t kpageFlags);

}  // namespace pagewalk
