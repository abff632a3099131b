// Per-PFN facts from /proc/kpagecount and /proc/kpageflags for a set of
// page frames, deduplicated in a sorted list (a few thousand frames) or a
// bitmap over the PFN space (more), and read in coalesced runs with large
// preads (never one pread per PFN, the mistake Android's libmeminfo makes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "large_vector.h"

namespace pagewalk {

// kpageflags bits (include/uapi/linux/kernel-page-flags.h).
constexpr unsigned kKpfSlab = 7;
constexpr unsigned kKpfBuddy = 10;
constexpr unsigned kKpfMmap = 11;
constexpr unsigned kKpfAnon = 12;
constexpr unsigned kKpfSwapBacked = 14;
constexpr unsigned kKpfHuge = 17;
constexpr unsigned kKpfNoPage = 20;
constexpr unsigned kKpfKsm = 21;
constexpr unsigned kKpfThp = 22;
constexpr unsigned kKpfZeroPage = 24;
constexpr unsigned kKpfPgtable = 26;

struct KpagePaths {
  std::string count = "/proc/kpagecount";
  std::string flags = "/proc/kpageflags";
};

class KpageTable {
 public:
  explicit KpageTable(KpagePaths paths = KpagePaths());

  // Highest PFN + 1 that the kernel describes (max_pfn). PFNs at or above it
  // have no struct page (device memory): smaps never counts them.
  uint64_t pfnLimit() const { return pfnLimit_; }

  // withFlags: its kpageflags are needed too. A frame whose kpagecount
  // reads 0 gets its flags read whatever was asked (the zero page reads 0).
  void want(uint64_t pfn, bool withFlags = true) {
    if (pfn >= pfnLimit_) return;
    if (!bitmapped_) {
      wantRange(pfn, 1, withFlags);
      return;
    }
    bits_.orAt(pfn >> 6, uint64_t{1} << (pfn & 63));
    if (withFlags) flagBits_.orAt(pfn >> 6, uint64_t{1} << (pfn & 63));
  }
  // want() of every frame of [first, first + length).
  void wantRange(uint64_t first, uint64_t length, bool withFlags);

  // Gives every wanted PFN its dense index (indexOf()), before any count is
  // read. Call once, after all want()s; resolve() calls it if need be.
  void index();
  // Reads counts, and flags where wanted, for every wanted PFN. Call once,
  // after all want()s. twoThreads: split the reads over a second thread
  // when there are many.
  void resolve(bool twoThreads = false);
  // Reads the counts of exactly these frames again (dense indices in
  // ascending order), and their flags where they were read or the count now
  // reads 0; every other frame keeps what it was read with.
  void reread(const std::vector<size_t>& indices);

  static constexpr size_t kAbsent = SIZE_MAX;
  // Dense index of a wanted PFN after index(), or kAbsent.
  size_t indexOf(uint64_t pfn) const {
    if (pfn >= pfnLimit_) return kAbsent;
    if (!bitmapped_) return listedIndexOf(pfn);
    const uint64_t word = bits_.raw(pfn >> 6);
    const uint64_t bit = uint64_t{1} << (pfn & 63);
    if (!(word & bit)) return kAbsent;
    return rank_[pfn >> 6] + static_cast<size_t>(__builtin_popcountll(word & (bit - 1)));
  }

  size_t size() const { return counts_.size(); }
  uint32_t mapcount(size_t index) const { return counts_[index]; }

  // The observer (the calling process) maps pages too, and each of its
  // mappings raises a frame's mapcount. perFrame[index]: how many times the
  // observer mapped the frame when its count was read (Tally finds it).
  void setObserverMappings(SparseZeros<uint32_t> perFrame) { observer_ = std::move(perFrame); }
  uint32_t observerMappings(size_t index) const { return observer_.empty() ? 0 : observer_.get(index); }
  // The mapcount the frame will have once the observer has exited: the
  // kernel's, less the observer's own mappings of it.
  uint32_t mapcountWithoutObserver(size_t index) const {
    const uint32_t count = counts_[index];
    if (observer_.empty() || count == 0) return count;
    const uint32_t mine = observer_.get(index);
    // Every frame here is mapped by a measured process: never below 1, even
    // when that process unmapped it after its walk.
    return count > mine ? count - mine : 1;
  }
  // kpageflags (bits 0-30) of a frame whose flags were read, else 0.
  uint32_t flags(size_t index) const { return flags_.get(index) & ~kFlagsKnown; }
  bool flagsKnown(size_t index) const { return (flags_.get(index) & kFlagsKnown) != 0; }
  // Frames whose kpageflags were read, for benchmarks.
  uint64_t flagsRead() const { return flagsRead_; }
  uint64_t pfnAt(size_t index) const;
  // Bytes read from the two kpage files, and preads issued, for benchmarks.
  uint64_t bytesRead() const { return bytesRead_; }
  uint64_t readCalls() const { return readCalls_; }
  // CPU time of the second thread resolve() may use (the calling thread's
  // own is the caller's to count).
  uint64_t workerCpuNs() const { return workerCpuNs_; }

 private:
  uint64_t findPfnLimit();
  // A few wanted frames are kept in a sorted list (listed_), many in bitmaps
  // over every frame of the machine (bits_): see the constructor.
  void toBitmaps();
  void indexListed();
  size_t listedIndexOf(uint64_t pfn) const;
  // The read pass of listed frames: every one, or those whose flags are wanted.
  void readListed(const std::string& path, bool flags);
  static constexpr uint32_t kFlagsKnown = 1u << 31;  // kpageflags has no bit 31 in use
  // One pass over the set bits of a bitmap, reading `path` into counts_ or flags_.
  void readPass(const SparseZeros<uint64_t>& bitmap, const std::string& path, bool flags, bool twoThreads);
  void readWords(const SparseZeros<uint64_t>& bitmap, const std::string& path, bool flags, size_t wBegin,
                 size_t wEnd, uint64_t& bytes, uint64_t& calls);
  void readRun(int fd, const std::string& path, bool flags, uint64_t first, uint64_t last,
               LargeVector<uint64_t>& buf, uint64_t& bytes, uint64_t& calls);
  // The pread of readRun() alone: entries of frames [first, last] into buf.
  void readRawRun(int fd, const std::string& path, bool flags, uint64_t first, uint64_t last,
                  LargeVector<uint64_t>& buf, uint64_t& bytes, uint64_t& calls);
  void storeCount(size_t index, uint64_t v) {
    counts_[index] = v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
  }
  void storeFlags(size_t index, uint64_t v) {
    flags_.set(index, static_cast<uint32_t>(v & ~uint64_t{kFlagsKnown}) | kFlagsKnown);
  }

  KpagePaths paths_;
  uint64_t pfnLimit_ = 0;
  // Until index(): wanted frames as (pfn << 1 | withFlags), unsorted, while
  // there are at most listMaxFrames_; afterwards sorted and unique, pfn << 1
  // | flags wanted, the dense index being the position.
  bool bitmapped_ = false;
  uint64_t listMaxFrames_ = 0;
  LargeVector<uint64_t> listed_;
  // Flags are wanted for few frames as a rule (the walks tell most frames'
  // kind): flagBits_ and flags_ take memory only where some are.
  SparseZeros<uint64_t> bits_;
  SparseZeros<uint64_t> flagBits_;  // a subset of bits_
  LargeVector<uint32_t> rank_;
  bool indexed_ = false;
  ZeroArray<uint32_t> counts_;
  SparseZeros<uint32_t> flags_;
  // The observer's mappings per frame (few non-zero); empty: none discounted.
  SparseZeros<uint32_t> observer_;
  uint64_t bytesRead_ = 0;
  uint64_t readCalls_ = 0;
  uint64_t workerCpuNs_ = 0;
  uint64_t flagsRead_ = 0;
};

}  // namespace pagewalk
