// Vectors whose large buffers bypass malloc's heap.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace pagewalk {

// Buffers of 64 KiB and more are mapped and unmapped directly. glibc raises
// its mmap threshold each time it frees a large mapped block, after which
// blocks of that size come from the heap arenas and stay in the process
// after free(): a host that measures every few seconds for months would keep
// its largest walk's buffers as RSS, moving in bursts of tens of MiB. Mapped
// directly, a buffer's pages go back to the kernel the moment it is freed.
template <class T>
struct MappedAllocator {
  using value_type = T;
  static constexpr size_t kMapBytes = 64 * 1024;

  MappedAllocator() = default;
  template <class U>
  explicit MappedAllocator(const MappedAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapBytes) {
      void* p = std::malloc(bytes);
      if (p == nullptr) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }

  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMapBytes) {
      std::free(p);
    } else {
      munmap(p, bytes);
    }
  }

  template <class U>
  bool operator==(const MappedAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const MappedAllocator<U>&) const noexcept {
    return false;
  }
};

template <class T>
using LargeVector = std::vector<T, MappedAllocator<T>>;

}  // namespace pagewalk
