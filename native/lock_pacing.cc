#include "lock_pacing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace pagewalk {

namespace {

// Reads an open /proc file from its start into buf as a C string (at most
// size - 1 bytes); false if it reads nothing or fails.
bool readFromStart(int fd, char* buf, size_t size) {
  ssize_t n;
  do {
    n = ::pread(fd, buf, size - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

}  // namespace

char readStatState(int fd, int* cpu) {
  char buf[512];
  if (!readFromStart(fd, buf, sizeof buf)) return 0;
  // The command name may hold ')' itself: the state follows the last one.
  const char* close = nullptr;
  for (char* p = buf; *p; p++)
    if (*p == ')') close = p;
  if (close == nullptr || close[1] != ' ') return 0;
  if (cpu != nullptr) {
    // Field 39 (processor), 36 fields after the state (field 3).
    *cpu = -1;
    const char* p = close + 2;
    for (int field = 3; field < 39 && *p != 0; p++)
      if (*p == ' ') field++;
    if (*p >= '0' && *p <= '9') *cpu = std::atoi(p);
  }
  return close[2];
}

namespace {

int openRead(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// The third figure of an open /proc/.../schedstat ("run_ns wait_ns runs"):
// how many times the thread has been put on a CPU. 0 if unreadable.
uint64_t readRuns(int fd) {
  char buf[96];
  if (!readFromStart(fd, buf, sizeof buf)) return 0;
  const char* p = buf;
  for (int field = 0; field < 2; field++) {
    while (*p != 0 && *p != ' ') p++;
    if (*p == 0) return 0;
    p++;
  }
  uint64_t runs = 0;
  for (; *p >= '0' && *p <= '9'; p++) runs = runs * 10 + static_cast<uint64_t>(*p - '0');
  return runs;
}

}  // namespace

TargetThreads::TargetThreads(int pid) : pid_(pid) {}

TargetThreads::~TargetThreads() { closeAll(); }

void TargetThreads::closeAll() {
  for (Thread& t : threads_) {
    if (t.statFd >= 0) ::close(t.statFd);
    if (t.schedstatFd >= 0) ::close(t.schedstatFd);
  }
  threads_.clear();
}

// Threads listed before keep their files and their count of runs; new ones
// are opened, gone ones closed.
void TargetThreads::relist(uint64_t nowNs) {
  tooMany_ = false;
  listed_ = true;
  listedNs_ = nowNs;
  const std::string task = "/proc/" + std::to_string(pid_) + "/task";
  DIR* dir = ::opendir(task.c_str());
  if (dir == nullptr) {
    closeAll();
    tooMany_ = true;  // cannot tell: pace
    return;
  }
  std::vector<Thread> listed;
  while (dirent* d = ::readdir(dir)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    if (listed.size() >= kMaxWatched) {
      tooMany_ = true;
      break;
    }
    const long tid = std::strtol(d->d_name, nullptr, 10);
    auto known =
        std::find_if(threads_.begin(), threads_.end(), [tid](const Thread& t) { return t.tid == tid; });
    if (known != threads_.end()) {
      listed.push_back(*known);
      known->statFd = known->schedstatFd = -1;  // moved
      continue;
    }
    Thread t;
    t.tid = tid;
    const std::string dirPath = task + "/" + d->d_name;
    t.statFd = openRead(dirPath + "/stat");
    if (t.statFd < 0) continue;  // exited meanwhile
    t.schedstatFd = openRead(dirPath + "/schedstat");
    listed.push_back(t);
  }
  ::closedir(dir);
  closeAll();
  threads_ = std::move(listed);
  if (threads_.empty()) tooMany_ = true;
}

bool TargetThreads::mayWait(uint64_t nowNs, bool& active) {
  if (!listed_ || nowNs - listedNs_ >= kRelistNs) relist(nowNs);
  active = tooMany_;
  if (tooMany_) return true;
  bool wait = false;
  for (Thread& t : threads_) {
    t.found = false;
    int cpu = -1;
    const char state = readStatState(t.statFd, &cpu);
    // 0: the thread exited (its stat reads empty or fails): not waiting.
    if (state != 'R' && state != 'D') continue;
    active = true;
    // A thread that has not run since the last look is computing on, or
    // waiting for a CPU (0: no schedstat here, or unreadable: it counts).
    // Waiting for this walk's own CPU, which a raised walk keeps, it counts:
    // a writer woken there cannot take the lock until the walk pauses. One
    // that stays so counts again once kStillNs after it last counted: a
    // writer queued behind another thread on another CPU may be pulled
    // onto the one a pause leaves idle.
    const uint64_t runs = t.schedstatFd >= 0 ? readRuns(t.schedstatFd) : 0;
    if (runs != 0 && runs == t.runs && (cpu < 0 || cpu != ::sched_getcpu()) && nowNs - t.countedNs < kStillNs)
      continue;
    t.runs = runs;
    t.countedNs = nowNs;
    t.found = true;
    wait = true;
  }
  return wait;
}

void TargetThreads::paused() {
  for (Thread& t : threads_) {
    if (!t.found) continue;
    t.found = false;
    if (t.schedstatFd >= 0) t.runs = readRuns(t.schedstatFd);
  }
}

}  // namespace pagewalk
