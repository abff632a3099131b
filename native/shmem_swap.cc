#include "shmem_swap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <vector>

#include "file_cache.h"
#include "large_vector.h"
#include "page_size.h"
#include "pagemap_entry.h"
#include "pagemap_file.h"
#include "readonly_file.h"
#include "system_error.h"

namespace pagewalk {

namespace {

constexpr long kTmpfsMagic = 0x01021994;

// The mapping as the file it maps, opened through /proc/PID/map_files.
std::string mapFilePath(int pid, uint64_t start, uint64_t end) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, start, end);
  return buf;
}

bool onShmem(const ReadOnlyFile& f) {
  struct statfs st;
  if (::fstatfs(f.fd(), &st) != 0) throw SystemError(errno, "fstatfs", f.path());
  return st.f_type == kTmpfsMagic;
}

// Returns false when the kernel has no cachestat.
bool evictedPages(const ReadOnlyFile& f, uint64_t offset, uint64_t length, uint64_t* out) {
  CacheStat cs;
  const int err = cachestat(f.fd(), offset, length, &cs);
  if (err == ENOSYS) return false;
  if (err != 0) throw SystemError(err, "cachestat", f.path());
  *out = cs.evicted;
  return true;
}

}  // namespace

ShmemSwapResult shmemSwappedPages(int pid, uint64_t start, uint64_t end, uint64_t fileOffset) {
  ShmemSwapResult result;
  ReadOnlyFile f(mapFilePath(pid, start, end));
  if (!onShmem(f)) return result;
  result.isShmem = true;
  if (!evictedPages(f, fileOffset, end - start, &result.swappedPages)) result.unsupported = true;
  return result;
}

uint64_t shmemSwappedBehindHoles(int pid, uint64_t start, uint64_t end, uint64_t fileOffset) {
  ReadOnlyFile f(mapFilePath(pid, start, end));
  PagemapFile pagemap(pid);
  const uint64_t firstPage = start >> kPageShift;
  const uint64_t pages = (end - start) >> kPageShift;
  LargeVector<uint64_t> buf(64 * 1024);
  uint64_t total = 0;
  uint64_t holeStart = 0;
  bool inHole = false;
  auto flush = [&](uint64_t holeEnd) {
    uint64_t n = 0;
    if (evictedPages(f, fileOffset + (holeStart << kPageShift), (holeEnd - holeStart) << kPageShift, &n))
      total += n;
    inHole = false;
  };
  for (uint64_t done = 0; done < pages;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(pages - done, buf.size()));
    const size_t got = pagemap.read(firstPage + done, want, buf.data());
    for (size_t i = 0; i < got; i++) {
      const bool hole = !(buf[i] & (kPresent | kSwapped));
      if (hole && !inHole) {
        inHole = true;
        holeStart = done + i;
      } else if (!hole && inHole) {
        flush(done + i);
      }
    }
    if (got < want) break;
    done += want;
  }
  if (inHole) flush(pages);
  return total;
}

}  // namespace pagewalk
