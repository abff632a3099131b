// Swapped-out shared memory (tmpfs/shmem: MAP_SHARED anonymous, /dev/shm,
// SysV shm, memfd) leaves no swap entry in the page table, so pagemap shows
// it as absent while smaps counts it in Swap. cachestat(2) on the mapping's
// own file reproduces the kernel's figure exactly (shmem_swap_usage()).
#pragma once

#include <cstdint>
#include <string>

namespace pagewalk {

struct ShmemSwapResult {
  bool isShmem = false;       // the mapped file lives on tmpfs/shmem
  bool unsupported = false;   // no cachestat (before 6.5)
  uint64_t swappedPages = 0;  // pages of the mapped file range in swap
};

// Counts the swapped pages of the file mapped at [start, end) of pid, over
// the file range [fileOffset, fileOffset + end - start).
ShmemSwapResult shmemSwappedPages(int pid, uint64_t start, uint64_t end, uint64_t fileOffset);

// For a private writable mapping of a shmem file whose object has pages in
// swap, the kernel counts only the file's swapped pages behind holes of the
// page table (COW copies replace the others): cachestat over each run of
// pagemap entries that is neither present nor swapped.
uint64_t shmemSwappedBehindHoles(int pid, uint64_t start, uint64_t end, uint64_t fileOffset);

// Which pages of the mapping [start, end) have their page of the mapped shmem
// file in swap: out[i] = 1 for page firstPage + i of the mapping, for i below
// count (0 elsewhere), found by halving ranges that cachestat says hold some
// swapped pages. result.swappedPages is how many were marked.
ShmemSwapResult shmemSwapMap(int pid, uint64_t start, uint64_t end, uint64_t fileOffset, uint64_t firstPage,
                             uint64_t count, uint8_t* out);

}  // namespace pagewalk
