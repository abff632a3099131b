#include "kpage_table.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#include "extra_thread.h"
#include "pagemap_file.h"
#include "readonly_file.h"
#include "system_error.h"

namespace pagewalk {

namespace {

// Set bits of a bitmap word. The bitmaps span every frame of the machine
// (100,000 words for 24 GiB) while a small process wants a few hundred
// frames; without -mpopcnt (not in the x86-64 baseline) the builtin is a
// libgcc call, so the empty words, nearly all of them, are skipped first
// (docs/performance.md, "60,000 mappings, and swap in use").
inline uint32_t popcount(uint64_t word) {
  return word == 0 ? 0 : static_cast<uint32_t>(__builtin_popcountll(word));
}

// Wanted PFNs closer than this are read in one pread together with the
// frames between them. Unwanted frames are not free: the kernel looks up
// every frame's folio, about 180 ns per kpagecount + kpageflags pair on a
// 6.18 EPYC guest, against about 470 ns for the two preads of a new run
// (benchmarks/, docs/performance.md). A gap of 256 read ~80 unwanted frames
// per wanted one for scattered shared memory.
constexpr uint64_t kCoalesceGap = 4;
constexpr uint64_t kMaxRunEntries = 64 * 1024;
// Fewer wanted frames than this are read by one thread.
constexpr uint32_t kParallelMinFrames = 32 * 1024;

// The bitmaps span every frame of the machine: allocating, indexing and
// scanning them costs about 2 ms on this 24 GiB machine whether one frame
// is wanted or a million, most of a small process's processMemory()
// (docs/performance.md, "60,000 mappings"). Up to one frame in 512 of the
// machine (at least 4,096, and never more than one thread reads) is kept in
// a sorted list instead: sorting it and finding frames by binary search
// cost about what the bitmaps' fixed cost is at that size.
constexpr uint64_t kListMinFrames = 4096;
constexpr uint64_t kMachineFramesPerListed = 512;

}  // namespace

KpageTable::KpageTable(KpagePaths paths) : paths_(std::move(paths)) {
  pfnLimit_ = findPfnLimit();
  listMaxFrames_ =
      std::min<uint64_t>(std::max(kListMinFrames, pfnLimit_ / kMachineFramesPerListed), kParallelMinFrames);
}

void KpageTable::toBitmaps() {
  bitmapped_ = true;
  bits_ = SparseZeros<uint64_t>((pfnLimit_ + 63) / 64);
  flagBits_ = SparseZeros<uint64_t>(bits_.size());
  for (uint64_t e : listed_) {
    const uint64_t pfn = e >> 1;
    bits_.orAt(pfn >> 6, uint64_t{1} << (pfn & 63));
    if (e & 1) flagBits_.orAt(pfn >> 6, uint64_t{1} << (pfn & 63));
  }
  LargeVector<uint64_t>().swap(listed_);
}

// The kpage files have no size; a read at or past max_pfn returns 0 bytes.
// Binary search for the boundary: about 40 one-entry reads, once per
// process; later tables check the boundary with two reads (memory hot-plug
// moves it).
uint64_t KpageTable::findPfnLimit() {
  static std::mutex cacheMutex;
  static std::string cachedPath;
  static uint64_t cachedLimit = 0;
  ReadOnlyFile flags(paths_.flags);
  uint64_t entry;
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cachedLimit > 0 && cachedPath == paths_.flags &&
        preadEntries(flags, cachedLimit - 1, 1, &entry) == 1 &&
        preadEntries(flags, cachedLimit, 1, &entry) == 0)
      return cachedLimit;
  }
  uint64_t lo = 0;                  // known readable (or 0)
  uint64_t hi = uint64_t{1} << 40;  // 4 PiB of RAM: beyond any machine
  if (preadEntries(flags, 0, 1, &entry) == 0) return 0;
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (preadEntries(flags, mid, 1, &entry) == 1)
      lo = mid;
    else
      hi = mid;
  }
  std::lock_guard<std::mutex> lock(cacheMutex);
  cachedPath = paths_.flags;
  cachedLimit = hi;
  return hi;
}

void KpageTable::wantRange(uint64_t first, uint64_t length, bool withFlags) {
  if (first >= pfnLimit_) return;
  const uint64_t end = std::min(first + length, pfnLimit_);
  if (!bitmapped_) {
    if (listed_.size() + (end - first) <= listMaxFrames_) {
      for (uint64_t p = first; p < end; p++) listed_.push_back(p << 1 | (withFlags ? 1 : 0));
      return;
    }
    toBitmaps();
  }
  auto set = [&](SparseZeros<uint64_t>& bitmap) {
    for (uint64_t p = first; p < end;) {
      const uint64_t bitIndex = p & 63;
      const uint64_t n = std::min<uint64_t>(64 - bitIndex, end - p);
      const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bitIndex;
      bitmap.orAt(p >> 6, mask);
      p += n;
    }
  };
  set(bits_);
  if (withFlags) set(flagBits_);
}

void KpageTable::index() {
  if (indexed_) return;
  indexed_ = true;
  if (!bitmapped_) {
    indexListed();
    return;
  }
  rank_.assign(bits_.size() + 1, 0);
  uint32_t total = 0;
  for (size_t w = 0; w < bits_.size(); w++) {
    rank_[w] = total;
    total += popcount(bits_.get(w));
  }
  rank_[bits_.size()] = total;
  counts_ = ZeroArray<uint32_t>(total);
  flags_ = SparseZeros<uint32_t>(total);
}

// Sorted, one entry per frame, its flag bit set if any want() of it asked.
void KpageTable::indexListed() {
  std::sort(listed_.begin(), listed_.end());
  size_t n = 0;
  for (uint64_t e : listed_) {
    if (n > 0 && (listed_[n - 1] >> 1) == (e >> 1))
      listed_[n - 1] |= e & 1;
    else
      listed_[n++] = e;
  }
  listed_.resize(n);
  counts_ = ZeroArray<uint32_t>(n);
  flags_ = SparseZeros<uint32_t>(n);
}

size_t KpageTable::listedIndexOf(uint64_t pfn) const {
  const auto it = std::lower_bound(listed_.begin(), listed_.end(), pfn << 1);
  return it != listed_.end() && (*it >> 1) == pfn ? static_cast<size_t>(it - listed_.begin()) : kAbsent;
}

void KpageTable::resolve(bool twoThreads) {
  index();
  if (counts_.empty()) return;
  if (!bitmapped_) {
    readListed(paths_.count, false);
    // As below: every frame whose count reads 0 gets its flags read.
    for (size_t idx = 0; idx < listed_.size(); idx++)
      if (counts_[idx] == 0) listed_[idx] |= 1;
    readListed(paths_.flags, true);
    return;
  }
  readPass(bits_, paths_.count, false, twoThreads);
  // kpagecount reads 0 for the zero page (and the huge zero page), PFN holes
  // and frames freed since the walk: only their flags tell the zero page.
  // The dense index runs on with each set bit (no popcount per frame).
  for (size_t w = 0; w < bits_.size(); w++) {
    uint64_t word = bits_.get(w);
    for (size_t idx = rank_[w]; word; idx++) {
      const uint64_t bit = word & -word;
      word &= word - 1;
      if (counts_[idx] == 0 && !(flagBits_.get(w) & bit)) flagBits_.orAt(w, bit);
    }
  }
  readPass(flagBits_, paths_.flags, true, twoThreads);
  flagBits_ = SparseZeros<uint64_t>();
}

// Two threads split the wanted frames in halves, each reading its own runs
// through its own descriptor: the kernel's per-frame work (a folio lookup
// per entry) is most of the cost.
void KpageTable::readPass(const SparseZeros<uint64_t>& bitmap, const std::string& path, bool flags,
                          bool twoThreads) {
  uint64_t wanted = 0;
  for (size_t w = 0; w < bitmap.size(); w++) wanted += popcount(bitmap.get(w));
  if (wanted == 0) return;
  if (flags) flagsRead_ += wanted;
  size_t split = bitmap.size();
  if (twoThreads && wanted >= kParallelMinFrames) {
    uint64_t seen = 0;
    for (split = 0; split < bitmap.size() && seen < wanted / 2; split++) seen += popcount(bitmap.get(split));
  }
  if (split >= bitmap.size()) {
    readWords(bitmap, path, flags, 0, bitmap.size(), bytesRead_, readCalls_);
    return;
  }
  uint64_t tailBytes = 0, tailCalls = 0;
  std::exception_ptr tailError;
  std::thread worker = tryStartThread([&] {
    const AddThreadCpu cpu(workerCpuNs_);
    try {
      readWords(bitmap, path, flags, split, bitmap.size(), tailBytes, tailCalls);
    } catch (...) {
      tailError = std::current_exception();
    }
  });
  if (!worker.joinable()) {
    readWords(bitmap, path, flags, 0, bitmap.size(), bytesRead_, readCalls_);
    return;
  }
  std::exception_ptr headError;
  try {
    readWords(bitmap, path, flags, 0, split, bytesRead_, readCalls_);
  } catch (...) {
    headError = std::current_exception();
  }
  worker.join();
  bytesRead_ += tailBytes;
  readCalls_ += tailCalls;
  if (headError) std::rethrow_exception(headError);
  if (tailError) std::rethrow_exception(tailError);
}

// Reads the listed frames (flags: those whose flags are wanted), nearby ones
// in one run, as readWords() does for the bitmaps.
void KpageTable::readListed(const std::string& path, bool flags) {
  const size_t n = listed_.size();
  auto wanted = [&](size_t k) { return !flags || (listed_[k] & 1) != 0; };
  uint64_t count = 0;
  for (size_t k = 0; k < n; k++) count += wanted(k);
  if (count == 0) return;
  if (flags) flagsRead_ += count;
  ReadOnlyFile fd(path);
  LargeVector<uint64_t> buf;
  size_t k = 0;
  while (k < n) {
    if (!wanted(k)) {
      k++;
      continue;
    }
    const uint64_t first = listed_[k] >> 1;
    uint64_t last = first;
    size_t j = k + 1;
    for (; j < n; j++) {
      if (!wanted(j)) continue;
      const uint64_t pfn = listed_[j] >> 1;
      if (pfn - last > kCoalesceGap || pfn - first >= kMaxRunEntries) break;
      last = pfn;
    }
    readRawRun(fd.fd(), path, flags, first, last, buf, bytesRead_, readCalls_);
    for (; k < j; k++) {
      if (!wanted(k)) continue;
      const uint64_t v = buf[(listed_[k] >> 1) - first];
      if (flags)
        storeFlags(k, v);
      else
        storeCount(k, v);
    }
  }
}

// Reads the frames of bitmap words [wBegin, wEnd), nearby ones in one run.
void KpageTable::readWords(const SparseZeros<uint64_t>& bitmap, const std::string& path, bool flags,
                           size_t wBegin, size_t wEnd, uint64_t& bytes, uint64_t& calls) {
  ReadOnlyFile fd(path);
  LargeVector<uint64_t> buf;
  bool inRun = false;
  uint64_t runFirst = 0;
  uint64_t runLast = 0;
  for (size_t w = wBegin; w < wEnd; w++) {
    uint64_t word = bitmap.get(w);
    while (word) {
      const uint64_t pfn = (uint64_t{w} << 6) + static_cast<uint64_t>(__builtin_ctzll(word));
      word &= word - 1;
      if (inRun && pfn - runLast <= kCoalesceGap && pfn - runFirst < kMaxRunEntries) {
        runLast = pfn;
        continue;
      }
      if (inRun) readRun(fd.fd(), path, flags, runFirst, runLast, buf, bytes, calls);
      inRun = true;
      runFirst = runLast = pfn;
    }
  }
  if (inRun) readRun(fd.fd(), path, flags, runFirst, runLast, buf, bytes, calls);
}

void KpageTable::readRawRun(int fd, const std::string& path, bool flags, uint64_t first, uint64_t last,
                            LargeVector<uint64_t>& buf, uint64_t& bytes, uint64_t& calls) {
  const size_t n = static_cast<size_t>(last - first + 1);
  // Grown to the longest run read: a few frames need no 512 KiB buffer.
  if (buf.size() < n) buf.resize(n);
  uint64_t* out = buf.data();
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out + done, (n - done) * sizeof(uint64_t),
                              static_cast<off_t>((first + done) * sizeof(uint64_t)));
    calls++;
    if (r < 0) {
      if (errno == EINTR) continue;
      throw SystemError(errno, "read", path);
    }
    if (r == 0) break;
    bytes += static_cast<uint64_t>(r);
    done += static_cast<size_t>(r) / sizeof(uint64_t);
  }
  // Frames that vanish mid-read (memory hot-unplug) read short: leave them
  // as count 0, NOPAGE, which every consumer skips.
  for (size_t i = done; i < n; i++) out[i] = flags ? uint64_t{1} << kKpfNoPage : 0;
}

void KpageTable::readRun(int fd, const std::string& path, bool flags, uint64_t first, uint64_t last,
                         LargeVector<uint64_t>& buf, uint64_t& bytes, uint64_t& calls) {
  readRawRun(fd, path, flags, first, last, buf, bytes, calls);
  // The run starts at a wanted frame; the dense index of each later wanted
  // frame is one more than the last (no popcount per frame).
  size_t idx = indexOf(first);
  if (idx == kAbsent) return;
  for (uint64_t pfn = first; pfn <= last; pfn++) {
    if (!((bits_.raw(pfn >> 6) >> (pfn & 63)) & 1)) continue;
    if (flags)
      storeFlags(idx, buf[pfn - first]);
    else
      storeCount(idx, buf[pfn - first]);
    idx++;
  }
}

void KpageTable::reread(const std::vector<size_t>& indices) {
  if (indices.empty()) return;
  std::vector<uint64_t> pfns(indices.size());
  for (size_t k = 0; k < indices.size(); k++) pfns[k] = pfnAt(indices[k]);
  LargeVector<uint64_t> buf;
  // Nearby frames share a pread as in resolve(), but only the frames asked
  // for are stored: a frame between them keeps what it was read with.
  auto pass = [&](const std::string& path, bool flags) {
    ReadOnlyFile fd(path);
    size_t runBegin = 0;
    for (size_t k = 1; k <= pfns.size(); k++) {
      if (k < pfns.size() && pfns[k] - pfns[k - 1] <= kCoalesceGap &&
          pfns[k] - pfns[runBegin] < kMaxRunEntries)
        continue;
      const uint64_t first = pfns[runBegin];
      readRawRun(fd.fd(), path, flags, first, pfns[k - 1], buf, bytesRead_, readCalls_);
      for (size_t j = runBegin; j < k; j++) {
        const uint64_t v = buf[pfns[j] - first];
        if (!flags)
          storeCount(indices[j], v);
        else if (flagsKnown(indices[j]) || counts_[indices[j]] == 0)
          storeFlags(indices[j], v);
      }
      runBegin = k;
    }
  };
  pass(paths_.count, false);
  pass(paths_.flags, true);
}

uint64_t KpageTable::pfnAt(size_t index) const {
  if (!bitmapped_) return listed_[index] >> 1;
  // Binary search on the rank array, then within the word.
  const size_t w = static_cast<size_t>(
      std::upper_bound(rank_.begin(), rank_.end() - 1, static_cast<uint32_t>(index)) - rank_.begin() - 1);
  uint64_t word = bits_.get(w);
  size_t skip = index - rank_[w];
  while (skip--) word &= word - 1;
  return (uint64_t{w} << 6) + static_cast<uint64_t>(__builtin_ctzll(word));
}

}  // namespace pagewalk
