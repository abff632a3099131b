// A failed system call, carried out of the pure C++ core so that the binding
// layer can turn it into a Node-style error (code, errno, syscall, path).
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace pagewalk {

class SystemError : public std::exception {
 public:
  SystemError(int errnum, std::string syscall, std::string path, std::string detail = std::string())
      : errnum_(errnum), syscall_(std::move(syscall)), path_(std::move(path)), detail_(std::move(detail)) {}

  int errnum() const noexcept { return errnum_; }
  const std::string& syscall() const noexcept { return syscall_; }
  const std::string& path() const noexcept { return path_; }
  // Extra words for cases where strerror alone would mislead, such as
  // "process exited" for the zero-byte read of a dead process.
  const std::string& detail() const noexcept { return detail_; }
  const char* what() const noexcept override { return syscall_.c_str(); }

 private:
  int errnum_;
  std::string syscall_;
  std::string path_;
  std::string detail_;
};

}  // namespace pagewalk
