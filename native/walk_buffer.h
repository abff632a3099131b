// Buffers for pagemap entries that outlive the walk that used them: a walk
// hands its buffer back to a small pool as it ends and the next walk takes
// it, instead of mapping, faulting in and unmapping one of its own.
//
// Why: on a paravirtualized guest like this bench machine (PVM, kernel build
// 6.18.44-fc-v1045) a page fault costs about 24 us of CPU and an munmap of
// 128 KiB about 1.1 ms, even in a process of one thread, and up to 12 ms of
// wall time while the machine is busy (docs/performance.md, "Issue 17: dense
// memory and 60,000 mappings, buffers kept across walks"). A walk of dense
// memory mapped, zeroed, faulted in and unmapped two or three buffers per
// thread: about 100 page faults per processMemory() call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pagewalk {

class WalkBuffer {
 public:
  // Every buffer holds this many entries (512 KiB of address space mapped;
  // only the pages a walk writes are ever faulted in).
  static constexpr size_t kEntries = 64 * 1024;
  // Buffers kept for later walks: two per split walk, and two walks at once.
  // At most 2 MiB stay mapped (only what walks wrote is resident).
  static constexpr size_t kPooled = 4;

  WalkBuffer() = default;
  ~WalkBuffer() { release(); }
  WalkBuffer(const WalkBuffer&) = delete;
  WalkBuffer& operator=(const WalkBuffer&) = delete;

  // Room for kEntries entries, taken from the pool (or mapped) on first use;
  // its contents are whatever an earlier walk left there.
  uint64_t* data() {
    if (data_ == nullptr) data_ = take();
    return data_;
  }
  // Back to the pool (or unmapped when the pool is full).
  void release();

 private:
  static uint64_t* take();
  uint64_t* data_ = nullptr;
};

}  // namespace pagewalk
