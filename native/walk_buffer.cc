#include "walk_buffer.h"

#include <sys/mman.h>

#include <mutex>
#include <new>

namespace pagewalk {

namespace {

constexpr size_t kBytes = WalkBuffer::kEntries * sizeof(uint64_t);

struct Pool {
  std::mutex mutex;
  uint64_t* free[WalkBuffer::kPooled] = {};
  size_t count = 0;
};

// Never destroyed: walks may still run on other threads as the process exits.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

uint64_t* WalkBuffer::take() {
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.count > 0) return p.free[--p.count];
  }
  void* m = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  return static_cast<uint64_t*>(m);
}

void WalkBuffer::release() {
  if (data_ == nullptr) return;
  uint64_t* d = data_;
  data_ = nullptr;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.count < kPooled) {
      p.free[p.count++] = d;
      return;
    }
  }
  munmap(d, kBytes);
}

}  // namespace pagewalk
