#include "lock_pacing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace pagewalk {

char readStatState(int fd) {
  char buf[512];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  buf[n] = 0;
  // The command name may hold ')' itself: the state follows the last one.
  const char* close = nullptr;
  for (char* p = buf; *p; p++)
    if (*p == ')') close = p;
  if (close == nullptr || close[1] != ' ') return 0;
  return close[2];
}

TargetThreads::TargetThreads(int pid) : pid_(pid) {}

TargetThreads::~TargetThreads() { closeAll(); }

void TargetThreads::closeAll() {
  for (int fd : statFds_) ::close(fd);
  statFds_.clear();
}

void TargetThreads::relist(uint64_t nowNs) {
  closeAll();
  tooMany_ = false;
  listed_ = true;
  listedNs_ = nowNs;
  const std::string task = "/proc/" + std::to_string(pid_) + "/task";
  DIR* dir = ::opendir(task.c_str());
  if (dir == nullptr) {
    tooMany_ = true;  // cannot tell: pace
    return;
  }
  while (dirent* d = ::readdir(dir)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    if (statFds_.size() >= kMaxWatched) {
      tooMany_ = true;
      break;
    }
    const std::string path = task + "/" + d->d_name + "/stat";
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) statFds_.push_back(fd);  // else: exited meanwhile
  }
  ::closedir(dir);
  if (statFds_.empty()) tooMany_ = true;
}

bool TargetThreads::mayWait(uint64_t nowNs) {
  if (!listed_ || nowNs - listedNs_ >= kRelistNs) relist(nowNs);
  if (tooMany_) return true;
  for (int fd : statFds_) {
    const char state = readStatState(fd);
    // 0: the thread exited (its stat reads empty or fails): not waiting.
    if (state == 'R' || state == 'D') return true;
  }
  return false;
}

}  // namespace pagewalk
