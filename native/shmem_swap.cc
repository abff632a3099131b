#include "shmem_swap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <utility>
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

// The mapping's file, or null where it is no file that can be opened again:
// anonymous-inode mappings (the io_uring rings that Node 24's libuv maps, for
// one) sit on device 0 with an inode, as shmem does, but map_files answers
// ENXIO for them. They are not shmem, so they hold no swapped shmem.
std::unique_ptr<ReadOnlyFile> openMapFile(int pid, uint64_t start, uint64_t end) {
  try {
    return std::make_unique<ReadOnlyFile>(mapFilePath(pid, start, end));
  } catch (const SystemError& e) {
    if (e.errnum() == ENXIO) return nullptr;
    throw;
  }
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
  const auto file = openMapFile(pid, start, end);
  if (!file || !onShmem(*file)) return result;
  const ReadOnlyFile& f = *file;
  result.isShmem = true;
  if (!evictedPages(f, fileOffset, end - start, &result.swappedPages)) result.unsupported = true;
  return result;
}

ShmemSwapResult shmemSwapMap(int pid, uint64_t start, uint64_t end, uint64_t fileOffset, uint64_t firstPage,
                             uint64_t count, uint8_t* out) {
  ShmemSwapResult result;
  std::fill(out, out + count, uint8_t{0});
  const auto file = openMapFile(pid, start, end);
  if (!file || !onShmem(*file)) return result;
  const ReadOnlyFile& f = *file;
  result.isShmem = true;
  const uint64_t pages = (end - start) >> kPageShift;
  if (firstPage >= pages) return result;
  const uint64_t last = std::min(pages, firstPage + count);
  // Ranges of pages to ask about, halved while they hold some swapped pages and some not.
  std::vector<std::pair<uint64_t, uint64_t>> todo{{firstPage, last}};
  while (!todo.empty()) {
    const auto [lo, hi] = todo.back();
    todo.pop_back();
    uint64_t swapped = 0;
    if (!evictedPages(f, fileOffset + (lo << kPageShift), (hi - lo) << kPageShift, &swapped)) {
      result.unsupported = true;
      return result;
    }
    if (swapped == 0) continue;
    if (swapped >= hi - lo) {
      std::fill(out + (lo - firstPage), out + (hi - firstPage), uint8_t{1});
      result.swappedPages += hi - lo;
      continue;
    }
    const uint64_t mid = lo + (hi - lo) / 2;
    todo.emplace_back(mid, hi);
    todo.emplace_back(lo, mid);
  }
  return result;
}

uint64_t shmemSwappedBehindHoles(int pid, uint64_t start, uint64_t end, uint64_t fileOffset) {
  const auto file = openMapFile(pid, start, end);
  if (!file) return 0;
  const ReadOnlyFile& f = *file;
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
