#include "proc_facts.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "system_error.h"

namespace pagewalk {

namespace {

// The whole file into out; 0, or the errno of the call (*syscall) that failed.
int readWhole(const std::string& path, std::string& out, const char** syscall = nullptr) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (syscall != nullptr) *syscall = "open";
  if (fd < 0) return errno;
  if (syscall != nullptr) *syscall = "read";
  char buf[4096];
  int error = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return error;
}

}  // namespace

std::string readProcText(const std::string& path) {
  std::string text;
  const char* syscall = "open";
  const int error = readWhole(path, text, &syscall);
  if (error != 0) throw SystemError(error, syscall, path);
  return text;
}

namespace {

std::string required(int pid, const char* file, std::string& text) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  const char* syscall = "open";
  const int error = readWhole(path, text, &syscall);
  if (error != 0) throw SystemError(error, syscall, path);
  return path;
}

uint64_t parseDecimal(const char*& p, const char* end) {
  uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) v = v * 10 + static_cast<uint64_t>(*p - '0');
  return v;
}

// "pid (comm) state ppid pgrp session tty tpgid flags ... starttime ...":
// comm may hold spaces and parentheses, so the fields after it start after
// the last ')' (as lib/proc/stat.ts reads them).
void parseStat(const std::string& text, const std::string& path, ProcFacts& f) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open || close + 2 > text.size())
    throw SystemError(EINVAL, "read", path, "not a stat line");
  f.comm.assign(text, open + 1, close - open - 1);
  const char* p = text.data() + close + 2;
  const char* end = text.data() + text.size();
  // Field k after comm: 0 state, 1 ppid, 6 flags, 19 starttime.
  for (int k = 0; k <= 19 && p < end; k++) {
    const char* field = p;
    if (k == 0) {
      f.state = *p;
    } else if (k == 1) {
      const bool negative = *p == '-';
      if (negative) p++;
      const uint64_t v = parseDecimal(p, end);
      f.ppid = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    } else if (k == 6) {
      f.flags = parseDecimal(p, end);
    } else if (k == 19) {
      f.startTime = parseDecimal(p, end);
    }
    p = field;
    while (p < end && *p != ' ') p++;
    if (p < end) p++;
  }
}

// The first number after a "Key:" at the start of a line, or 0.
uint64_t statusNumber(const std::string& text, const char* key) {
  const size_t keyLength = std::strlen(key);
  size_t at = 0;
  for (;;) {
    at = text.find(key, at);
    if (at == std::string::npos) return 0;
    if (at == 0 || text[at - 1] == '\n') break;
    at += keyLength;
  }
  const char* p = text.data() + at + keyLength;
  const char* end = text.data() + text.size();
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return parseDecimal(p, end);
}

}  // namespace

ProcFacts readProcFacts(int pid, uint32_t wanted) {
  ProcFacts f;
  std::string text;
  if (wanted & kFactsStat) {
    const std::string path = required(pid, "stat", text);
    parseStat(text, path, f);
  }
  if (wanted & kFactsStatus) {
    text.clear();
    required(pid, "status", text);
    f.uid = statusNumber(text, "Uid:");
    f.vmSizeKb = statusNumber(text, "VmSize:");
    f.vmRssKb = statusNumber(text, "VmRSS:");
  }
  if (wanted & kFactsCmdline) {
    // Exited meanwhile, or unreadable: no arguments.
    if (readWhole("/proc/" + std::to_string(pid) + "/cmdline", f.cmdline) != 0) f.cmdline.clear();
  }
  if (wanted & kFactsExe) {
    // Kernel threads and zombies have no exe.
    const std::string path = "/proc/" + std::to_string(pid) + "/exe";
    char buf[4096];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    f.exeKnown = n >= 0;
    if (n > 0) f.exe.assign(buf, static_cast<size_t>(n));
  }
  return f;
}

}  // namespace pagewalk
