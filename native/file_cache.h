// How much of a file is in memory: cachestat(2) (Linux 6.5+) over the whole
// file, mincore(2) on a mapping of it where the kernel has no cachestat.
#pragma once

#include <cstdint>
#include <string>

namespace pagewalk {

// cachestat(2)'s figures for a range of a file, in pages.
struct CacheStat {
  uint64_t cached = 0;
  uint64_t dirty = 0;
  uint64_t writeback = 0;
  uint64_t evicted = 0;  // for tmpfs/shmem: in swap
  uint64_t recentlyEvicted = 0;
};

// cachestat(2) (syscall 451, Linux 6.5+) over [offset, offset + length) of
// fd (length 0: to the end). Returns 0, or the errno (ENOSYS: no cachestat).
int cachestat(int fd, uint64_t offset, uint64_t length, CacheStat* out);

struct FileCache {
  int error = 0;            // errno of a failed open or call; 0: the figures hold
  uint64_t cached = 0;      // pages in the page cache (resident)
  uint64_t dirty = 0;       // of which dirty
  uint64_t writeback = 0;   // of which under writeback
  uint64_t evicted = 0;     // evicted pages: in swap, for tmpfs/shmem files (cachestat only)
  bool viaMincore = false;  // the kernel had no cachestat
};

// Opens `path` read-only (a /proc/PID/fd/N link reopens a deleted file or a
// memfd) and counts its resident pages. Never throws: errors are in .error.
FileCache fileCacheOf(const std::string& path);

}  // namespace pagewalk
