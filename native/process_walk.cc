#include "process_walk.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "extra_thread.h"
#include "page_size.h"
#include "pagemap_entry.h"
#include "procmap_query.h"
#include "system_error.h"

namespace pagewalk {

namespace {

// 64K entries (512 KiB) per pread: far past the point where syscall cost
// matters, small enough to stay in L2 while it is consumed.
constexpr size_t kChunkEntries = 64 * 1024;
// Threads of a whole-space walk take dense stretches in smaller chunks (64
// MiB of address space), so that two share even a 250 MB stretch. Chunks
// end on a grid of their size, so that equal address spaces are cut alike
// (and give equal blocks of runs) whichever thread took which chunk.
constexpr size_t kSpaceChunkEntries = 16 * 1024;
// While reading costs more than kSlowEntryNs of CPU per entry, chunks are 2K
// entries (8 MiB) instead, so that two threads end together: one-page
// mappings cost the kernel about 0.3 us per page (dense memory about 30
// ns), and with 16K-entry chunks one thread finished up to 5 ms after the
// other on 60,000 of them (234 MiB, 3.7 chunks). Dense memory keeps the
// large chunks: with 2K ones throughout, snapshot() of the PostgreSQL-shaped
// bench took 911 ms instead of 815 (one run each: a PAGEMAP_SCAN of shared
// frames per chunk, and pending runs cut at every chunk). CPU time, not
// wall time, so that a preempted or paused read does not count as slow.
constexpr size_t kSlowChunkEntries = 2 * 1024;
constexpr uint64_t kSlowEntryNs = 120;
constexpr size_t kScanRegions = 1024;
// Address spaces of at least this many pages (1 GiB) are walked by two threads.
constexpr uint64_t kParallelMinPages = uint64_t{1} << 18;
// A chunk with fewer populated entries than 1/kSparseRatio of its length
// switches the walk to PAGEMAP_SCAN; a scanned window denser than 1/2 switches
// back to plain reads.
constexpr size_t kSparseRatio = 16;
// Pages a PAGEMAP_SCAN may report before it returns, and THP candidate pages
// one HUGE scan may cover: the kernel holds the target's mmap lock for a
// whole scan call, and one call over N present PTEs costs about 40 ns each
// plus about 400 ns per VMA it enters (measured on 6.18): 1024 keeps a call
// well under a millisecond, so the process measured never stalls for longer.
constexpr uint64_t kScanMaxPages = 1024;
constexpr uint64_t kHugeScanMaxPages = 16 * kPmdPages;
// Stretches of a MAP_SHARED file mapping at least this long are rebuilt
// from shared frames where they can be (shorter ones are read), and scanned
// for present pages this many at a time: a PAGEMAP_SCAN that tests PTEs
// only costs about 11 ns per present page, so a call holds the target's
// mmap lock for well under a millisecond.
constexpr uint64_t kShareMinPages = 16;
constexpr uint64_t kShareScanPages = 8192;
// Populated regions closer than this are read in one pread.
constexpr uint64_t kRegionMergeGapPages = 32;

inline bool bit(uint32_t flags, unsigned b) { return (flags >> b) & 1u; }

// CPU time of the calling thread, the kernel's work on its behalf included:
// what a read cost, however often the thread was preempted or paused.
uint64_t threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// pagemap marks every non-present swap-format PTE as swapped, but only real
// swap slots count in smaps Swap: guard markers, uffd-wp markers, migration
// and device entries use the swap types above MAX_SWAPFILES (at least 24 on
// any configuration). With PFNs hidden the type reads 0 and only the guard
// bit can tell.
constexpr uint64_t kFirstNonSwapType = 24;
inline bool isSwapSlot(uint64_t e) { return !(e & kGuard) && (e & kSwapTypeMask) < kFirstNonSwapType; }

}  // namespace

// The threads of a whole-space walk take work from here under the mutex:
// a stretch found by PAGEMAP_SCAN (queued), or the next pagemap chunk of a
// dense stretch. The scan itself runs under the mutex, so stretches are
// handed out in address order and none twice.
struct SpaceCursor {
  std::mutex mutex;
  uint64_t page = 0;  // first page not yet handed out or scanned
  uint64_t end = 0;
  bool sparse = true;  // find populated stretches by scanning, not reading
  uint64_t scanWindow = 0;
  LargeVector<uint64_t> queue;  // (first, last) page pairs found by the last scan
  size_t queued = 0;            // pairs of queue already handed out
  // kSpaceChunkEntries, or kSlowChunkEntries after a slow read; set by the
  // last read of at least kSlowChunkEntries / 2 entries.
  std::atomic<uint64_t> chunkEntries{kSpaceChunkEntries};
  bool done = false;
  std::exception_ptr error;

  // The end of the chunk from `page` on: the next multiple of the chunk size.
  uint64_t chunkEnd(uint64_t page, uint64_t limit) const {
    const uint64_t size = chunkEntries.load(std::memory_order_relaxed);
    return std::min(limit, (page / size + 1) * size);
  }
};

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

ProcessWalk::ProcessWalk(int pid, LargeVector<uint64_t> ranges, WalkOptions options)
    : pid_(pid), ranges_(std::move(ranges)), options_(options), mapsQueryUnsupported_(!options.procmapQuery) {
  figures_.assign(mappings() * kFields, 0);
  pendingBegin_.assign(mappings() + 1, 0);
  swapBegin_.assign(mappings() + 1, 0);
}

// Large walks and tallies use a second thread of their own whenever the
// machine has two CPUs or more (threads are allowed; processes never are).
// PAGEWALK_WALK_THREADS=1 keeps every walk on one libuv pool thread.
bool extraThreadsAllowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("PAGEWALK_WALK_THREADS");
    if (v != nullptr && std::atoi(v) == 1) return false;
    return std::thread::hardware_concurrency() >= 2;
  }();
  return allowed;
}

void ProcessWalk::run() {
  {
    // However the walk ends, its descriptors close with it: a walk that
    // failed lives on until the garbage collector finalizes its JavaScript
    // object, and would hold /proc/PID/maps open until then. Closing also
    // puts the pool thread back to its own priority (LockPauses) before it
    // goes on to other work.
    struct CloseOnExit {
      ProcessWalk& walk;
      ~CloseOnExit() { walk.closeDescriptors(); }
    } closeOnExit{*this};
    readShmemMappings();
    runUnshrunk();
  }
  share_.reset();  // the frames this walk recorded stay with the measurement
  // Held until the tally is done: no more room than the runs need.
  pending_.finish();
  rebuilt_.finish();
  swapEntries_.shrink_to_fit();
}

// Whether this walk pauses for a running target's mmap writers (looked up
// only for walks that could be split: a small one finds out at its first
// pause due, if ever).
bool ProcessWalk::runsAndPauses() {
  if (options_.lockPauses.holdNs == 0) return false;
  if (targetState_ == TargetState::kUnknown) targetState_ = threadsState(pid_);
  return targetState_ == TargetState::kRunning;
}

void ProcessWalk::openPagemap() {
  pagemap_ = std::make_unique<PagemapFile>(pid_);
  pagemap_->pauseForWriters(options_.lockPauses, targetState_);
  pausedSeenNs_ = 0;
}

void ProcessWalk::closePagemap() {
  stats_.lockPauses += pagemap_->pauses();
  timings_.pausedNs += pagemap_->pausedNs();
  timings_.unraisedNs += pagemap_->unraisedNs();
  pagemap_.reset();
}

uint64_t ProcessWalk::withoutPauses(uint64_t ns) {
  const uint64_t paused = pagemap_->pausedNs() - pausedSeenNs_;
  pausedSeenNs_ = pagemap_->pausedNs();
  return ns - std::min(ns, paused);
}

void ProcessWalk::runUnshrunk() {
  // Kernel threads have no mappings, and their pagemap cannot even be
  // opened (ESRCH): nothing to walk is a walk of zeros, not an error.
  if (mappings() == 0) return;
  if (options_.wholeSpace) {
    SpaceCursor cursor;
    cursor.page = ranges_[0] >> kPageShift;
    cursor.end = ranges_[1] >> kPageShift;
    cursor.scanWindow = kChunkEntries * kSparseRatio;
    if (!options_.parallel || !extraThreadsAllowed() || runsAndPauses()) {
      runSpace(cursor);
    } else {
      WalkOptions tailOptions = options_;
      tailOptions.parallel = false;
      ProcessWalk tail(pid_, ranges_, tailOptions);
      tail.targetState_ = targetState_;
      tail.share_ = share_;
      std::thread worker = tryStartThread([&] {
        try {
          tail.runSpace(cursor);
        } catch (...) {
          std::lock_guard<std::mutex> lock(cursor.mutex);
          if (!cursor.error) cursor.error = std::current_exception();
        }
      });
      try {
        runSpace(cursor);
      } catch (...) {
        std::lock_guard<std::mutex> lock(cursor.mutex);
        if (!cursor.error) cursor.error = std::current_exception();
      }
      // Without a second thread this one took every chunk: the tail read nothing.
      if (worker.joinable()) {
        worker.join();
        if (!cursor.error) absorb(tail, 0, true);
      }
    }
    if (cursor.error) std::rethrow_exception(cursor.error);
    pendingBegin_[0] = 0;
    swapBegin_[0] = 0;
    pendingBegin_[1] = pending_.runs();
    swapBegin_[1] = swapEntries_.size();
    return;
  }
  // A large address space is walked by two threads, each over half of it
  // with its own pagemap descriptor: the kernel's pagemap_read() takes the
  // mmap lock shared, so the halves proceed side by side on two cores.
  uint64_t total = 0;
  for (size_t m = 0; m < mappings(); m++) total += (ranges_[2 * m + 1] - ranges_[2 * m]) >> kPageShift;
  if (total < kParallelMinPages || !options_.parallel || !extraThreadsAllowed() || runsAndPauses()) {
    runSerial(mappings());
    return;
  }
  // The split: a 2 MiB aligned page of mapping `ms` (so that no THP
  // candidate stretch is cut), or the start of mapping `ms`.
  uint64_t seen = 0;
  size_t ms = 0;
  uint64_t splitPage = 0;
  for (; ms < mappings(); ms++) {
    const uint64_t a = ranges_[2 * ms] >> kPageShift, b = ranges_[2 * ms + 1] >> kPageShift;
    if (seen + (b - a) > total / 2) {
      splitPage = (a + (total / 2 - seen) + 511) & ~uint64_t{511};
      if (splitPage >= b) {
        ms++;
        splitPage = ms < mappings() ? ranges_[2 * ms] >> kPageShift : 0;
      } else if (splitPage <= a) {
        splitPage = a;
      }
      break;
    }
    seen += b - a;
  }
  if (ms >= mappings()) {
    runSerial(mappings());
    return;
  }
  const bool cut = splitPage > (ranges_[2 * ms] >> kPageShift);
  LargeVector<uint64_t> tailRanges(ranges_.begin() + 2 * ms, ranges_.end());
  tailRanges[0] = splitPage << kPageShift;
  WalkOptions tailOptions = options_;
  tailOptions.parallel = false;
  ProcessWalk tail(pid_, std::move(tailRanges), tailOptions);
  tail.targetState_ = targetState_;
  tail.share_ = share_;
  std::exception_ptr tailError;
  std::thread worker = tryStartThread([&] {
    try {
      tail.runSerial(tail.mappings());
    } catch (...) {
      tailError = std::current_exception();
    }
  });
  if (!worker.joinable()) {
    runSerial(mappings());
    return;
  }
  const uint64_t savedEnd = ranges_[2 * ms + 1];
  const size_t headCount = cut ? ms + 1 : ms;
  std::exception_ptr headError;
  try {
    if (cut) ranges_[2 * ms + 1] = splitPage << kPageShift;
    runSerial(headCount);
  } catch (...) {
    headError = std::current_exception();
  }
  worker.join();
  ranges_[2 * ms + 1] = savedEnd;
  if (headError) std::rethrow_exception(headError);
  if (tailError) std::rethrow_exception(tailError);
  absorb(tail, ms, cut);
}

// Adds a walk of mappings [firstMapping, ...) of this one, made on another
// thread, into this one. continuesMapping: the tail's first mapping is the
// rest of mapping firstMapping (its pending PFNs follow this walk's own).
void ProcessWalk::absorb(ProcessWalk& tail, size_t firstMapping, bool continuesMapping) {
  const size_t ms = firstMapping;
  const bool cut = continuesMapping;
  // Tail mapping j is mapping ms + j; when the split cut mapping ms, its
  // pending PFNs continue straight after the head's.
  const size_t pendingBase = pending_.runs(), swapBase = swapEntries_.size();
  for (size_t j = 0; j < tail.mappings(); j++) {
    const size_t m = ms + j;
    if (!(cut && j == 0)) {
      pendingBegin_[m] = pendingBase + tail.pendingBegin_[j];
      swapBegin_[m] = swapBase + tail.swapBegin_[j];
    }
    for (size_t f = 0; f < kFields; f++) figures_[m * kFields + f] += tail.figures_[j * kFields + f];
  }
  pending_.append(std::move(tail.pending_));
  swapEntries_.insert(swapEntries_.end(), tail.swapEntries_.begin(), tail.swapEntries_.end());
  rebuilt_.append(std::move(tail.rebuilt_));
  pendingBegin_[mappings()] = pending_.runs();
  swapBegin_[mappings()] = swapEntries_.size();
  exclusiveAnonPages_ += tail.exclusiveAnonPages_;
  stats_.entriesRead += tail.stats_.entriesRead;
  stats_.readCalls += tail.stats_.readCalls;
  stats_.scanCalls += tail.stats_.scanCalls;
  stats_.pagesSkippedByScan += tail.stats_.pagesSkippedByScan;
  stats_.lockPauses += tail.stats_.lockPauses;
  stats_.sharedFramePages += tail.stats_.sharedFramePages;
  stats_.sharedBlockPages += tail.stats_.sharedBlockPages;
  stats_.scanUnsupported = stats_.scanUnsupported || tail.stats_.scanUnsupported;
  stats_.pfnsVisible = stats_.pfnsVisible || tail.stats_.pfnsVisible;
  stats_.sawHiddenPfn = stats_.sawHiddenPfn || tail.stats_.sawHiddenPfn;
  timings_.pagemapNs += tail.timings_.pagemapNs;
  timings_.scanNs += tail.timings_.scanNs;
  timings_.thpNs += tail.timings_.thpNs;
  timings_.consumeNs += tail.timings_.consumeNs;
  timings_.pausedNs += tail.timings_.pausedNs;
  timings_.mapsNs += tail.timings_.mapsNs;
  timings_.unraisedNs += tail.timings_.unraisedNs;
}

// ---------------------------------------------------------------- whole space

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
      // Grown to the longest read: a buffer sized for the largest chunk would
      // only be zeroed and faulted in (512 KiB cost a small process 0.4 ms).
      if (buffer_.size() < count) buffer_.resize(static_cast<size_t>(count));
      // Chunks of equal address spaces give equal blocks of runs (readEntries()
      // may add a shared chunk's runs itself).
      pending_.fenceAndClose();
      const uint64_t cpuBegan = threadCpuNs();
      got = readEntries(first, static_cast<size_t>(count), buffer_.data());
      if (got >= kSlowChunkEntries / 2) {
        const uint64_t ns = threadCpuNs() - cpuBegan;
        c.chunkEntries.store(ns > got * kSlowEntryNs ? kSlowChunkEntries : kSpaceChunkEntries,
                             std::memory_order_relaxed);
      }
      const uint64_t readDone = monotonicNs();
      populated = blockPresent_;
      for (size_t i = 0; i < got; i++) populated += (buffer_[i] & (kPresent | kSwapped)) != 0;
      noteHugeCandidates(first, buffer_.data(), got);
      consume(0, first, buffer_.data(), got);
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
  LargeVector<uint64_t>().swap(buffer_);
  LargeVector<uint64_t>().swap(regions_);
}

// Walks mappings [0, count) on this thread.
void ProcessWalk::runSerial(size_t count) {
  openPagemap();
  uint64_t longest = 0;
  for (size_t m = 0; m < count; m++)
    longest = std::max(longest, (ranges_[2 * m + 1] - ranges_[2 * m]) >> kPageShift);
  buffer_.resize(static_cast<size_t>(std::min<uint64_t>(longest, kChunkEntries)));
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
  // The buffers are per walk; a long-lived snapshot keeps only the figures.
  LargeVector<uint64_t>().swap(buffer_);
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
    const size_t got = readEntries(page, n, buffer_.data());
    const uint64_t readDone = monotonicNs();
    size_t populated = blockPresent_;
    for (size_t i = 0; i < got; i++) populated += (buffer_[i] & (kPresent | kSwapped)) != 0;
    noteHugeCandidates(page, buffer_.data(), got);
    consume(m, page, buffer_.data(), got);
    timings_.consumeNs += monotonicNs() - readDone;
    if (got < n) return;  // end of the user address space ([vsyscall])
    page += n;
    // Only a full chunk is evidence of sparseness worth a switch.
    if (options_.useScan && n == kChunkEntries && populated * kSparseRatio < n) sparse = true;
  }
}

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

void ProcessWalk::consume(size_t m, uint64_t firstPage, const uint64_t* entries, size_t n) {
  uint64_t* f = &figures_[m * kFields];
  const bool fastAnon = !options_.lookUpExclusiveAnon;
  // The bits that decide what happens to a present entry (besides its PFN):
  // entries that agree on them and continue each other's PFNs join one run.
  const uint64_t sameHandling = kPresent | kFileOrSharedAnon | (fastAnon ? kExclusive : 0);
  uint64_t present = 0, exclusiveAnon = 0, swapped = 0;
  size_t i = 0;
  while (i < n) {
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
    if ((e & kSwapped) && isSwapSlot(e)) {
      swapped++;
      if (options_.collectSwapEntries) swapEntries_.push_back(e & kPfnMask);
    }
    i++;
  }
  f[kPresentPages] += present + blockPresent_;
  blockPresent_ = 0;
  f[kSwapPages] += swapped;
  f[kRssPages] += exclusiveAnon;
  f[kPrivatePages] += exclusiveAnon;
  f[kAnonymousPages] += exclusiveAnon;
  f[kPssFixed] += exclusiveAnon * kFullPss;
  f[kPssAnonFixed] += exclusiveAnon * kFullPss;
  exclusiveAnonPages_ += exclusiveAnon;
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

// The device of the kernel's internal shmem mount, where MAP_SHARED
// anonymous memory, System V shared memory and memfds live: found from a
// memfd of our own. Files on it hold only swap-backed (shmem) pages.
namespace {
struct ShmemDevice {
  bool known = false;
  uint32_t major = 0, minor = 0;
};
const ShmemDevice& shmemDevice() {
  static const ShmemDevice dev = [] {
    ShmemDevice d;
    const int fd = ::memfd_create("pagewalk-shmem-device", MFD_CLOEXEC);
    if (fd < 0) return d;
    struct stat st;
    if (::fstat(fd, &st) == 0) {
      d.known = true;
      d.major = major(st.st_dev);
      d.minor = minor(st.st_dev);
    }
    ::close(fd);
    return d;
  }();
  return dev;
}

// The kind of the frames of a mapping, from its file (see queryFileKind()).
FrameKind mappingKind(const ProcmapQuery& q) {
  if (q.inode == 0) return kKindLookUp;
  if (q.dev_major != 0) return kKindFile;
  const ShmemDevice& shm = shmemDevice();
  return shm.known && q.dev_major == shm.major && q.dev_minor == shm.minor ? kKindShmem : kKindLookUp;
}

}  // namespace

// The kind of the frames of a page with pagemap bit 61 (file page or shared
// anonymous), from the kind of the mapping holding it: a file of a
// block-device filesystem holds page cache (never swap-backed); a file of
// the internal shmem mount holds shmem. Anything else (tmpfs mounts, FUSE,
// overlay, devices, or no PROCMAP_QUERY) is looked up (mappingKind()).
FrameKind ProcessWalk::queryFileKind(uint64_t page) {
  ProcmapQuery q;
  // ENOENT: nothing maps it any more; anything else: no PROCMAP_QUERY.
  if (queryMaps(page << kPageShift, 0, q) != 0) return kKindLookUp;
  const FrameKind kind = mappingKind(q);
  kindStart_ = q.vma_start >> kPageShift;
  kindEnd_ = q.vma_end >> kPageShift;
  kind_ = kind;
  if (page < kindStart_ || page >= kindEnd_) {
    kindStart_ = kindEnd_ = 0;
    return kKindLookUp;
  }
  return kind;
}

int ProcessWalk::queryMaps(uint64_t address, uint64_t flags, ProcmapQuery& q) {
  if (!openMaps()) return ENOTTY;
  q = ProcmapQuery{};
  q.size = sizeof(q);
  q.query_flags = flags;
  q.query_addr = address;
  int rc;
  do {
    rc = ::ioctl(mapsFd_, kProcmapQuery, &q);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return 0;
  const int error = errno;
  if (error != ENOENT) mapsQueryUnsupported_ = true;
  return error;
}

// A shared mapping whose frames are its file's, named by their offset: page
// cache of a block-device filesystem, or the internal shmem mount's objects
// (mappingKind() knows their frames' kind). Not other files of no device
// (tmpfs mounts, FUSE, devices and their PFN maps): their offsets need not
// name one frame.
bool ProcessWalk::sharedVmaOf(const ProcmapQuery& q, SharedVma& vma) {
  if (!(q.vma_flags & kVmaShared) || mappingKind(q) == kKindLookUp) return false;
  vma.start = q.vma_start >> kPageShift;
  vma.end = q.vma_end >> kPageShift;
  vma.offset = q.vma_offset >> kPageShift;
  vma.file = FileKey{q.dev_major, q.dev_minor, q.inode};
  vma.kind = mappingKind(q);
  return true;
}

bool ProcessWalk::openMapsFile() {
  if (mapsFd_ >= 0) return true;
  const std::string path = "/proc/" + std::to_string(pid_) + "/maps";
  do {
    mapsFd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (mapsFd_ < 0 && errno == EINTR);
  return mapsFd_ >= 0;
}

bool ProcessWalk::openMaps() {
  if (mapsQueryUnsupported_) return false;
  if (!openMapsFile()) mapsQueryUnsupported_ = true;
  return !mapsQueryUnsupported_;
}

// Swapped shmem has no page table entry, so no walk can find it: the
// caller measures it mapping by mapping (cachestat), and needs the mappings
// that may be shmem. Read here, on the walk's thread and through the
// descriptor its own queries use, rather than by a call of their own that
// opened the maps again and waited for a pool thread of its own.
void ProcessWalk::readShmemMappings() {
  if (!options_.shmemMappings || mappings() == 0) return;
  const uint64_t began = monotonicNs();
  const std::string path = "/proc/" + std::to_string(pid_) + "/maps";
  if (!openMapsFile()) throw SystemError(errno, "open", path);
  MapsReadOptions o;
  o.selection = MapSelection::kShmemCandidates;
  o.useQuery = options_.procmapQuery;
  shmemMappings_ = readMapRecords(mapsFd_, path, o);
  timings_.mapsNs += monotonicNs() - began;
}

// ---------------------------------------------------------------- shared frames

size_t ProcessWalk::readPagemap(uint64_t first, size_t count, uint64_t* out) {
  const uint64_t began = monotonicNs();
  const size_t got = pagemap_->read(first, count, out);
  timings_.pagemapNs += withoutPauses(monotonicNs() - began);
  stats_.readCalls++;
  stats_.entriesRead += got;
  return got;
}

size_t ProcessWalk::readEntries(uint64_t first, size_t count, uint64_t* out) {
  // Rebuilding entries from shared frames needs PAGEMAP_SCAN to say which
  // pages are present: without it (useScan false) every entry is read.
  if (!share_ || !options_.useScan || count < kShareMinPages) return readPagemap(first, count, out);
  const uint64_t end = first + count;
  size_t done = 0;
  while (first + done < end) {
    const uint64_t page = first + done;
    const SharedVma* vma = options_.wholeSpace ? sharedVmaWithin(page, end) : sharedVmaFrom(page);
    // Up to the next shared file mapping: read as ever.
    const uint64_t plainEnd = vma == nullptr ? end : std::min(end, std::max(page, vma->start));
    size_t want = static_cast<size_t>(plainEnd - page), got;
    if (want > 0) {
      got = readPagemap(page, want, out + done);
    } else {
      want = static_cast<size_t>(std::min(end, vma->end) - page);
      got = want < kShareMinPages ? readPagemap(page, want, out + done)
                                  : readShared(*vma, page, want, out + done);
    }
    done += got;
    if (got < want) break;  // end of the user address space
  }
  return done;
}

const ProcessWalk::SharedVma* ProcessWalk::sharedVmaFrom(uint64_t page) {
  if (shareQueried_ && page >= shareQueriedFrom_) {
    if (shareNone_) return nullptr;
    if (page < shareVma_.end) return &shareVma_;
  }
  uint64_t address = page << kPageShift;
  for (;;) {
    ProcmapQuery q;
    const int error = queryMaps(address, kQueryCoveringOrNext | kQueryFileBacked | kQueryVmaShared, q);
    if (error != 0) {
      // ENOENT: no shared file mapping from here on; anything else: no
      // PROCMAP_QUERY, and every stretch is read.
      shareQueried_ = shareNone_ = true;
      shareQueriedFrom_ = error == ENOENT ? page : 0;
      return nullptr;
    }
    if (sharedVmaOf(q, shareVma_)) {
      shareQueried_ = true;
      shareNone_ = false;
      shareQueriedFrom_ = page;
      return &shareVma_;
    }
    if (q.vma_end <= address) return nullptr;
    address = q.vma_end;
  }
}

// A PROCMAP_QUERY for the next shared file mapping steps over every other
// mapping on the way, about 0.3 us each: over 60,000 one-page anonymous
// mappings it took 17-23 ms, longer than reading their pagemap, and each
// thread of a walk asked once. A whole-space walk asks instead for the
// mapping covering a chunk's first page and steps on over at most
// kShareSteps more: only a chunk of many small mappings leaves some unasked
// (read as ever), and sharing pays only for long stretches of one mapping.
constexpr int kShareSteps = 4;

const ProcessWalk::SharedVma* ProcessWalk::sharedVmaWithin(uint64_t page, uint64_t end) {
  uint64_t from = page;
  if (page >= shareSeenFrom_ && page < shareSeenTo_) {
    if (shareFound_) return shareVma_.start < end ? &shareVma_ : nullptr;
    if (end <= shareSeenTo_) return nullptr;
    from = shareSeenTo_;  // nothing shared before it: look on from there
  } else {
    shareSeenFrom_ = page;
  }
  shareFound_ = false;
  shareSeenTo_ = from;
  uint64_t address = from << kPageShift;
  for (int step = 0; step <= kShareSteps && (address >> kPageShift) < end; step++) {
    ProcmapQuery q;
    const int error = queryMaps(address, kQueryCoveringOrNext, q);
    if (error != 0) {
      // ENOENT: no mapping from here on; anything else: no PROCMAP_QUERY,
      // and every stretch is read.
      if (error == ENOENT) shareSeenTo_ = UINT64_MAX;
      return nullptr;
    }
    if (sharedVmaOf(q, shareVma_)) {
      shareFound_ = true;
      shareSeenTo_ = shareVma_.end;
      return shareVma_.start < end ? &shareVma_ : nullptr;
    }
    if (q.vma_end <= address) break;
    address = q.vma_end;
    shareSeenTo_ = address >> kPageShift;
  }
  return nullptr;
}

size_t ProcessWalk::readShared(const SharedVma& vma, uint64_t first, size_t count, uint64_t* out) {
  const uint64_t offset = vma.offset + (first - vma.start);
  // Until most of the stretch is known, reading it is cheaper, and teaches
  // the walks that follow.
  if (share_->known(vma.file, offset, count) * 2 < count) {
    const size_t got = readPagemap(first, count, out);
    share_->record(vma.file, offset, out, got);
    return got;
  }
  std::fill(out, out + count, uint64_t{0});
  if (shareRegions_.empty()) shareRegions_.resize(kScanRegions * 3);
  const uint64_t end = first + count;
  uint64_t page = first;
  while (page < end) {
    ScanRequest req;
    req.startAddress = page << kPageShift;
    req.endAddress = std::min(end, page + kShareScanPages) << kPageShift;
    req.categoryAnyofMask = kScanPresent | kScanSwapped;
    req.returnMask = kScanPresent | kScanSwapped;
    stats_.scanCalls++;
    const uint64_t began = monotonicNs();
    const ScanResult r = pagemap_->scan(req, shareRegions_.data(), kScanRegions);
    timings_.scanNs += withoutPauses(monotonicNs() - began);
    if (r.unsupported) {
      stats_.scanUnsupported = true;
      const size_t got = readPagemap(page, static_cast<size_t>(end - page), out + (page - first));
      return static_cast<size_t>(page - first) + got;
    }
    for (size_t k = 0; k < r.regions; k++) {
      const uint64_t a = shareRegions_[3 * k] >> kPageShift, b = shareRegions_[3 * k + 1] >> kPageShift;
      uint64_t* e = out + (a - first);
      if (!(shareRegions_[3 * k + 2] & kScanPresent)) {
        // Swap-format entries (migration, markers): what pagemap says.
        readPagemap(a, static_cast<size_t>(b - a), e);
        continue;
      }
      // A chunk of the file whose offsets all lie in [a, b), and whose
      // frames were all recorded, is added as its runs: one block, no entry
      // rebuilt or classified. The rest is rebuilt page by page.
      uint64_t from = a;
      for (uint64_t p = a; p < b;) {
        const uint64_t o = offset + (p - first);
        const uint64_t chunkEnd = p + SharedFrames::kChunkOffsets;
        if ((o & (SharedFrames::kChunkOffsets - 1)) != 0 || chunkEnd > b) {
          p = std::min(b, p + (SharedFrames::kChunkOffsets - (o & (SharedFrames::kChunkOffsets - 1))));
          continue;
        }
        const uint64_t* chunk = share_->chunk(vma.file, o, false);
        const std::vector<uint64_t>* runs = chunk != nullptr ? share_->chunkRuns(chunk) : nullptr;
        if (runs == nullptr) {
          p = chunkEnd;
          continue;
        }
        if (from < p) rebuildShared(vma, offset, first, from, p, e + (from - a));
        const FrameKind kind = options_.lookUpAllFlags ? kKindLookUp : vma.kind;
        for (uint64_t r : *runs) {
          pending_.addRun(run::first(r), run::length(r), kind);
          // Checked by the tally like every rebuilt frame (Tally::staleFrames()).
          noteRebuilt(run::first(r), vma.kind, run::length(r));
        }
        blockPresent_ += SharedFrames::kChunkOffsets;
        stats_.sharedFramePages += SharedFrames::kChunkOffsets;
        stats_.sharedBlockPages += SharedFrames::kChunkOffsets;
        stats_.pfnsVisible = true;
        from = p = chunkEnd;
      }
      if (from < b) rebuildShared(vma, offset, first, from, b, e + (from - a));
    }
    // Fewer regions than room for: the scan covered its whole range.
    page =
        r.regions < kScanRegions ? req.endAddress >> kPageShift : std::max(r.walkEnd >> kPageShift, page + 1);
  }
  return count;
}

void ProcessWalk::rebuildShared(const SharedVma& vma, uint64_t offset, uint64_t first, uint64_t a, uint64_t b,
                                uint64_t* e) {
  const uint64_t* chunk = nullptr;
  uint64_t chunkIndex = UINT64_MAX;
  for (uint64_t p = a; p < b; p++) {
    const uint64_t o = offset + (p - first);
    if ((o >> SharedFrames::kChunkShift) != chunkIndex) {
      chunkIndex = o >> SharedFrames::kChunkShift;
      chunk = share_->chunk(vma.file, o, false);
    }
    const uint64_t pfn = chunk != nullptr ? SharedFrames::load(chunk, o) : 0;
    if (pfn != 0) {
      e[p - a] = kPresent | kFileOrSharedAnon | pfn;
      stats_.sharedFramePages++;
      noteRebuilt(pfn, vma.kind);
    }
  }
  // Present pages no walk has read yet: read them, and record them.
  for (uint64_t p = a; p < b;) {
    if (e[p - a] != 0) {
      p++;
      continue;
    }
    uint64_t q = p + 1;
    while (q < b && e[q - a] == 0) q++;
    const size_t got = readPagemap(p, static_cast<size_t>(q - p), e + (p - a));
    share_->record(vma.file, offset + (p - first), e + (p - a), got);
    p = q;
  }
}

void ProcessWalk::closeDescriptors() {
  if (pagemap_) pagemap_->close();
  closeMaps();
}

void ProcessWalk::closeMaps() {
  if (mapsFd_ >= 0) ::close(mapsFd_);
  mapsFd_ = -1;
  kindStart_ = kindEnd_ = 0;
}

void ProcessWalk::releasePending() {
  pending_.clear();
  LargeVector<uint64_t>().swap(swapEntries_);
  rebuilt_.clear();
}

}  // namespace pagewalk
