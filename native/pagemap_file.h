// An open /proc/PID/pagemap: large preads of raw entries and the
// PAGEMAP_SCAN ioctl. Pure C++ (no N-API) so it can be reused by tests,
// benchmarks and the accounting walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "lock_pacing.h"

namespace pagewalk {

// Monotonic nanoseconds (vDSO clock_gettime: tens of ns per call).
uint64_t monotonicNs();
// CPU time of the calling thread, nanoseconds (CLOCK_THREAD_CPUTIME_ID:
// user and system time of this thread alone, the kernel's work on its
// behalf included): what a read cost, however often the thread was
// preempted or paused.
uint64_t threadCpuNs();

// Adds the calling thread's CPU time from construction to the end of its
// scope to `sink` (one thread's share of a job's CPU bill).
class AddThreadCpu {
 public:
  explicit AddThreadCpu(uint64_t& sink) : sink_(sink), from_(threadCpuNs()) {}
  ~AddThreadCpu() { sink_ += threadCpuNs() - from_; }
  AddThreadCpu(const AddThreadCpu&) = delete;
  AddThreadCpu& operator=(const AddThreadCpu&) = delete;

 private:
  uint64_t& sink_;
  uint64_t from_;
};

// Categories of PAGEMAP_SCAN (include/uapi/linux/fs.h, 6.7+).
constexpr uint64_t kScanWpAllowed = 1 << 0;
constexpr uint64_t kScanWritten = 1 << 1;
constexpr uint64_t kScanFile = 1 << 2;
constexpr uint64_t kScanPresent = 1 << 3;
constexpr uint64_t kScanSwapped = 1 << 4;
constexpr uint64_t kScanPfnZero = 1 << 5;
constexpr uint64_t kScanHuge = 1 << 6;
constexpr uint64_t kScanSoftDirty = 1 << 7;
constexpr uint64_t kScanGuard = 1 << 8;  // 6.15+
// Every category of 6.7, and every one this file names.
constexpr uint64_t kScanCategories67 = (1 << 8) - 1;
constexpr uint64_t kScanCategoriesNamed = kScanCategories67 | kScanGuard;

// The categories this kernel's PAGEMAP_SCAN knows (kScanCategoriesNamed on
// 6.15+, kScanCategories67 on 6.7-6.14), or 0 without PAGEMAP_SCAN. Asked
// once per process, of /proc/self/pagemap: a scan asking for a category the
// kernel does not know fails with EINVAL, the answer some kernels also give
// for no PAGEMAP_SCAN at all.
uint64_t knownScanCategories();

struct ScanRequest {
  uint64_t startAddress = 0;
  uint64_t endAddress = 0;
  uint64_t categoryInverted = 0;
  uint64_t categoryMask = 0;
  uint64_t categoryAnyofMask = 0;
  uint64_t returnMask = 0;
  uint64_t maxPages = 0;  // 0: no limit
};

// Pauses between the pagemap calls of a walk of a running process: each
// call holds the target's mmap lock (a pread per 2 MiB of address space, a
// PAGEMAP_SCAN for the whole call), and the kernel's rw-semaphore lets a
// reader that re-takes the lock straight away go ahead of a writer that is
// waiting (mmap, munmap, mprotect), until the writer has waited a jiffy or
// two (rwsem.c, RWSEM_WAIT_TIMEOUT). A pause hands it the lock; the walk
// pauses only when a thread of the target may be waiting (lock_pacing.h).
// Between two pauses the walk's first thread runs SCHED_FIFO where it may
// (see docs/performance.md, "The stall"): the kernel's pagemap walk
// reschedules with the lock held, and a thread preempted there keeps the
// writer waiting for as long as other threads have its CPU.
struct LockPauses {
  uint64_t holdNs = 0;   // look for a waiting writer once calls have taken this long; 0: never pause
  uint64_t pauseNs = 0;  // how long each pause lasts
};

// What is known of whether every thread of the target is stopped (SIGSTOP,
// ptrace): a stopped process cannot take its mmap lock, so it needs no pauses.
enum class TargetState { kUnknown, kStopped, kRunning };

// Reads /proc/PID/task/*/stat: stopped when every thread is stopped (T, t)
// or dead (Z, X). Anything unreadable counts as running.
TargetState threadsState(int pid);

struct ScanResult {
  size_t regions = 0;        // regions written, 3 u64 each (start, end, categories)
  uint64_t walkEnd = 0;      // where the kernel stopped; resume here if < end
  bool unsupported = false;  // kernel has no PAGEMAP_SCAN (see knownScanCategories())
};

class PagemapFile {
 public:
  explicit PagemapFile(int pid);
  ~PagemapFile();
  PagemapFile(const PagemapFile&) = delete;
  PagemapFile& operator=(const PagemapFile&) = delete;

  // Reads `count` entries starting at virtual page `firstPage` into out.
  // Returns the number of entries read: fewer than count only at the end of
  // the user address space. Throws SystemError (ESRCH with "process exited")
  // when the target died after the open, which the kernel reports as a
  // silent zero-byte read.
  size_t read(uint64_t firstPage, size_t count, uint64_t* out);

  // One PAGEMAP_SCAN call, regions written to `regionsOut` (capacity in
  // regions). Never throws for a missing ioctl: sets `unsupported`. A
  // request for a category the kernel does not know throws EINVAL.
  ScanResult scan(const ScanRequest& request, uint64_t* regionsOut, size_t capacity);

  // From now on, pause as `pauses` says between calls while the target runs
  // and a writer may be waiting, with reads cut into pieces short enough to
  // keep to the budget. `state`: what the caller already knows (kUnknown:
  // looked up at the first pause due). `gate`: shared with the walk's other
  // thread, if any (null: one of its own). `raise`: whether this thread runs
  // SCHED_FIFO between pauses (one thread per walk, so that the other CPU
  // stays free for everything else).
  void pauseForWriters(const LockPauses& pauses, TargetState state, std::shared_ptr<PaceGate> gate = nullptr,
                       bool raise = true);
  uint64_t pauses() const { return pauses_; }
  uint64_t pausedNs() const { return pausedNs_; }
  // Time of the calls made on a running target at normal priority because
  // the kernel refused SCHED_FIFO (see raisePriority()): 0 when every call
  // due to run raised did.
  uint64_t unraisedNs() const { return unraisedNs_; }

  void close();
  bool isOpen() const { return fd_ >= 0; }
  int pid() const { return pid_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void throwExited() const;
  bool targetAlive();
  bool pacing() const { return lockPauses_.holdNs > 0 && state_ != TargetState::kStopped; }
  // Whether this thread runs SCHED_FIFO between pauses: the walk's first
  // thread, or its second once the first is done (PaceGate::leaderDone).
  bool raised() const { return raise_ || (gate_ && gate_->leaderDone.load(std::memory_order_relaxed)); }
  void beforeLockedCall();
  void afterLockedCall(uint64_t began);
  // kRaised: the thread runs SCHED_FIFO; kLeft: its policy was chosen on
  // purpose (SCHED_IDLE, real-time) and is kept; kRefused: the kernel said no.
  enum class Raise { kRaised, kLeft, kRefused };
  Raise raisePriority();
  void restorePriority();
  void pauseUntil(uint64_t untilNs);

  LockPauses lockPauses_;
  TargetState state_ = TargetState::kUnknown;
  uint64_t heldNs_ = 0;          // call time since the last pause
  uint64_t stateCheckedNs_ = 0;  // when a stopped target was last seen stopped
  uint64_t pauses_ = 0;
  uint64_t pausedNs_ = 0;
  uint64_t unraisedNs_ = 0;
  bool callUnraised_ = false;  // the call under way runs unraised (refused)
  std::shared_ptr<PaceGate> gate_;
  bool raise_ = true;
  // The thread's own policy while it runs SCHED_FIFO between two pauses.
  int raisedThread_ = 0;   // 0: not raised
  int ownPolicy_ = -1;     // -1: not looked up yet
  uint64_t raisedNs_ = 0;  // when the thread was raised

  int fd_ = -1;
  int pid_;
  std::string path_;
};

}  // namespace pagewalk
