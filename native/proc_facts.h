// The facts about one process that a measurement needs besides its pages,
// read from /proc/PID/{stat,status,cmdline,exe} in one call: each file
// opened once, read with one system call into a stack buffer, and only the
// fields wanted parsed. In JavaScript the same four files cost 50-75 us per
// process (readFileSync's open, fstat, read, close, a string and a regular
// expression each); here about 7 us. lib/proc/facts.ts is its typed face;
// lib/proc/{stat,status,cmdline,exe}.ts stay the parsers of the API's own
// reads.
#pragma once

#include <cstdint>
#include <string>

namespace pagewalk {

// Which files readProcFacts() reads.
enum ProcFactsWanted : uint32_t {
  kFactsStat = 1u << 0,     // ppid, state, flags, start time, comm
  kFactsStatus = 1u << 1,   // uid, VmSize, VmRSS
  kFactsCmdline = 1u << 2,  // the arguments (empty when unreadable)
  kFactsExe = 1u << 3,      // the exe link (absent when unreadable)
};

struct ProcFacts {
  // stat
  int64_t ppid = 0;
  char state = '?';
  uint64_t flags = 0;
  uint64_t startTime = 0;  // clock ticks after boot
  std::string comm;        // bytes as the kernel gives them
  // status
  uint64_t uid = 0;       // the real uid (first of Uid:)
  uint64_t vmSizeKb = 0;  // 0 without an mm
  uint64_t vmRssKb = 0;
  // cmdline: NUL-separated bytes as the kernel gives them
  std::string cmdline;
  // exe
  bool exeKnown = false;
  std::string exe;
};

// Throws SystemError (with the file's path) when stat or status cannot be
// read: ENOENT or ESRCH once the process is gone. cmdline and exe are
// optional facts: a kernel thread or zombie has neither.
ProcFacts readProcFacts(int pid, uint32_t wanted);

// The whole of a file, read in one go: a /proc seq_file (maps, smaps) hands
// out about 4 KiB per read, and fs.promises.readFile took a round trip
// through the thread pool for each (730 for the maps of 60,000 mappings).
// Throws SystemError with the path and the call (open, read) that failed.
std::string readProcText(const std::string& path);

}  // namespace pagewalk
