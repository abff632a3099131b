// An open /proc/PID/pagemap: large preads of raw entries and the
// PAGEMAP_SCAN ioctl. Pure C++ (no N-API) so it can be reused by tests,
// benchmarks and the accounting walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pagewalk {

// Categories of PAGEMAP_SCAN (include/uapi/linux/fs.h, 6.7+).
constexpr uint64_t kScanWpAllowed = 1 << 0;
constexpr uint64_t kScanWritten = 1 << 1;
constexpr uint64_t kScanFile = 1 << 2;
constexpr uint64_t kScanPresent = 1 << 3;
constexpr uint64_t kScanSwapped = 1 << 4;
constexpr uint64_t kScanPfnZero = 1 << 5;
constexpr uint64_t kScanHuge = 1 << 6;
constexpr uint64_t kScanSoftDirty = 1 << 7;
constexpr uint64_t kScanGuard = 1 << 8;

struct ScanRequest {
  uint64_t startAddress = 0;
  uint64_t endAddress = 0;
  uint64_t categoryInverted = 0;
  uint64_t categoryMask = 0;
  uint64_t categoryAnyofMask = 0;
  uint64_t returnMask = 0;
  uint64_t maxPages = 0;  // 0: no limit
};

struct ScanResult {
  size_t regions = 0;        // regions written, 3 u64 each (start, end, categories)
  uint64_t walkEnd = 0;      // where the kernel stopped; resume here if < end
  bool unsupported = false;  // kernel has no PAGEMAP_SCAN (ENOTTY / EINVAL)
};

class PagemapFile {
 public:
  explicit PagemapFile(int pid);
  ~PagemapFile();
  PagemapFile(const PagemapFile&) = delete;
  PagemapFile& operator=(const PagemapFile&) = delete;

  // Reads `count` entries starting at virtual page `firstPage` into out.
  // Returns the number of entries read: fewer than count only at the end of
  // the user address space. Throws SystemError (ESRCH with "process exited")
  // when the target died after the open, which the kernel reports as a
  // silent zero-byte read.
  size_t read(uint64_t firstPage, size_t count, uint64_t* out);

  // One PAGEMAP_SCAN call, regions written to `regionsOut` (capacity in
  // regions). Never throws for a missing ioctl: sets `unsupported`.
  ScanResult scan(const ScanRequest& request, uint64_t* regionsOut, size_t capacity);

  void close();
  bool isOpen() const { return fd_ >= 0; }
  int pid() const { return pid_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void throwExited() const;
  bool targetAlive();

  int fd_ = -1;
  int pid_;
  std::string path_;
};

}  // namespace pagewalk
