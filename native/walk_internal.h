// What the files of the accounting walk (process_walk.cc, walk_space.cc,
// walk_mappings.cc, walk_classify.cc, walk_thp.cc, walk_settle.cc,
// mapping_kinds.cc, shared_reads.cc) share: its tuning constants, small
// helpers and the cursor of whole-space walks. Internal to them: no other
// file includes it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>

#include "large_vector.h"
#include "page_size.h"
#include "pagemap_entry.h"
#include "walk_buffer.h"

namespace pagewalk {

namespace {

// 64K entries (512 KiB) per pread: far past the point where syscall cost
// matters, small enough to stay in L2 while it is consumed.
constexpr size_t kChunkEntries = 64 * 1024;
static_assert(kChunkEntries <= WalkBuffer::kEntries, "a chunk fits a walk's entry buffer");

// Threads of a whole-space walk take dense stretches in smaller chunks (64
// MiB of address space), so that two share even a 250 MB stretch. Chunks
// end on a grid of their size, so that equal address spaces are cut alike
// (and give equal blocks of runs) whichever thread took which chunk.
constexpr size_t kSpaceChunkEntries = 16 * 1024;

// While reading costs more than kSlowEntryNs of CPU per entry, chunks are 2K
// entries (8 MiB) instead, so that two threads end together: one-page
// mappings cost the kernel about 0.3 us per page (dense memory about 30
// ns), and with 16K-entry chunks one thread finished up to 5 ms after the
// other on 60,000 of them (234 MiB, 3.7 chunks). Dense memory keeps the
// large chunks: with 2K ones throughout, snapshot() of the PostgreSQL-shaped
// bench took 911 ms instead of 815 (one run each: a PAGEMAP_SCAN of shared
// frames per chunk, and pending runs cut at every chunk). CPU time, not
// wall time, so that a preempted or paused read does not count as slow.
constexpr size_t kSlowChunkEntries = 2 * 1024;

constexpr uint64_t kSlowEntryNs = 120;

constexpr size_t kScanRegions = 1024;

// Address spaces of at least this many pages (1 GiB) are walked by two threads.
constexpr uint64_t kParallelMinPages = uint64_t{1} << 18;

// A chunk with fewer populated entries than 1/kSparseRatio of its length
// switches the walk to PAGEMAP_SCAN; a scanned window denser than 1/2 switches
// back to plain reads.
constexpr size_t kSparseRatio = 16;

// Pages a PAGEMAP_SCAN may report before it returns, and THP candidate pages
// one HUGE scan may cover: the kernel holds the target's mmap lock for a
// whole scan call, and one call over N present PTEs costs about 40 ns each
// plus about 400 ns per VMA it enters (measured on 6.18): 1024 keeps a call
// well under a millisecond, so the process measured never stalls for longer.
constexpr uint64_t kScanMaxPages = 1024;

constexpr uint64_t kHugeScanMaxPages = 16 * kPmdPages;

// Stretches of a MAP_SHARED file mapping at least this long are rebuilt
// from shared frames where they can be (shorter ones are read), and scanned
// for present pages this many at a time: a PAGEMAP_SCAN that tests PTEs
// only costs about 11 ns per present page, so a call holds the target's
// mmap lock for well under a millisecond.
constexpr uint64_t kShareMinPages = 16;

constexpr uint64_t kShareScanPages = 8192;

// Populated regions closer than this are read in one pread.
constexpr uint64_t kRegionMergeGapPages = 32;

inline bool bit(uint32_t flags, unsigned b) { return (flags >> b) & 1u; }

// pagemap marks every non-present swap-format PTE as swapped, but only real
// swap slots count in smaps Swap: guard markers, uffd-wp markers, migration
// and device entries use the swap types above MAX_SWAPFILES (at least 24 on
// any configuration). With PFNs hidden the type reads 0 and only the guard
// bit can tell.
constexpr uint64_t kFirstNonSwapType = 24;

inline bool isSwapSlot(uint64_t e) { return !(e & kGuard) && (e & kSwapTypeMask) < kFirstNonSwapType; }

}  // namespace

// The threads of a whole-space walk take work from here under the mutex:
// a stretch found by PAGEMAP_SCAN (queued), or the next pagemap chunk of a
// dense stretch. The scan itself runs under the mutex, so stretches are
// handed out in address order and none twice.
struct SpaceCursor {
  std::mutex mutex;
  uint64_t page = 0;  // first page not yet handed out or scanned
  uint64_t end = 0;
  bool sparse = true;  // find populated stretches by scanning, not reading
  uint64_t scanWindow = 0;
  LargeVector<uint64_t> queue;  // (first, last) page pairs found by the last scan
  size_t queued = 0;            // pairs of queue already handed out
  // kSpaceChunkEntries, or kSlowChunkEntries after a slow read; set by the
  // last read of at least kSlowChunkEntries / 2 entries.
  std::atomic<uint64_t> chunkEntries{kSpaceChunkEntries};
  bool done = false;
  std::exception_ptr error;

  // The end of the chunk from `page` on: the next multiple of the chunk size.
  uint64_t chunkEnd(uint64_t page, uint64_t limit) const {
    const uint64_t size = chunkEntries.load(std::memory_order_relaxed);
    return std::min(limit, (page / size + 1) * size);
  }
};

}  // namespace pagewalk
