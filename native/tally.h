// Settles the walks of one or more processes against a single kpage table
// (each distinct PFN looked up once for all of them) and computes the
// figures that need all of them at once: memory a group of processes maps
// alone, sharing between processes, and an approximate SwapPss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "kpage_table.h"
#include "large_vector.h"
#include "process_walk.h"

namespace pagewalk {

// Per-group figures (in pages). Field order is the layout of the
// BigUint64Array the binding fills; mirrored as GroupField in lib/native.ts:
// keep the two in step.
enum GroupField : size_t {
  kGroupOnlyPages = 0,  // mapped by the group's processes and nobody else
  kGroupSharedOutside,  // mapped by the group and by someone outside it
  kGroupDistinctPages,  // distinct normal pages the group maps (its "RSS")
  kGroupFields
};

// The observer's pagemap, read several times while a tally resolves: the
// calling process, walked over these ranges (its whole address space where
// PAGEMAP_SCAN can find what is populated, else its mappings).
struct ObserverPagemap {
  LargeVector<uint64_t> ranges;
  WalkOptions options;
};

class Tally {
 public:
  // (dense table index, times mapped) of the looked-up frames the observer
  // maps, in index order; empty, with hidden set, when its PFNs are hidden.
  using FrameCounts = std::vector<std::pair<size_t, uint32_t>>;

  explicit Tally(KpagePaths paths) : paths_(std::move(paths)) {}

  void add(std::shared_ptr<ProcessWalk> walk) { walks_.push_back(std::move(walk)); }
  size_t walks() const { return walks_.size(); }

  // Figures as they will be once the observer (the calling process) has
  // exited: every frame's mapcount is lowered by the number of times the
  // observer maps it when the count is read. observer: how to walk the
  // observer's own pagemap. observerWalk: the index of the observer's own
  // walk among those added, whose figures stay the kernel's, or kNoWalk.
  // Call before resolve().
  static constexpr size_t kNoWalk = SIZE_MAX;
  void excludeObserver(ObserverPagemap observer, size_t observerWalk) {
    observer_ = std::move(observer);
    observerWalk_ = observerWalk;
    excludeObserver_ = true;
  }
  // After resolve(): whether the observer's mappings were taken off (false
  // when not asked for, or when its own PFNs are hidden).
  bool observerExcluded() const { return excludeObserver_; }
  // Reads of the observer's pagemap, frames whose count was read again
  // because the observer mapped or unmapped them meanwhile, and frames still
  // moving after the last re-read (see resolveObserver()).
  uint64_t observerReads() const { return observerReads_; }
  uint64_t observerRereadFrames() const { return observerRereadFrames_; }
  uint64_t observerUnsettledFrames() const { return observerUnsettledFrames_; }

  // Looks up every pending PFN of every walk and settles them.
  void resolve();
  bool resolved() const { return table_ != nullptr; }
  // After resolve(): frames walk w took from shared frames that are no
  // longer what its pages map (checkRebuiltFrames()): its figures are not
  // to be trusted, and it is measured again.
  uint64_t staleFrames(size_t w) const { return w < staleFrames_.size() ? staleFrames_[w] : 0; }
  const KpageTable& table() const { return *table_; }

  // groupOf[w] is the group of walk w (-1: in no group). Writes
  // groups * kGroupFields values to out.
  void groups(const int32_t* groupOf, size_t groups, uint64_t* out) const;

  // out[i * n + j]: distinct pages mapped by both walk i and walk j (the
  // diagonal holds each walk's distinct pages).
  void sharingMatrix(uint64_t* out) const;

  // Fills kSwapPssFixed of every mapping: each swap slot's page divided
  // among the scanned PTEs that point at it. Approximate: the kernel divides
  // by the slot's count, which counts mappers outside the scan too.
  void approximateSwapPss();

  // Frees the walks' pending frames and swap entries: groups() and
  // sharingMatrix() have nothing to work on afterwards.
  // The kpage table goes too: a finished tally holds only the walks' figures.
  void releaseWalks() {
    for (auto& w : walks_) w->releasePending();
    table_.reset();
    claims_ = ZeroArray<uint32_t>();
  }

  // Nanoseconds spent looking frames up in kpagecount/kpageflags, and
  // settling pending pages (SwapPss included), for the timings breakdown.
  uint64_t kpageNs() const { return kpageNs_; }
  uint64_t settleNs() const { return settleNs_; }
  // CPU time of every thread of the lookups and settling (resolve(),
  // approximateSwapPss()).
  uint64_t cpuNs() const { return cpuNs_; }

 private:
  KpagePaths paths_;
  std::vector<std::shared_ptr<ProcessWalk>> walks_;
  std::unique_ptr<KpageTable> table_;
  uint64_t kpageNs_ = 0;
  uint64_t settleNs_ = 0;
  uint64_t cpuNs_ = 0;
  ObserverPagemap observer_;
  size_t observerWalk_ = kNoWalk;
  bool excludeObserver_ = false;
  uint64_t observerReads_ = 0;
  uint64_t observerRereadFrames_ = 0;
  uint64_t observerUnsettledFrames_ = 0;
  std::vector<uint64_t> staleFrames_;  // per walk, by checkRebuiltFrames()
  // PTEs all the walks claim for each frame (dense table index), counted by
  // checkRebuiltFrames() when some walk rebuilt frames: the group of every
  // walk (a snapshot's scope) takes them as they are (groups()).
  ZeroArray<uint32_t> claims_;
  void checkRebuiltFrames();

  // Reads the observer's pagemap: the frames of the table it maps now.
  FrameCounts observerFrames(bool& hidden);
  void resolveObserver(const FrameCounts& before);

  bool withoutObserver(size_t walk) const { return excludeObserver_ && walk != observerWalk_; }
};

}  // namespace pagewalk
