#include "pagemap_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

#include "page_size.h"
#include "system_error.h"

namespace pagewalk {

namespace {

// Declared here because the build machine's uapi headers may predate 6.7.
struct PmScanArg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);

constexpr size_t kEntrySize = sizeof(uint64_t);

// errno of a PAGEMAP_SCAN of page 0 (below every mapping) reporting
// `categories`, or 0 when the kernel took it.
int probeScan(int fd, uint64_t categories) {
  uint64_t region[3];
  PmScanArg arg{};
  arg.size = sizeof(arg);
  arg.end = uint64_t{1} << kPageShift;
  arg.vec = reinterpret_cast<uint64_t>(region);
  arg.vec_len = 1;
  arg.category_anyof_mask = kScanPresent | kScanSwapped;
  arg.return_mask = categories;
  int rc;
  do {
    rc = ::ioctl(fd, kPagemapScan, &arg);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

// While pausing, reads are cut into pieces of this many entries (4 MiB of
// address space, two holds of the lock, about 50 us when every page is
// present), so that no call runs far past the budget between pauses.
constexpr size_t kPacedReadEntries = 1024;
// A target found stopped is looked at again this often (its leader only: a
// SIGCONT wakes every thread at once), so one resumed during a long walk
// gets pauses from then on.
constexpr uint64_t kStoppedRecheckNs = 5 * 1000 * 1000;
// A raised thread that finds no writer waiting drops back to its own policy
// after this long all the same, so that the machine's other threads (the
// event loop among them) get its CPU now and then.
constexpr uint64_t kRaisedStretchNs = 1000 * 1000;

// The state letter of a /proc/.../stat, or 0 if unreadable.
char statState(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return 0;
  const char state = readStatState(fd);
  ::close(fd);
  return state;
}

bool cannotLock(char state) { return state == 'T' || state == 't' || state == 'Z' || state == 'X'; }

// Set once SCHED_FIFO has been refused (no CAP_SYS_NICE, RLIMIT_RTPRIO 0, a
// cgroup without real-time time): the walk then paces as before, asks no
// more, and counts the time it holds the lock unraised (unraisedNs()).
std::atomic<bool> fifoRefused{false};

// The scheduler calls as system calls: musl's sched_getscheduler() and
// sched_setscheduler() always fail with ENOSYS (musl leaves scheduling
// policy to threads, pthread_setschedparam), so a libc call would never
// raise the thread on Alpine. The kernel's calls act on one thread (0: the
// caller), which is what the walk wants.
int threadPolicy(pid_t tid) { return static_cast<int>(::syscall(SYS_sched_getscheduler, tid)); }
int setThreadPolicy(pid_t tid, int policy, const sched_param& param) {
  return static_cast<int>(::syscall(SYS_sched_setscheduler, tid, policy, &param));
}

}  // namespace

uint64_t threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

TargetState threadsState(int pid) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(task.c_str());
  if (dir == nullptr) return TargetState::kRunning;
  TargetState state = TargetState::kStopped;
  bool any = false;
  while (dirent* d = ::readdir(dir)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    any = true;
    if (!cannotLock(statState(task + "/" + d->d_name + "/stat"))) {
      state = TargetState::kRunning;
      break;
    }
  }
  ::closedir(dir);
  return any ? state : TargetState::kRunning;
}

void PagemapFile::pauseForWriters(const LockPauses& pauses, TargetState state, std::shared_ptr<PaceGate> gate,
                                  bool raise) {
  lockPauses_ = pauses;
  state_ = state;
  heldNs_ = 0;
  stateCheckedNs_ = monotonicNs();
  gate_ = std::move(gate);
  raise_ = raise;
}

// Between two pauses the thread runs SCHED_FIFO at the lowest real-time
// priority. pagemap_read() calls cond_resched() at the end of every 2 MiB
// with the target's mmap lock held; a thread of normal priority is switched
// out there whenever another has become due (typically the target's own
// thread waking up, which then blocks on the lock), and its CPU may go to
// any third thread for a whole time slice, milliseconds, with the lock
// still held. A SCHED_FIFO thread is not switched out for a normal one, so
// the lock is held for the call's own time only. Only threads of the normal
// policies are raised: one that was made SCHED_IDLE or real-time on purpose
// is left as it is.
PagemapFile::Raise PagemapFile::raisePriority() {
  if (raisedThread_ != 0) return Raise::kRaised;
  // Looked up once: a handle's walk runs on one thread.
  if (ownPolicy_ < 0) ownPolicy_ = threadPolicy(0);
  if (ownPolicy_ != SCHED_OTHER && ownPolicy_ != SCHED_BATCH) return Raise::kLeft;
  if (fifoRefused.load(std::memory_order_relaxed)) return Raise::kRefused;
  sched_param fifo{};
  fifo.sched_priority = ::sched_get_priority_min(SCHED_FIFO);
  // RESET_ON_FORK: a thread started meanwhile does not inherit it.
  if (setThreadPolicy(0, SCHED_FIFO | SCHED_RESET_ON_FORK, fifo) != 0) {
    fifoRefused.store(true, std::memory_order_relaxed);
    return Raise::kRefused;
  }
  raisedThread_ = static_cast<pid_t>(::syscall(SYS_gettid));
  raisedNs_ = monotonicNs();
  return Raise::kRaised;
}

// Back to the thread's own policy (its nice value was kept meanwhile).
// By thread id: close() may run on another thread than the walk's.
void PagemapFile::restorePriority() {
  if (raisedThread_ == 0) return;
  sched_param normal{};
  setThreadPolicy(raisedThread_, ownPolicy_, normal);
  raisedThread_ = 0;
}

// Every pause ends at normal priority, and so does the pause itself: a
// real-time thread waking from it would take the CPU from the writer the
// pause is for. The default timer slack (50 us) would stretch a short pause
// several times over; the thread's own is put back afterwards.
void PagemapFile::pauseUntil(uint64_t untilNs) {
  restorePriority();
  const uint64_t from = monotonicNs();
  if (untilNs <= from) return;
  const int slack = ::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  const timespec until{static_cast<time_t>(untilNs / 1000000000u), static_cast<long>(untilNs % 1000000000u)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
  if (slack > 0) ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(slack), 0, 0, 0);
  pauses_++;
  pausedNs_ += monotonicNs() - from;
}

void PagemapFile::beforeLockedCall() {
  callUnraised_ = false;
  if (state_ != TargetState::kRunning || lockPauses_.holdNs == 0) return;
  // The walk's other thread found a writer that may be waiting: pause too,
  // or this thread's reads would hold the lock through that pause. The
  // unraised thread stays out while the target is active (PaceGate).
  if (gate_) {
    const uint64_t now = monotonicNs();
    uint64_t until = gate_->pauseUntilNs.load(std::memory_order_relaxed);
    if (!raised()) until = std::max(until, gate_->soloUntilNs.load(std::memory_order_relaxed));
    if (until > now) pauseUntil(until);
  }
  // One thread of a walk is raised at a time (raised()); a refusal is counted.
  callUnraised_ = raised() && raisePriority() == Raise::kRefused;
}

void PagemapFile::afterLockedCall(uint64_t began) {
  if (lockPauses_.holdNs == 0) return;
  const uint64_t now = monotonicNs();
  heldNs_ += now - began;
  if (callUnraised_) unraisedNs_ += now - began;
  if (heldNs_ < lockPauses_.holdNs) return;
  heldNs_ = 0;
  if (state_ == TargetState::kUnknown) {
    state_ = threadsState(pid_);
    stateCheckedNs_ = now;
  } else if (state_ == TargetState::kStopped && now - stateCheckedNs_ >= kStoppedRecheckNs) {
    if (!cannotLock(statState("/proc/" + std::to_string(pid_) + "/stat"))) state_ = TargetState::kRunning;
    stateCheckedNs_ = now;
  }
  if (state_ != TargetState::kRunning) {
    restorePriority();
    return;
  }
  if (!gate_) gate_ = std::make_shared<PaceGate>(pid_);
  // Pause only when the kernel shows a thread that may be waiting for the
  // lock (lock_pacing.h); else go on, raised for at most kRaisedStretchNs.
  if (!gate_->mayWait(now, raised())) {
    if (raisedThread_ != 0 && now - raisedNs_ >= kRaisedStretchNs) restorePriority();
    return;
  }
  // From now, back at the thread's own policy: the look and the policy
  // change may have taken a microsecond or more, a whole short pause.
  restorePriority();
  const uint64_t until = monotonicNs() + lockPauses_.pauseNs;
  uint64_t set = gate_->pauseUntilNs.load(std::memory_order_relaxed);
  while (set < until && !gate_->pauseUntilNs.compare_exchange_weak(set, until, std::memory_order_relaxed)) {
  }
  pauseUntil(until);
  gate_->paused();
}

PagemapFile::PagemapFile(int pid) : pid_(pid), path_("/proc/" + std::to_string(pid) + "/pagemap") {
  int fd;
  do {
    fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw SystemError(errno, "open", path_);
  fd_ = fd;
}

PagemapFile::~PagemapFile() { close(); }

void PagemapFile::close() {
  // The walk runs on a pool thread that outlives it.
  restorePriority();
  gate_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

uint64_t knownScanCategories() {
  static const uint64_t known = [] {
    int fd;
    do {
      fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return uint64_t{0};
    uint64_t categories = 0;
    if (probeScan(fd, kScanCategoriesNamed) == 0)
      categories = kScanCategoriesNamed;
    else if (probeScan(fd, kScanCategories67) == 0)
      categories = kScanCategories67;
    ::close(fd);
    return categories;
  }();
  return known;
}

void PagemapFile::throwExited() const { throw SystemError(ESRCH, "read", path_, "process exited"); }

// Page 0 lies below the end of every user address space, so a read there
// returns an entry for as long as the target's mm is alive.
bool PagemapFile::targetAlive() {
  uint64_t probe;
  ssize_t n;
  do {
    n = ::pread(fd_, &probe, kEntrySize, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw SystemError(errno, "read", path_);
  return n == static_cast<ssize_t>(kEntrySize);
}

size_t PagemapFile::read(uint64_t firstPage, size_t count, uint64_t* out) {
  if (fd_ < 0) throw SystemError(EBADF, "read", path_, "pagemap handle is closed");
  size_t done = 0;
  while (done < count) {
    const size_t entries = pacing() ? std::min(count - done, kPacedReadEntries) : count - done;
    const off_t offset = static_cast<off_t>((firstPage + done) * kEntrySize);
    beforeLockedCall();
    const uint64_t began = monotonicNs();
    const ssize_t n = ::pread(fd_, out + done, entries * kEntrySize, offset);
    if (n > 0) afterLockedCall(began);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      restorePriority();  // the pool thread goes on to other work
      throw SystemError(error, "read", path_);
    }
    if (n == 0) {
      // End of the address space, or a dead process: the kernel answers both
      // with zero bytes, so ask again at an address that always exists.
      if (!targetAlive()) {
        restorePriority();
        throwExited();
      }
      break;
    }
    // The kernel only hands out whole entries; a partial one cannot happen,
    // but never trust a byte count into an index.
    done += static_cast<size_t>(n) / kEntrySize;
  }
  return done;
}

ScanResult PagemapFile::scan(const ScanRequest& request, uint64_t* regionsOut, size_t capacity) {
  if (fd_ < 0) throw SystemError(EBADF, "ioctl", path_, "pagemap handle is closed");
  ScanResult result;
  PmScanArg arg{};
  arg.size = sizeof(arg);
  arg.start = request.startAddress;
  arg.end = request.endAddress;
  arg.vec = reinterpret_cast<uint64_t>(regionsOut);
  arg.vec_len = capacity;
  arg.max_pages = request.maxPages;
  arg.category_inverted = request.categoryInverted;
  arg.category_mask = request.categoryMask;
  arg.category_anyof_mask = request.categoryAnyofMask;
  arg.return_mask = request.returnMask;
  int rc;
  beforeLockedCall();
  const uint64_t began = monotonicNs();
  do {
    rc = ::ioctl(fd_, kPagemapScan, &arg);
  } while (rc < 0 && errno == EINTR);
  if (rc >= 0) afterLockedCall(began);
  if (rc < 0) {
    const int error = errno;
    restorePriority();  // the pool thread goes on to other work
    // Kernels without the ioctl answer ENOTTY (or EINVAL). A kernel with it
    // answers EINVAL for a category it does not know (GUARD before 6.15):
    // that request fails, it does not make PAGEMAP_SCAN unsupported.
    const uint64_t known = knownScanCategories();
    if (error == ENOTTY || (error == EINVAL && known == 0)) {
      result.unsupported = true;
      return result;
    }
    if (error == ESRCH) throwExited();
    const uint64_t asked =
        request.categoryInverted | request.categoryMask | request.categoryAnyofMask | request.returnMask;
    if (error == EINVAL && (asked & ~known) != 0) {
      char detail[96];
      snprintf(detail, sizeof detail, "PAGEMAP_SCAN categories 0x%llx unknown to this kernel",
               static_cast<unsigned long long>(asked & ~known));
      throw SystemError(error, "ioctl", path_, detail);
    }
    throw SystemError(error, "ioctl", path_);
  }
  result.regions = static_cast<size_t>(rc);
  result.walkEnd = arg.walk_end;
  // A dead target's mm cannot be walked: the kernel returns no regions and
  // walk_end == start. Tell that apart from an empty range.
  if (rc == 0 && arg.walk_end == request.startAddress && request.endAddress > request.startAddress) {
    if (!targetAlive()) {
      restorePriority();
      throwExited();
    }
  }
  return result;
}

}  // namespace pagewalk
