// Reading entries: from pagemap, or for a stretch of a MAP_SHARED file
// mapping rebuilt from the frames an earlier walk of the same measurement
// recorded (SharedFrames), PAGEMAP_SCAN telling which pages are present.
#include <algorithm>
#include <cerrno>

#include "page_size.h"
#include "process_walk.h"
#include "procmap_query.h"
#include "walk_internal.h"

namespace pagewalk {

size_t ProcessWalk::readPagemap(uint64_t first, size_t count, uint64_t* out) {
  const uint64_t began = monotonicNs();
  const size_t got = pagemap_->read(first, count, out);
  timings_.pagemapNs += withoutPauses(monotonicNs() - began);
  stats_.readCalls++;
  stats_.entriesRead += got;
  return got;
}

size_t ProcessWalk::readEntries(uint64_t first, size_t count, uint64_t* out) {
  // Rebuilding entries from shared frames needs PAGEMAP_SCAN to say which
  // pages are present: without it (useScan false) every entry is read.
  if (!share_ || !options_.useScan || count < kShareMinPages) return readPagemap(first, count, out);
  const uint64_t end = first + count;
  size_t done = 0;
  while (first + done < end) {
    const uint64_t page = first + done;
    const SharedVma* vma = options_.wholeSpace ? sharedVmaWithin(page, end) : sharedVmaFrom(page);
    // Up to the next shared file mapping: read as ever.
    const uint64_t plainEnd = vma == nullptr ? end : std::min(end, std::max(page, vma->start));
    size_t want = static_cast<size_t>(plainEnd - page), got;
    if (want > 0) {
      got = readPagemap(page, want, out + done);
    } else {
      want = static_cast<size_t>(std::min(end, vma->end) - page);
      got = want < kShareMinPages ? readPagemap(page, want, out + done)
                                  : readShared(*vma, page, want, out + done);
    }
    done += got;
    if (got < want) break;  // end of the user address space
  }
  return done;
}

const ProcessWalk::SharedVma* ProcessWalk::sharedVmaFrom(uint64_t page) {
  if (shareQueried_ && page >= shareQueriedFrom_) {
    if (shareNone_) return nullptr;
    if (page < shareVma_.end) return &shareVma_;
  }
  uint64_t address = page << kPageShift;
  for (;;) {
    ProcmapQuery q;
    const int error = queryMaps(address, kQueryCoveringOrNext | kQueryFileBacked | kQueryVmaShared, q);
    if (error != 0) {
      // ENOENT: no shared file mapping from here on; anything else: no
      // PROCMAP_QUERY, and every stretch is read.
      shareQueried_ = shareNone_ = true;
      shareQueriedFrom_ = error == ENOENT ? page : 0;
      return nullptr;
    }
    if (sharedVmaOf(q, shareVma_)) {
      shareQueried_ = true;
      shareNone_ = false;
      shareQueriedFrom_ = page;
      return &shareVma_;
    }
    if (q.vma_end <= address) return nullptr;
    address = q.vma_end;
  }
}

// A PROCMAP_QUERY for the next shared file mapping steps over every other
// mapping on the way, about 0.3 us each: over 60,000 one-page anonymous
// mappings it took 17-23 ms, longer than reading their pagemap, and each
// thread of a walk asked once. A whole-space walk asks instead for the
// mapping covering a chunk's first page and steps on over at most
// kShareSteps more: only a chunk of many small mappings leaves some unasked
// (read as ever), and sharing pays only for long stretches of one mapping.
constexpr int kShareSteps = 4;

const ProcessWalk::SharedVma* ProcessWalk::sharedVmaWithin(uint64_t page, uint64_t end) {
  uint64_t from = page;
  if (page >= shareSeenFrom_ && page < shareSeenTo_) {
    if (shareFound_) return shareVma_.start < end ? &shareVma_ : nullptr;
    if (end <= shareSeenTo_) return nullptr;
    from = shareSeenTo_;  // nothing shared before it: look on from there
  } else {
    shareSeenFrom_ = page;
  }
  shareFound_ = false;
  shareSeenTo_ = from;
  uint64_t address = from << kPageShift;
  for (int step = 0; step <= kShareSteps && (address >> kPageShift) < end; step++) {
    ProcmapQuery q;
    const int error = queryMaps(address, kQueryCoveringOrNext, q);
    if (error != 0) {
      // ENOENT: no mapping from here on; anything else: no PROCMAP_QUERY,
      // and every stretch is read.
      if (error == ENOENT) shareSeenTo_ = UINT64_MAX;
      return nullptr;
    }
    if (sharedVmaOf(q, shareVma_)) {
      shareFound_ = true;
      shareSeenTo_ = shareVma_.end;
      return shareVma_.start < end ? &shareVma_ : nullptr;
    }
    if (q.vma_end <= address) break;
    address = q.vma_end;
    shareSeenTo_ = address >> kPageShift;
  }
  return nullptr;
}

size_t ProcessWalk::readShared(const SharedVma& vma, uint64_t first, size_t count, uint64_t* out) {
  const uint64_t offset = vma.offset + (first - vma.start);
  // Until most of the stretch is known, reading it is cheaper, and teaches
  // the walks that follow.
  if (share_->known(vma.file, offset, count) * 2 < count) {
    const size_t got = readPagemap(first, count, out);
    share_->record(vma.file, offset, out, got);
    return got;
  }
  std::fill(out, out + count, uint64_t{0});
  if (shareRegions_.empty()) shareRegions_.resize(kScanRegions * 3);
  const uint64_t end = first + count;
  uint64_t page = first;
  while (page < end) {
    ScanRequest req;
    req.startAddress = page << kPageShift;
    req.endAddress = std::min(end, page + kShareScanPages) << kPageShift;
    req.categoryAnyofMask = kScanPresent | kScanSwapped;
    req.returnMask = kScanPresent | kScanSwapped;
    stats_.scanCalls++;
    const uint64_t began = monotonicNs();
    const ScanResult r = pagemap_->scan(req, shareRegions_.data(), kScanRegions);
    timings_.scanNs += withoutPauses(monotonicNs() - began);
    if (r.unsupported) {
      stats_.scanUnsupported = true;
      const size_t got = readPagemap(page, static_cast<size_t>(end - page), out + (page - first));
      return static_cast<size_t>(page - first) + got;
    }
    for (size_t k = 0; k < r.regions; k++) {
      const uint64_t a = shareRegions_[3 * k] >> kPageShift, b = shareRegions_[3 * k + 1] >> kPageShift;
      uint64_t* e = out + (a - first);
      if (!(shareRegions_[3 * k + 2] & kScanPresent)) {
        // Swap-format entries (migration, markers): what pagemap says.
        readPagemap(a, static_cast<size_t>(b - a), e);
        continue;
      }
      // A chunk of the file whose offsets all lie in [a, b), and whose
      // frames were all recorded, is added as its runs: one block, no entry
      // rebuilt or classified. The rest is rebuilt page by page.
      uint64_t from = a;
      for (uint64_t p = a; p < b;) {
        const uint64_t o = offset + (p - first);
        const uint64_t chunkEnd = p + SharedFrames::kChunkOffsets;
        if ((o & (SharedFrames::kChunkOffsets - 1)) != 0 || chunkEnd > b) {
          p = std::min(b, p + (SharedFrames::kChunkOffsets - (o & (SharedFrames::kChunkOffsets - 1))));
          continue;
        }
        const uint64_t* chunk = share_->chunk(vma.file, o, false);
        const std::vector<uint64_t>* runs = chunk != nullptr ? share_->chunkRuns(chunk) : nullptr;
        if (runs == nullptr) {
          p = chunkEnd;
          continue;
        }
        if (from < p) rebuildShared(vma, offset, first, from, p, e + (from - a));
        const FrameKind kind = options_.lookUpAllFlags ? kKindLookUp : vma.kind;
        for (uint64_t r : *runs) {
          pending_.addRun(run::first(r), run::length(r), kind);
          // Checked by the tally like every rebuilt frame (Tally::staleFrames()).
          noteRebuilt(run::first(r), vma.kind, run::length(r));
        }
        blockPresent_ += SharedFrames::kChunkOffsets;
        stats_.sharedFramePages += SharedFrames::kChunkOffsets;
        stats_.sharedBlockPages += SharedFrames::kChunkOffsets;
        stats_.pfnsVisible = true;
        from = p = chunkEnd;
      }
      if (from < b) rebuildShared(vma, offset, first, from, b, e + (from - a));
    }
    // Fewer regions than room for: the scan covered its whole range.
    page =
        r.regions < kScanRegions ? req.endAddress >> kPageShift : std::max(r.walkEnd >> kPageShift, page + 1);
  }
  return count;
}

void ProcessWalk::rebuildShared(const SharedVma& vma, uint64_t offset, uint64_t first, uint64_t a, uint64_t b,
                                uint64_t* e) {
  const uint64_t* chunk = nullptr;
  uint64_t chunkIndex = UINT64_MAX;
  for (uint64_t p = a; p < b; p++) {
    const uint64_t o = offset + (p - first);
    if ((o >> SharedFrames::kChunkShift) != chunkIndex) {
      chunkIndex = o >> SharedFrames::kChunkShift;
      chunk = share_->chunk(vma.file, o, false);
    }
    const uint64_t pfn = chunk != nullptr ? SharedFrames::load(chunk, o) : 0;
    if (pfn != 0) {
      e[p - a] = kPresent | kFileOrSharedAnon | pfn;
      stats_.sharedFramePages++;
      noteRebuilt(pfn, vma.kind);
    }
  }
  // Present pages no walk has read yet: read them, and record them.
  for (uint64_t p = a; p < b;) {
    if (e[p - a] != 0) {
      p++;
      continue;
    }
    uint64_t q = p + 1;
    while (q < b && e[q - a] == 0) q++;
    const size_t got = readPagemap(p, static_cast<size_t>(q - p), e + (p - a));
    share_->record(vma.file, offset + (p - first), e + (p - a), got);
    p = q;
  }
}

}  // namespace pagewalk
