// The frames of pages of MAP_SHARED file and shmem mappings that the walks of
// one measurement have read, by file and page offset.
//
// A page present in a MAP_SHARED mapping is the file's page-cache page at
// that offset (for shmem: the object's page), so it is the same frame in
// every process that maps it. The kernel's pagemap read looks up each
// present page's struct page (to say file/anon and exclusive), which is most
// of its cost; PAGEMAP_SCAN only tests the page table entries, about a third
// of it (4 GiB present: 11 ms against 35 ms on this machine). So once one
// walk has read an object's frames, the next mapper's walk asks PAGEMAP_SCAN
// which of its pages are present and takes their frames from here: 64
// backends mapping one buffer pool cost one pagemap read of it and 63 scans.
//
// Thread-safe: walks on several threads record and look up at once. A frame
// recorded is written once per offset (a racing second writer writes what it
// read); a reader that sees no frame yet reads pagemap itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace pagewalk {

struct FileKey {
  uint32_t major = 0, minor = 0;
  uint64_t inode = 0;
  bool operator==(const FileKey& o) const { return major == o.major && minor == o.minor && inode == o.inode; }
};

class SharedFrames {
 public:
  // Frames are kept in chunks of this many page offsets (a 4 KiB page of
  // frames for 2 MiB of file), allocated as they are first recorded, from
  // slabs mapped straight from the kernel: memory grows with the stretches
  // recorded, not with the size of the files.
  static constexpr unsigned kChunkShift = 9;
  static constexpr uint64_t kChunkOffsets = uint64_t{1} << kChunkShift;
  static constexpr size_t kSlabChunks = 256;

  SharedFrames() = default;
  ~SharedFrames();
  SharedFrames(const SharedFrames&) = delete;
  SharedFrames& operator=(const SharedFrames&) = delete;

  // The chunk holding `offset` of the file, or null if nothing was recorded
  // in it (create: allocate it). Chunks live as long as this object.
  uint64_t* chunk(const FileKey& file, uint64_t offset, bool create);

  // The frame recorded for `offset` of the file, 0 if none.
  static uint64_t load(const uint64_t* chunk, uint64_t offset) {
    return __atomic_load_n(&chunk[offset & (kChunkOffsets - 1)], __ATOMIC_RELAXED);
  }
  static void store(uint64_t* chunk, uint64_t offset, uint64_t pfn) {
    __atomic_store_n(&chunk[offset & (kChunkOffsets - 1)], pfn, __ATOMIC_RELAXED);
  }

  // Frames recorded for offsets [offset, offset + count) of the file.
  uint64_t known(const FileKey& file, uint64_t offset, uint64_t count);
  // Records the frames of the present entries of pagemap `entries` (count
  // of them) read for offsets [offset, offset + count) of the file.
  void record(const FileKey& file, uint64_t offset, const uint64_t* entries, size_t count);

  // The frames of a whole chunk as runs of consecutive frames (pending_runs.h
  // encoding, kind bits 0), once every offset of the chunk has one and each
  // fits a run: computed once per chunk, for the walks that find all of
  // it present and add it as one block (ProcessWalk::readShared). Null
  // otherwise. Lives as long as this object.
  const std::vector<uint64_t>* chunkRuns(const uint64_t* chunk);

  // Bytes of the chunks allocated.
  uint64_t chunkBytes();

 private:
  struct ChunkKey {
    FileKey file;
    uint64_t index;
    bool operator==(const ChunkKey& o) const { return file == o.file && index == o.index; }
  };
  struct ChunkHash {
    size_t operator()(const ChunkKey& k) const {
      uint64_t h = k.file.inode * 0x9e3779b97f4a7c15ull;
      h ^= (uint64_t{k.file.major} << 32 | k.file.minor) + 0x7f4a7c159e3779b9ull + (h << 6) + (h >> 2);
      h ^= k.index * 0xbf58476d1ce4e5b9ull;
      return static_cast<size_t>(h ^ (h >> 31));
    }
  };
  std::mutex mutex_;
  std::unordered_map<ChunkKey, uint64_t*, ChunkHash> chunks_;
  std::unordered_map<const uint64_t*, std::vector<uint64_t>> runs_;
  std::vector<uint64_t*> slabs_;
  size_t slabChunksUsed_ = kSlabChunks;  // of the last slab
};

}  // namespace pagewalk
