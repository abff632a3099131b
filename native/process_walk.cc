// A process walk as a whole: construction, the two-thread split of a large
// walk and the joining of its halves (absorb), the descriptors it holds.
#include "process_walk.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "extra_thread.h"
#include "page_size.h"
#include "walk_internal.h"

namespace pagewalk {

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
  const AddThreadCpu cpu(timings_.cpuNs);  // a second thread's is added by absorb()
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
  // readShared()'s scan regions (24 KiB): 1.5 MiB over 64 walks held to the end.
  LargeVector<uint64_t>().swap(shareRegions_);
  // Held until the tally is done: no more room than the runs need.
  pending_.finish();
  rebuilt_.finish();
  swapEntries_.shrink_to_fit();
}

// Whether this walk may pause for a running target's mmap writers (looked
// up only for walks that could be split: a small one finds out at its first
// pause due, if ever). The threads of a split walk then share one gate, so
// that they pause together.
bool ProcessWalk::runsAndPauses() {
  if (options_.lockPauses.holdNs == 0) return false;
  if (targetState_ == TargetState::kUnknown) targetState_ = threadsState(pid_);
  if (targetState_ != TargetState::kRunning) return false;
  if (!gate_) gate_ = std::make_shared<PaceGate>(pid_);
  return true;
}

// The second thread of a split walk: the same target state and pause gate,
// never raised.
void ProcessWalk::followedBy(ProcessWalk& tail) {
  tail.targetState_ = targetState_;
  tail.gate_ = gate_;
  tail.raise_ = false;
  tail.share_ = share_;
}

void ProcessWalk::openPagemap() {
  pagemap_ = std::make_unique<PagemapFile>(pid_);
  pagemap_->pauseForWriters(options_.lockPauses, targetState_, gate_, raise_);
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
    if (!options_.parallel || !extraThreadsAllowed()) {
      runSpace(cursor);
    } else {
      runsAndPauses();
      WalkOptions tailOptions = options_;
      tailOptions.parallel = false;
      ProcessWalk tail(pid_, ranges_, tailOptions);
      followedBy(tail);
      std::thread worker = tryStartThread([&] {
        const AddThreadCpu cpu(tail.timings_.cpuNs);
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
      // The tail, kept out while the target was active, is raised from now on.
      if (gate_) gate_->leaderDone.store(true, std::memory_order_relaxed);
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
  if (total < kParallelMinPages || !options_.parallel || !extraThreadsAllowed()) {
    runSerial(mappings());
    return;
  }
  runsAndPauses();
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
  followedBy(tail);
  std::exception_ptr tailError;
  std::thread worker = tryStartThread([&] {
    const AddThreadCpu cpu(tail.timings_.cpuNs);
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
  // The tail, kept out while the target was active, is raised from now on.
  if (gate_) gate_->leaderDone.store(true, std::memory_order_relaxed);
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
  timings_.cpuNs += tail.timings_.cpuNs;
  timings_.mapsNs += tail.timings_.mapsNs;
  timings_.unraisedNs += tail.timings_.unraisedNs;
}

void ProcessWalk::closeDescriptors() {
  if (pagemap_) pagemap_->close();
  closeMaps();
  gate_.reset();  // and the target's task stat files the pauses looked at
}

void ProcessWalk::releasePending() {
  pending_.clear();
  LargeVector<uint64_t>().swap(swapEntries_);
  rebuilt_.clear();
}

}  // namespace pagewalk
