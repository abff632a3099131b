#include "pagemap_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

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
constexpr uint64_t kPageShift = 12;

}  // namespace

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
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
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
    const size_t want = (count - done) * kEntrySize;
    const off_t offset = static_cast<off_t>((firstPage + done) * kEntrySize);
    const ssize_t n = ::pread(fd_, out + done, want, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError(errno, "read", path_);
    }
    if (n == 0) {
      // End of the address space, or a dead process: the kernel answers both
      // with zero bytes, so ask again at an address that always exists.
      if (!targetAlive()) throwExited();
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
  do {
    rc = ::ioctl(fd_, kPagemapScan, &arg);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    if (errno == ENOTTY || errno == EINVAL) {
      // EINVAL is also what a newer kernel says for a bad argument; the
      // caller validated the arguments, so here it means "no such ioctl".
      result.unsupported = true;
      return result;
    }
    if (errno == ESRCH) throwExited();
    throw SystemError(errno, "ioctl", path_);
  }
  result.regions = static_cast<size_t>(rc);
  result.walkEnd = arg.walk_end;
  // A dead target's mm cannot be walked: the kernel returns no regions and
  // walk_end == start. Tell that apart from an empty range.
  if (rc == 0 && arg.walk_end == request.startAddress && request.endAddress > request.startAddress) {
    if (!targetAlive()) throwExited();
  }
  return result;
}

}  // namespace pagewalk
