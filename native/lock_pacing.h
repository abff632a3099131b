// When a walk of a running process pauses for the process's own mmap
// writers. Pure C++ (no N-API).
//
// A pagemap read or PAGEMAP_SCAN holds the target's mmap lock for reading
// (the kernel drops it every 2 MiB of address space). A thread of the target
// that maps, unmaps or protects memory needs it for writing: it spins a few
// microseconds, then sleeps (D) until a release wakes it, and a reader that
// takes the lock again before the woken writer has run goes ahead of it
// (rwsem reader stealing) until the writer has waited a jiffy or two. A
// pause hands it the lock, but a pause costs what the timer makes of it:
// on this kind of virtual machine a 50 us sleep takes 70-85 us and a wake-up
// 20 us or more (docs/performance.md, "Pacing"). So a walk pauses only when
// the kernel shows a thread of the target that could be waiting: one that
// is runnable or running (R: woken by the walk's last release and not yet
// run, or about to call mmap) or in uninterruptible sleep (D: blocked on the
// lock). A target whose threads all sleep elsewhere (S: a timer, epoll, a
// futex) cannot be waiting for the lock, and the walk goes on.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace pagewalk {

// The state letter (R, S, D, T, ...) of an open /proc/.../stat file, read
// from its start, or 0 if unreadable.
char readStatState(int fd);

// The threads of one process, their /proc/PID/task/TID/stat files kept open
// (a pread of one costs about 1 us), so that whether any of them may be
// waiting for the mmap lock is cheap to ask.
class TargetThreads {
 public:
  explicit TargetThreads(int pid);
  ~TargetThreads();
  TargetThreads(const TargetThreads&) = delete;
  TargetThreads& operator=(const TargetThreads&) = delete;

  // Whether any thread is R or D (see above). The thread list is read again
  // every kRelistNs; a process of more than kMaxWatched threads, or one
  // whose threads cannot be read, always counts as maybe waiting.
  bool mayWait(uint64_t nowNs);

  static constexpr size_t kMaxWatched = 64;
  static constexpr uint64_t kRelistNs = 10 * 1000 * 1000;

 private:
  void relist(uint64_t nowNs);
  void closeAll();

  int pid_;
  std::vector<int> statFds_;
  bool tooMany_ = false;
  uint64_t listedNs_ = 0;
  bool listed_ = false;
};

// What the threads of one walk share while the target runs: its threads,
// and the time until which every walking thread pauses. A thread that finds
// a writer may be waiting sets it; the other walking thread sees it before
// its next call, so that neither holds the lock through the other's pause.
// The second thread, which is not raised, also stays out while the target
// has been active lately (soloUntilNs): a thread of normal priority can be
// preempted with the lock held for as long as other threads have its CPU,
// so a target that takes its lock often is read by the raised thread alone,
// and one that sleeps by both.
struct PaceGate {
  explicit PaceGate(int pid) : threads(pid) {}
  std::mutex threadsMutex;  // guards threads
  TargetThreads threads;
  std::atomic<uint64_t> pauseUntilNs{0};
  std::atomic<uint64_t> soloUntilNs{0};
  // How long the second thread stays out after the target was seen active.
  static constexpr uint64_t kSoloNs = 2 * 1000 * 1000;

  // Whether the target may have a writer waiting; when another walking
  // thread is asking already, its answer will come as a pause.
  bool mayWait(uint64_t nowNs) {
    std::unique_lock<std::mutex> lock(threadsMutex, std::try_to_lock);
    return lock.owns_lock() && threads.mayWait(nowNs);
  }
};

}  // namespace pagewalk
