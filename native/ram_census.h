// A census of page frames: every frame of a PFN range read from
// /proc/kpageflags (and /proc/kpagecount, /proc/kpagecgroup where a frame's
// class needs them) and counted in exactly one class, in total and per
// memory cgroup. The files are streamed in bounded chunks, never held whole.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pagewalk {

// Each frame lands in the first class whose test it passes, in this order.
// Mirrored as FrameClass in lib/native.ts: keep the two in step.
enum FrameClass : uint32_t {
  kFrameHole = 0,      // outside every RAM range, or KPF_NOPAGE (no struct page)
  kFrameBuddy,         // KPF_BUDDY: free in the buddy allocator (every page of a free block)
  kFrameHugetlb,       // KPF_HUGE: a hugetlb page, head or tail
  kFrameOffline,       // KPF_OFFLINE: ballooned out or offlined
  kFrameHwPoison,      // KPF_HWPOISON
  kFrameReserved,      // PG_reserved (raw bit 32), or KPF_ZERO_PAGE: kernel image, boot memory, zero pages
  kFrameSlab,          // KPF_SLAB
  kFramePageTable,     // KPF_PGTABLE
  kFrameMappedAnon,    // kpagecount > 0, KPF_ANON (KSM included)
  kFrameMappedShmem,   // kpagecount > 0, KPF_SWAPBACKED without KPF_ANON
  kFrameMappedFile,    // kpagecount > 0, any other
  kFrameSwapCache,     // unmapped KPF_ANON with KPF_SWAPCACHE
  kFrameAnonUnmapped,  // unmapped KPF_ANON without it (being freed, pinned by the kernel)
  kFrameShmem,         // unmapped KPF_SWAPBACKED without KPF_ANON: tmpfs, memfd, SysV, shared anonymous
  kFrameFile,          // unmapped file pages: KPF_LRU, or a page-cache state bit without LRU
  kFrameOtherFlagged,  // some flag set, none of the above: kernel allocations (compound, large kmalloc, ...)
  kFrameUnflagged,     // no flag at all: free outside the buddy lists, vmalloc, stacks, boot memory, ...
  kFrameClasses
};

struct CensusPaths {
  std::string flags = "/proc/kpageflags";
  std::string count = "/proc/kpagecount";
  std::string cgroup = "/proc/kpagecgroup";  // empty: no per-cgroup counts
};

struct CensusResult {
  uint64_t frames[kFrameClasses] = {};
  uint64_t framesRead = 0;  // frames the kernel described in the range (stops at max_pfn)
  // Per memory cgroup inode (0: no cgroup), frames per class.
  std::unordered_map<uint64_t, std::vector<uint64_t>> perCgroup;
  uint64_t bytesRead = 0;
};

// Counts every frame of [first, end) that the kernel describes. ramRanges:
// sorted, disjoint [startPfn, endPfn) pairs of System RAM; empty: every
// frame is RAM. chunkFrames bounds each read (and the memory held).
CensusResult censusRange(const CensusPaths& paths, const std::vector<uint64_t>& ramRanges, uint64_t first,
                         uint64_t end, size_t chunkFrames = 65536);

}  // namespace pagewalk
