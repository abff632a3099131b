#include "pending_runs.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace pagewalk {

namespace {

struct Interned {
  const RunBlock* raw;
  std::weak_ptr<const RunBlock> weak;
};

// Blocks alive anywhere in this process, by content hash, in shards so that
// walks on several threads seldom wait for each other. A block leaves when
// its last holder drops it (the deleter below).
struct Shard {
  std::mutex mutex;
  std::unordered_multimap<uint64_t, Interned> blocks;
};
constexpr size_t kShards = 16;
Shard& shardOf(uint64_t hash) {
  static auto* shards = new Shard[kShards];
  return shards[(hash >> 56) % kShards];
}

void forget(const RunBlock* b) {
  {
    Shard& shard = shardOf(b->hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto r = shard.blocks.equal_range(b->hash);
    for (auto it = r.first; it != r.second; ++it) {
      if (it->second.raw == b) {
        shard.blocks.erase(it);
        break;
      }
    }
  }
  delete b;
}

}  // namespace

BlockRef internBlock(std::vector<uint64_t> runs, uint64_t pages) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ runs.size();
  for (uint64_t r : runs) h = mixBits(h ^ r);
  Shard& shard = shardOf(h);
  // The blocks of the same hash, compared outside the lock. A block taken
  // here may be dropped by its last other holder meanwhile: released after
  // the lock, as its deleter takes it.
  std::vector<BlockRef> same;
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto range = shard.blocks.equal_range(h);
    for (auto it = range.first; it != range.second; ++it)
      if (BlockRef b = it->second.weak.lock()) same.push_back(std::move(b));
  }
  for (BlockRef& b : same) {
    if (b->runs.size() == runs.size() &&
        std::memcmp(b->runs.data(), runs.data(), runs.size() * sizeof(uint64_t)) == 0)
      return b;
  }
  // Another thread may add the same runs meanwhile: two copies cost memory,
  // never a wrong figure.
  auto* block = new RunBlock{std::move(runs), pages, h};
  block->runs.shrink_to_fit();
  BlockRef ref(block, forget);
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    shard.blocks.emplace(h, Interned{block, ref});
  }
  same.clear();
  return ref;
}

void PendingRuns::close() {
  if (open_.empty()) return;
  blocks_.push_back(internBlock(std::move(open_), openPages_));
  blockFirst_.push_back(total_);
  open_ = std::vector<uint64_t>();
  open_.reserve(kBlockCutMask + 1);
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
