// A file opened read-only for one scope, its path kept for the errors that
// name it.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "system_error.h"

namespace pagewalk {

class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(std::string path) : path_(std::move(path)) {
    do {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw SystemError(errno, "open", path_);
  }
  ~ReadOnlyFile() { ::close(fd_); }
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Reads up to `entries` u64s of a file of u64 entries (the kpage files,
// pagemap) from entry `index`; returns how many the kernel gave (fewer at
// its end).
inline size_t preadEntries(const ReadOnlyFile& file, uint64_t index, size_t entries, uint64_t* out) {
  size_t done = 0;
  while (done < entries) {
    const ssize_t n = ::pread(file.fd(), out + done, (entries - done) * sizeof(uint64_t),
                              static_cast<off_t>((index + done) * sizeof(uint64_t)));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError(errno, "read", file.path());
    }
    if (n == 0) break;
    done += static_cast<size_t>(n) / sizeof(uint64_t);
  }
  return done;
}

}  // namespace pagewalk
