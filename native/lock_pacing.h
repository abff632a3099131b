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
// the kernel shows a thread of the target that is contending: one in
// uninterruptible sleep (D: blocked on the lock) or runnable (R: woken by
// the walk's last release and not yet run, as a blocked writer is right
// after a pagemap call returns) that has also been on a CPU since the walk
// last looked at it, or that waits for the walk's own CPU. A writer waiting
// for the lock is woken by every release (every 512 entries), runs, fails
// and sleeps again, so it has always run since the last look; a thread
// computing in user space, or one waiting for another CPU, shows R too but
// has not (its count of times run in /proc/PID/task/TID/schedstat stays
// put), and neither needs the walk to stop at every look: such a thread
// counts once a millisecond (kStillNs). A thread asleep elsewhere (S: a
// timer, epoll, a futex) cannot be waiting for the lock. Where schedstat
// cannot be read, any R or D thread counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace pagewalk {

// The state letter (R, S, D, T, ...) of an open /proc/.../stat file, read
// from its start, or 0 if unreadable; `cpu` (if given): the CPU the thread
// last ran on, or waits for (-1 if unreadable).
char readStatState(int fd, int* cpu = nullptr);

// The threads of one process, their /proc/PID/task/TID/stat and schedstat
// files kept open (a pread of one costs about 1 us), so that whether any of
// them may be waiting for the mmap lock is cheap to ask.
class TargetThreads {
 public:
  explicit TargetThreads(int pid);
  ~TargetThreads();
  TargetThreads(const TargetThreads&) = delete;
  TargetThreads& operator=(const TargetThreads&) = delete;

  // Whether any thread is contending (see above); `active`: whether any is
  // R or D at all. The thread list is read again every kRelistNs; a process
  // of more than kMaxWatched threads, or one whose threads cannot be read,
  // always counts as maybe waiting.
  bool mayWait(uint64_t nowNs, bool& active);
  // After the pause mayWait() asked for: the threads it found count their
  // runs from now, so that one that got the lock and went on computing is
  // not taken for a waiting one at the next look.
  void paused();

  static constexpr size_t kMaxWatched = 64;
  static constexpr uint64_t kRelistNs = 10 * 1000 * 1000;
  static constexpr uint64_t kStillNs = 1000 * 1000;

 private:
  struct Thread {
    long tid = 0;
    int statFd = -1;
    int schedstatFd = -1;    // -1: unreadable; the thread counts whenever R or D
    uint64_t runs = 0;       // times run at the last look that found it R or D
    uint64_t countedNs = 0;  // when it last made mayWait() say yes
    bool found = false;      // it made the last mayWait() say yes
  };
  void relist(uint64_t nowNs);
  void closeAll();

  int pid_;
  std::vector<Thread> threads_;
  bool tooMany_ = false;
  uint64_t listedNs_ = 0;
  bool listed_ = false;
};

// What the threads of one walk share while the target runs: its threads,
// and the time until which every walking thread pauses. A thread that finds
// a writer may be waiting sets it; the other walking thread sees it before
// its next call, so that neither holds the lock through the other's pause.
// The second thread, which is not raised, also stays out while the target
// has been active lately (soloUntilNs: a thread of it seen R or D by the
// raised thread, waiting or not): a thread of normal priority can be
// preempted with the lock held for as long as other threads have its CPU,
// so a target that runs often is read by the raised thread alone, and one
// that sleeps by both. Once the first thread has walked its share
// (leaderDone), the second is raised in its place.
struct PaceGate {
  explicit PaceGate(int pid) : threads(pid) {}
  std::mutex threadsMutex;  // guards threads
  TargetThreads threads;
  std::atomic<uint64_t> pauseUntilNs{0};
  std::atomic<uint64_t> soloUntilNs{0};
  std::atomic<bool> leaderDone{false};
  // How long the second thread stays out after the target was seen active.
  static constexpr uint64_t kSoloNs = 2 * 1000 * 1000;

  // Whether the target may have a writer waiting; when another walking
  // thread is asking already, its answer will come as a pause. A target
  // that the raised thread (`raised`) sees active keeps the second thread
  // out for kSoloNs.
  bool mayWait(uint64_t nowNs, bool raised) {
    std::unique_lock<std::mutex> lock(threadsMutex, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    bool active = false;
    const bool wait = threads.mayWait(nowNs, active);
    if (active && raised) soloUntilNs.store(nowNs + kSoloNs, std::memory_order_relaxed);
    return wait;
  }
  void paused() {
    std::lock_guard<std::mutex> lock(threadsMutex);
    threads.paused();
  }
};

}  // namespace pagewalk
