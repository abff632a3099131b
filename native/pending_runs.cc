#include "pending_runs.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace pagewalk {

namespace {

// About one block per 256 runs (2 KiB), at most 4096 runs (32 KiB): small
// enough that a sequence shared by two processes is cut alike soon after it
// starts, large enough that a block's bookkeeping (about 150 bytes) is noise.
constexpr uint64_t kCutMask = 255;
constexpr size_t kMaxBlockRuns = 4096;

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

struct Interned {
  const RunBlock* raw;
  std::weak_ptr<const RunBlock> weak;
};

// Blocks alive anywhere in this process, by content hash. A block leaves
// when its last holder drops it (the deleter below).
std::mutex& internMutex() {
  static std::mutex m;
  return m;
}
std::unordered_multimap<uint64_t, Interned>& internTable() {
  static auto* table = new std::unordered_multimap<uint64_t, Interned>();
  return *table;
}

}  // namespace

bool endsBlock(uint64_t finishedRun, size_t runsInBlock) {
  return (mix(finishedRun) & kCutMask) == 0 || runsInBlock >= kMaxBlockRuns;
}

BlockRef internBlock(std::vector<uint64_t> runs, uint64_t pages) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ runs.size();
  for (uint64_t r : runs) h = mix(h ^ r);
  // Blocks looked at and not taken may be dropped by their last other
  // holder meanwhile: released after the lock, as their deleter takes it.
  std::vector<BlockRef> seen;
  std::lock_guard<std::mutex> lock(internMutex());
  auto& table = internTable();
  auto range = table.equal_range(h);
  for (auto it = range.first; it != range.second; ++it) {
    BlockRef existing = it->second.weak.lock();
    if (!existing) continue;
    if (existing->runs.size() == runs.size() &&
        std::memcmp(existing->runs.data(), runs.data(), runs.size() * sizeof(uint64_t)) == 0)
      return existing;
    seen.push_back(std::move(existing));
  }
  auto* block = new RunBlock{std::move(runs), pages, h};
  block->runs.shrink_to_fit();
  BlockRef ref(block, [](const RunBlock* b) {
    {
      std::lock_guard<std::mutex> lock(internMutex());
      auto& t = internTable();
      auto r = t.equal_range(b->hash);
      for (auto it = r.first; it != r.second; ++it) {
        if (it->second.raw == b) {
          t.erase(it);
          break;
        }
      }
    }
    delete b;
  });
  table.emplace(h, Interned{block, ref});
  return ref;
}

void PendingRuns::close() {
  if (open_.empty()) return;
  blocks_.push_back(internBlock(std::move(open_), openPages_));
  blockFirst_.push_back(total_);
  open_ = std::vector<uint64_t>();
  open_.reserve(kCutMask + 1);
  openPages_ = 0;
}

void PendingRuns::append(PendingRuns&& other) {
  fence();
  close();
  other.finish();
  for (size_t b = 0; b < other.blocks_.size(); b++) {
    blocks_.push_back(std::move(other.blocks_[b]));
    blockFirst_.push_back(total_ + other.blockFirst_[b + 1]);
  }
  total_ += other.total_;
  pages_ += other.pages_;
  floor_ = total_;
  other.clear();
}

void PendingRuns::clear() {
  LargeVector<BlockRef>().swap(blocks_);
  blockFirst_.assign(1, 0);
  std::vector<uint64_t>().swap(open_);
  openPages_ = 0;
  pages_ = 0;
  total_ = 0;
  floor_ = 0;
}

}  // namespace pagewalk
