#include "shared_frames.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

#include "pagemap_entry.h"
#include "pending_runs.h"

namespace pagewalk {

namespace {
constexpr size_t kChunkBytes = SharedFrames::kChunkOffsets * sizeof(uint64_t);
constexpr size_t kSlabBytes = SharedFrames::kSlabChunks * kChunkBytes;
}  // namespace

// Walks hold this object while they run, so nothing can look a chunk up any more.
SharedFrames::~SharedFrames() {
  for (uint64_t* slab : slabs_) ::munmap(slab, kSlabBytes);
}

uint64_t* SharedFrames::chunk(const FileKey& file, uint64_t offset, bool create) {
  const ChunkKey key{file, offset >> kChunkShift};
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = chunks_.find(key);
  if (it != chunks_.end()) return it->second;
  if (!create) return nullptr;
  if (slabChunksUsed_ == kSlabChunks) {
    // Mapped directly: zero-filled, only the chunks used become resident,
    // and all of it goes back to the kernel with this object.
    void* p = ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    slabs_.push_back(static_cast<uint64_t*>(p));
    slabChunksUsed_ = 0;
  }
  uint64_t* chunk = slabs_.back() + slabChunksUsed_++ * kChunkOffsets;
  chunks_.emplace(key, chunk);
  return chunk;
}

uint64_t SharedFrames::known(const FileKey& file, uint64_t offset, uint64_t count) {
  uint64_t n = 0;
  for (uint64_t o = offset, end = offset + count; o < end;) {
    const uint64_t stop = std::min(end, (o | (kChunkOffsets - 1)) + 1);
    if (const uint64_t* c = chunk(file, o, false)) {
      for (; o < stop; o++) n += load(c, o) != 0;
    }
    o = stop;
  }
  return n;
}

void SharedFrames::record(const FileKey& file, uint64_t offset, const uint64_t* entries, size_t count) {
  uint64_t* c = nullptr;
  uint64_t chunkIndex = UINT64_MAX;
  for (size_t i = 0; i < count; i++) {
    const uint64_t e = entries[i];
    // Only page-cache frames seen by a walk allowed to see PFNs.
    if (!(e & kPresent) || !(e & kFileOrSharedAnon) || (e & kPfnMask) == 0) continue;
    const uint64_t o = offset + i;
    if ((o >> kChunkShift) != chunkIndex) {
      chunkIndex = o >> kChunkShift;
      c = chunk(file, o, true);
    }
    store(c, o, e & kPfnMask);
  }
}

const std::vector<uint64_t>* SharedFrames::chunkRuns(const uint64_t* chunk) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = runs_.find(chunk);
    if (it != runs_.end()) return &it->second;
  }
  std::vector<uint64_t> runs;
  for (uint64_t o = 0; o < kChunkOffsets; o++) {
    const uint64_t pfn = load(chunk, o);
    // Not all known yet, or a frame beyond what a run holds: page by page.
    if (pfn == 0 || pfn >= run::kPfnMask) return nullptr;
    if (!runs.empty()) {
      uint64_t& last = runs.back();
      if (run::first(last) + run::length(last) == pfn && run::length(last) < run::kMaxLength) {
        last += uint64_t{1} << run::kLengthShift;
        continue;
      }
    }
    runs.push_back(run::make(pfn, kKindAnon));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  // A racing walk may have computed them first: either is what was recorded.
  return &runs_.emplace(chunk, std::move(runs)).first->second;
}

uint64_t SharedFrames::chunkBytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  return chunks_.size() * kChunkBytes;
}

}  // namespace pagewalk
