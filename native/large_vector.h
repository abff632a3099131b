// Vectors whose large buffers bypass malloc's heap, and arrays of zeros
// that take memory only where something is stored.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
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

// A fixed number of zeros that are never written as zeros: 64 KiB and more
// are mapped from the kernel, less comes from calloc. A page costs RSS only
// once it is touched; std::vector would write every zero. Touched includes
// read: the kernel here backs a read fault of an anonymous page with a
// fresh page, not the shared zero page (docs/performance.md), so a table
// that is read everywhere but written in few places is a SparseZeros.
template <class T>
class ZeroArray {
  static_assert(std::is_trivially_copyable_v<T>, "zeros are the bytes the kernel maps");

 public:
  ZeroArray() = default;
  explicit ZeroArray(size_t n) : size_(n) {
    if (n == 0) return;
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    if (bytes() < MappedAllocator<T>::kMapBytes) {
      data_ = static_cast<T*>(std::calloc(n, sizeof(T)));
      if (data_ == nullptr) throw std::bad_alloc();
      return;
    }
    void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  ~ZeroArray() { release(); }
  ZeroArray(ZeroArray&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  ZeroArray& operator=(ZeroArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  ZeroArray(const ZeroArray&) = delete;
  ZeroArray& operator=(const ZeroArray&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  size_t bytes() const { return size_ * sizeof(T); }
  void release() {
    if (data_ == nullptr) return;
    if (bytes() < MappedAllocator<T>::kMapBytes)
      std::free(data_);
    else
      munmap(data_, bytes());
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
};

// Zeros of which only the pages a value was stored in are ever touched:
// get() of an entry whose 4 KiB page nothing was stored in answers 0 from a
// bitmap of the pages written, without reading the page. Tables with an
// entry per frame looked up (a million for 64 backends of a 4 GiB buffer
// pool) where most entries stay 0 (kpageflags read for few frames, the
// observer's own mappings of them) cost a few pages instead of 4 MiB each.
// Threads may store at once (into different entries); reads come after.
template <class T>
class SparseZeros {
 public:
  SparseZeros() = default;
  explicit SparseZeros(size_t n) : values_(n), written_(n / kPageEntries / 64 + 1, 0) {}

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  T get(size_t i) const { return written(i) ? values_[i] : T{}; }
  void set(size_t i, T v) {
    markWritten(i);
    values_[i] = v;
  }
  void orAt(size_t i, T bits) {
    markWritten(i);
    values_[i] |= bits;
  }
  // The entry whether or not its page was written (touching the page): for
  // a table written nearly everywhere and read in a hot loop.
  T raw(size_t i) const { return values_[i]; }

 private:
  static constexpr size_t kPageEntries = 4096 / sizeof(T);
  bool written(size_t i) const {
    const size_t page = i / kPageEntries;
    return ((__atomic_load_n(&written_[page / 64], __ATOMIC_RELAXED) >> (page % 64)) & 1) != 0;
  }
  void markWritten(size_t i) {
    const size_t page = i / kPageEntries;
    const uint64_t bit = uint64_t{1} << (page % 64);
    uint64_t& word = written_[page / 64];
    if (!(__atomic_load_n(&word, __ATOMIC_RELAXED) & bit)) __atomic_fetch_or(&word, bit, __ATOMIC_RELAXED);
  }

  ZeroArray<T> values_;
  std::vector<uint64_t> written_;  // a bit per 4 KiB of values_
};

}  // namespace pagewalk
