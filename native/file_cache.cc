#include "file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "page_size.h"

namespace pagewalk {
namespace {

constexpr long kSysCachestat = 451;  // x86-64 and the generic table alike

struct CachestatRange {
  uint64_t off;
  uint64_t len;  // 0: to the end of the file
};
struct Cachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

// Maps the file without touching it (no page is faulted in or read from
// disk) and asks mincore which of its pages are resident.
void viaMincore(int fd, FileCache& out) {
  out.viaMincore = true;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    out.error = errno;
    return;
  }
  if (st.st_size <= 0) return;
  const uint64_t pages = (static_cast<uint64_t>(st.st_size) + kPageSize - 1) / kPageSize;
  // In slices of 1 GiB, so that a huge file never needs a huge vector.
  constexpr uint64_t kSlice = 262144;
  std::vector<unsigned char> vec(static_cast<size_t>(pages < kSlice ? pages : kSlice));
  for (uint64_t first = 0; first < pages; first += kSlice) {
    const uint64_t n = pages - first < kSlice ? pages - first : kSlice;
    void* p =
        ::mmap(nullptr, n * kPageSize, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first * kPageSize));
    if (p == MAP_FAILED) {
      out.error = errno;
      return;
    }
    const int rc = ::mincore(p, n * kPageSize, vec.data());
    const int err = errno;
    ::munmap(p, n * kPageSize);
    if (rc != 0) {
      out.error = err;
      return;
    }
    for (uint64_t i = 0; i < n; i++) out.cached += vec[i] & 1;
  }
}

}  // namespace

int cachestat(int fd, uint64_t offset, uint64_t length, CacheStat* out) {
  struct {
    uint64_t off, len;
  } range{offset, length};
  struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } cs{};
  long rc;
  do {
    rc = ::syscall(kSysCachestat, fd, &range, &cs, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return errno;
  *out = CacheStat{cs.nr_cache, cs.nr_dirty, cs.nr_writeback, cs.nr_evicted, cs.nr_recently_evicted};
  return 0;
}

FileCache fileCacheOf(const std::string& path) {
  FileCache out;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  // O_NOATIME is refused on files of other users without CAP_FOWNER.
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    out.error = errno;
    return out;
  }
  CacheStat cs;
  const int err = cachestat(fd, 0, 0, &cs);
  if (err == 0) {
    out.cached = cs.cached;
    out.dirty = cs.dirty;
    out.writeback = cs.writeback;
    out.evicted = cs.evicted;
  } else if (err == ENOSYS) {
    viaMincore(fd, out);
  } else {
    out.error = err;
  }
  ::close(fd);
  return out;
}

}  // namespace pagewalk
