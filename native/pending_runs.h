// Pending frames of walks: runs of consecutive PFNs, each tagged with what
// the walk already knows of its frames' kind, held in blocks that are
// interned process-wide. Processes that map the same shared memory produce
// the same runs in the same order, so their blocks are held once however
// many processes map the frames (64 backends of one 4 GiB buffer pool cost
// one copy of its runs, not 64).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "large_vector.h"

namespace pagewalk {

// What pagemap's bits and the mapping's kind say of a frame, so that
// /proc/kpageflags is read only where they do not decide a figure.
enum FrameKind : uint64_t {
  kKindAnon = 0,    // pagemap bit 61 clear: an anonymous page (KPF_ANON), KSM impossible
  kKindFile = 1,    // bit 61, in a mapping of a file on a block device: page cache, not swap-backed
  kKindShmem = 2,   // bit 61, in a mapping of the kernel's internal shmem mount: swap-backed
  kKindLookUp = 3,  // read kpageflags (hugetlb or KSM possible, or the mapping's kind unknown)
};

// A run: first PFN (bits 0-39) | kind (bits 40-41) | length - 1 (bits 42-63).
namespace run {
constexpr unsigned kKindShift = 40;
constexpr unsigned kLengthShift = 42;
constexpr uint64_t kPfnMask = (uint64_t{1} << kKindShift) - 1;
constexpr uint64_t kMaxLength = uint64_t{1} << (64 - kLengthShift);
inline uint64_t make(uint64_t pfn, FrameKind kind) { return pfn | (uint64_t{kind} << kKindShift); }
inline uint64_t first(uint64_t r) { return r & kPfnMask; }
inline FrameKind kind(uint64_t r) { return static_cast<FrameKind>((r >> kKindShift) & 3); }
inline uint64_t length(uint64_t r) { return (r >> kLengthShift) + 1; }
}  // namespace run

struct RunBlock {
  std::vector<uint64_t> runs;
  uint64_t pages = 0;  // frames the runs cover
  uint64_t hash = 0;
};
using BlockRef = std::shared_ptr<const RunBlock>;

// The block with these runs, shared with every other holder of the same runs.
BlockRef internBlock(std::vector<uint64_t> runs, uint64_t pages);

// Blocks end after a run whose hash says so (content-defined, so that equal
// sequences of runs are cut alike wherever they start), or when full.
inline uint64_t mixBits(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
// About one block per 256 runs (2 KiB), at most 4096 runs (32 KiB): small
// enough that a sequence shared by two processes is cut alike soon after it
// starts, large enough that a block's bookkeeping (about 150 bytes) is noise.
constexpr uint64_t kBlockCutMask = 255;
constexpr size_t kMaxBlockRuns = 4096;
inline bool endsBlock(uint64_t finishedRun, size_t runsInBlock) {
  return (mixBits(finishedRun) & kBlockCutMask) == 0 || runsInBlock >= kMaxBlockRuns;
}

// A walk's pending runs, appended in address order.
class PendingRuns {
 public:
  // Adds one frame; it extends the last run when it follows it with the same
  // kind, unless the last run started before the floor.
  void add(uint64_t pfn, FrameKind kind) {
    pages_++;
    if (total_ > floor_) {
      uint64_t& last = open_.back();
      const uint64_t length = run::length(last);
      if (run::first(last) + length == pfn && run::kind(last) == kind && length < run::kMaxLength) {
        last += uint64_t{1} << run::kLengthShift;
        openPages_++;
        return;
      }
      if (endsBlock(last, open_.size())) close();
    }
    open_.push_back(run::make(pfn, kind));
    openPages_++;
    total_++;
  }
  // Adds `count` frames from `pfn` on, exactly as `count` calls of add()
  // would, at the cost of one: every frame after the first extends the run
  // the first one joined or started, until that run is full.
  void addRun(uint64_t pfn, uint64_t count, FrameKind kind) {
    for (;;) {
      add(pfn, kind);
      if (--count == 0) return;
      pfn++;
      uint64_t& last = open_.back();
      const uint64_t take = std::min(count, run::kMaxLength - run::length(last));
      last += take << run::kLengthShift;
      openPages_ += take;
      pages_ += take;
      count -= take;
      if (count == 0) return;
      pfn += take;
    }
  }
  // No run started so far is extended any more (a mapping or chunk ends).
  void fence() { floor_ = total_; }
  // Ends the open block too (a chunk boundary: equal chunks give equal blocks).
  void fenceAndClose() {
    fence();
    close();
  }
  // Appends another walk's runs (made on another thread) after these.
  void append(PendingRuns&& other);
  // Run index: runs() counts every run, blocks in order.
  size_t runs() const { return total_; }
  uint64_t pages() const { return pages_; }
  const LargeVector<BlockRef>& blocks() const { return blocks_; }
  // Index of the first run of each block (blockFirst()[blocks().size()] == runs()).
  const LargeVector<size_t>& blockFirst() const { return blockFirst_; }
  // Closes the open block; call once the walk is done.
  void finish() {
    fence();
    close();
    std::vector<uint64_t>().swap(open_);
    blocks_.shrink_to_fit();
    blockFirst_.shrink_to_fit();
  }
  void clear();
  template <typename Fn>
  void forEachRun(Fn fn) const {
    for (const auto& b : blocks_)
      for (uint64_t r : b->runs) fn(r);
    for (uint64_t r : open_) fn(r);
  }

 private:
  void close();

  LargeVector<BlockRef> blocks_;
  LargeVector<size_t> blockFirst_ = LargeVector<size_t>(1, 0);
  std::vector<uint64_t> open_;
  uint64_t openPages_ = 0;
  uint64_t pages_ = 0;
  size_t total_ = 0;
  size_t floor_ = 0;
};

}  // namespace pagewalk
