// The only file that knows N-API: it binds the pure C++ core to JavaScript.
// Arguments arrive validated and normalised by lib/native.ts; only numbers,
// bigints and typed arrays cross this boundary.
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "binding/bindings.h"
#include "js_error.h"
#include "maps_parser.h"
#include "page_size.h"
#include "pagemap_entry.h"
#include "pagemap_file.h"
#include "process_walk.h"
#include "promise_worker.h"
#include "shmem_swap.h"
#include "system_error.h"
#include "tally.h"

namespace {

using pagewalk::guarded;
using pagewalk::PromiseWorker;
using pagewalk::SystemError;
using pagewalk::toJsError;

// The layouts and option bits JavaScript shares with this file. Each enum
// is mirrored in lib/native.ts under the same name (WalkOption, WalkStat,
// WalkTiming, TallyStat, TallyTiming): keep the two in step. Init() exports
// the sizes, which lib/native.ts checks on load. (MapField too.)
enum WalkOption : uint32_t {
  kLookUpExclusiveAnon = 1u << 0,
  kCollectSwapEntries = 1u << 1,
  kNoScan = 1u << 2,
  kWholeSpace = 1u << 3,
  kOneThread = 1u << 4,
  kNoKsm = 1u << 5,           // no KSM page exists: anonymous frames need no kpageflags
  kNoHugetlb = 1u << 6,       // no hugetlb page exists: frames of a known kind need none
  kNoProcmapQuery = 1u << 7,  // walk as on a kernel without PROCMAP_QUERY
  kShmemMappings = 1u << 8,   // read the mappings that may be shmem (shmemMappings())
};

enum WalkStat : size_t {
  kWalkEntriesRead = 0,
  kWalkReadCalls,
  kWalkScanCalls,
  kWalkPagesSkippedByScan,
  kWalkScanUnsupported,  // 1 or 0
  kWalkPfnsVisible,      // 1 or 0
  kWalkSawHiddenPfn,     // 1 or 0
  kWalkPendingPfns,      // PFNs left for the tally's kpage lookups
  kWalkSwapEntries,
  kWalkLockPauses,        // pauses taken for the target's mmap writers
  kWalkSharedFramePages,  // entries rebuilt from SharedFrames, not read
  kWalkSharedBlockPages,  // of those, pages added as whole chunks' runs
  kWalkStats
};

enum WalkTiming : size_t {
  kWalkPagemapMs = 0,
  kWalkScanMs,
  kWalkThpMs,
  kWalkClassifyMs,
  kWalkPausedMs,
  kWalkMapsMs,
  kWalkUnraisedMs,  // calls at normal priority: SCHED_FIFO refused
  kWalkTimings
};

enum TallyStat : size_t {
  kTallyDistinctPfns = 0,
  kTallyBytesRead,
  kTallyReadCalls,
  kTallyPfnLimit,
  kTallyObserverExcluded,  // 1 or 0
  kTallyObserverReads,
  kTallyObserverRereadFrames,
  kTallyObserverUnsettledFrames,
  kTallyStats
};

enum TallyTiming : size_t { kTallyKpageMs = 0, kTallySettleMs, kTallyTimings };

// One mapping of readMappings(): numbers exact in a double (pages, device
// numbers, the inode in two 32-bit halves).
enum MapField : size_t {
  kMapStartPage = 0,
  kMapEndPage,
  kMapOffsetPage,
  kMapDevMajor,
  kMapDevMinor,
  kMapInodeHigh,
  kMapInodeLow,
  kMapFlags,  // MapFlag bits: read, write, exec, shared
  kMapFields
};

uint64_t toU64(const Napi::Value& v) { return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value()); }
size_t toSize(const Napi::Value& v) { return static_cast<size_t>(v.As<Napi::Number>().Int64Value()); }
uint64_t bigToU64(const Napi::Value& v) {
  bool lossless;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

// Walk ranges arrive as [startPage, endPage]... in a Float64Array.
pagewalk::LargeVector<uint64_t> rangeAddresses(const Napi::Float64Array& ranges) {
  pagewalk::LargeVector<uint64_t> addresses(ranges.ElementLength());
  for (size_t i = 0; i < addresses.size(); i++)
    addresses[i] = static_cast<uint64_t>(ranges[i]) << pagewalk::kPageShift;
  return addresses;
}

pagewalk::WalkOptions walkOptionsFrom(uint32_t bits) {
  pagewalk::WalkOptions options;
  options.lookUpExclusiveAnon = bits & kLookUpExclusiveAnon;
  options.collectSwapEntries = bits & kCollectSwapEntries;
  options.useScan = !(bits & kNoScan);
  options.wholeSpace = bits & kWholeSpace;
  options.parallel = !(bits & kOneThread);
  options.lookUpAllFlags = !(bits & kNoHugetlb);
  options.lookUpAnonFlags = !(bits & kNoKsm);
  options.procmapQuery = !(bits & kNoProcmapQuery);
  options.shmemMappings = bits & kShmemMappings;
  return options;
}

// Map records as mapFields numbers each, laid out as MapField.
Napi::Float64Array mapRecordsArray(Napi::Env env, const std::vector<pagewalk::MapRecord>& records) {
  auto out = Napi::Float64Array::New(env, records.size() * kMapFields);
  double* d = out.Data();
  for (const auto& r : records) {
    d[kMapStartPage] = static_cast<double>(r.start >> pagewalk::kPageShift);
    d[kMapEndPage] = static_cast<double>(r.end >> pagewalk::kPageShift);
    d[kMapOffsetPage] = static_cast<double>(r.offset >> pagewalk::kPageShift);
    d[kMapDevMajor] = r.devMajor;
    d[kMapDevMinor] = r.devMinor;
    d[kMapInodeHigh] = static_cast<double>(r.inode >> 32);
    d[kMapInodeLow] = static_cast<double>(r.inode & 0xffffffffu);
    d[kMapFlags] = r.flags;
    d += kMapFields;
  }
  return out;
}

// ---------------------------------------------------------------- entry buffers

using Scratch = std::shared_ptr<pagewalk::LargeVector<uint64_t>>;

// Arrays over memory the addon owns (entryBuffer()), by the address of that
// memory. A read into one lands there directly on the pool thread, with no
// copy on the JS thread: the memory lives as long as the ArrayBuffer or any
// read into it, so that detaching or transferring the array cannot free it
// under a read. Shared by every environment (worker threads).
std::mutex ownedEntriesMutex;
std::unordered_map<const void*, std::weak_ptr<pagewalk::LargeVector<uint64_t>>> ownedEntries;

// entryBuffer(count) -> BigUint64Array over addon memory, or undefined where
// the runtime refuses external ArrayBuffers
Napi::Value EntryBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t count = toSize(info[0]);
  auto memory = std::make_shared<pagewalk::LargeVector<uint64_t>>(count);
  const void* key = memory->data();
  {
    std::lock_guard<std::mutex> lock(ownedEntriesMutex);
    ownedEntries[key] = memory;
  }
  auto* hold = new Scratch(memory);
  try {
    auto buffer = Napi::ArrayBuffer::New(
        env, memory->data(), count * sizeof(uint64_t),
        [](Napi::Env, void* data, Scratch* held) {
          {
            std::lock_guard<std::mutex> lock(ownedEntriesMutex);
            ownedEntries.erase(data);
          }
          delete held;
        },
        hold);
    return Napi::BigUint64Array::New(env, count, buffer, 0);
  } catch (...) {
    std::lock_guard<std::mutex> lock(ownedEntriesMutex);
    ownedEntries.erase(key);
    delete hold;
    return env.Undefined();
  }
}

// The addon memory under `array`, or null when it is not entryBuffer()'s.
Scratch ownedMemoryOf(const Napi::BigUint64Array& array) {
  const void* key = array.ArrayBuffer().Data();
  if (key == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(ownedEntriesMutex);
  auto it = ownedEntries.find(key);
  return it == ownedEntries.end() ? nullptr : it->second.lock();
}

// ---------------------------------------------------------------- PagemapHandle

// One readAsync() as the pool thread sees it: no JavaScript object, so that
// it may be let go on any thread.
struct QueuedRead {
  uint64_t id = 0;
  uint64_t first = 0;
  size_t count = 0;
  // Into the caller's array directly when entryBuffer() made it (`owned`
  // keeps that memory alive), else into scratch taken as the read starts.
  Scratch owned;
  uint64_t* ownedTarget = nullptr;
  Scratch scratch;
  size_t got = 0;
  pagewalk::PendingError error;
};

// A handle's reads not yet started (`draining` while a ReadDrainer runs),
// and the memory they are read into. That memory is kept between reads,
// so that a walk maps, faults in and unmaps no 512 KiB per read (about
// 180 us), and handed out last in, first out: the buffer the JS thread has
// just copied from is the one still in the reading core's cache.
struct ReadQueue {
  std::mutex mutex;
  std::deque<std::shared_ptr<QueuedRead>> waiting;
  bool draining = false;

  // At most this many buffers of at most this many entries are kept: three
  // cover walk(), which has two full-size reads queued while the JS thread
  // copies a third; a rare huge read is not kept.
  static constexpr size_t kSpareBuffers = 3;
  static constexpr size_t kSpareMaxEntries = size_t{1} << 20;
  // Reads below this many entries (64 KiB) come from malloc, which is cheap
  // at that size, and keep the spares for full-size reads.
  static constexpr size_t kSmallEntries = pagewalk::MappedAllocator<uint64_t>::kMapBytes / sizeof(uint64_t);

  // On the pool thread, as a read starts.
  Scratch take(size_t count) {
    if (count >= kSmallEntries) {
      std::lock_guard<std::mutex> lock(mutex);
      for (size_t i = spares_.size(); i-- > 0;) {
        if (spares_[i]->size() < count) continue;
        Scratch s = std::move(spares_[i]);
        spares_.erase(spares_.begin() + static_cast<std::ptrdiff_t>(i));
        return s;
      }
    }
    auto s = std::make_shared<pagewalk::LargeVector<uint64_t>>();
    s->resize(count);
    return s;
  }
  // On the JS thread, once the entries are copied out.
  void giveBack(Scratch s) {
    if (!s || s->size() < kSmallEntries || s->size() > kSpareMaxEntries) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (closed_) return;
    if (spares_.size() == kSpareBuffers) spares_.erase(spares_.begin());
    spares_.push_back(std::move(s));
  }
  void dropSpares() {
    std::lock_guard<std::mutex> lock(mutex);
    closed_ = true;
    spares_.clear();
  }

 private:
  std::vector<Scratch> spares_;
  bool closed_ = false;
};

// Runs a handle's queued reads one after another on one pool thread and
// hands each to the JS thread as it ends; returns when none is left. Like
// PromiseWorker, nothing may throw out of the callbacks that run on the JS
// thread while a worker thread's environment is torn down.
class ReadDrainer : public Napi::AsyncProgressQueueWorker<std::shared_ptr<QueuedRead>> {
 public:
  ReadDrainer(Napi::Env env, std::shared_ptr<ReadQueue> queue, std::shared_ptr<pagewalk::PagemapFile> file,
              Napi::Object owner, std::function<void(QueuedRead&)> finish)
      : Napi::AsyncProgressQueueWorker<std::shared_ptr<QueuedRead>>(env, "pagewalk"),
        queue_(std::move(queue)),
        file_(std::move(file)),
        owner_(Napi::Persistent(owner)),
        finish_(std::move(finish)) {}

 protected:
  void Execute(const ExecutionProgress& progress) override {
    for (;;) {
      std::shared_ptr<QueuedRead> read;
      {
        std::lock_guard<std::mutex> lock(queue_->mutex);
        if (queue_->waiting.empty()) {
          queue_->draining = false;
          return;
        }
        read = std::move(queue_->waiting.front());
        queue_->waiting.pop_front();
      }
      try {
        uint64_t* target = read->ownedTarget;
        if (target == nullptr) {
          read->scratch = queue_->take(read->count);
          target = read->scratch->data();
        }
        read->got = file_->read(read->first, read->count, target);
      } catch (...) {
        read->error.capture(std::current_exception());
      }
      progress.Send(&read, 1);
    }
  }
  void OnProgress(const std::shared_ptr<QueuedRead>* reads, size_t count) override {
    try {
      for (size_t i = 0; i < count; i++) finish_(*reads[i]);
    } catch (...) {
    }
  }
  void OnOK() override {}
  void OnError(const Napi::Error&) override {}
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    try {
      Napi::AsyncProgressQueueWorker<std::shared_ptr<QueuedRead>>::OnWorkComplete(env, status);
    } catch (...) {
    }
  }

 private:
  std::shared_ptr<ReadQueue> queue_;
  std::shared_ptr<pagewalk::PagemapFile> file_;
  // Keeps the handle, whose finish() runs for each read, alive until done.
  Napi::ObjectReference owner_;
  std::function<void(QueuedRead&)> finish_;
};

class PagemapHandle : public Napi::ObjectWrap<PagemapHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "PagemapHandle",
        {InstanceMethod("read", &PagemapHandle::Read), InstanceMethod("readAsync", &PagemapHandle::ReadAsync),
         InstanceMethod("scan", &PagemapHandle::Scan), InstanceMethod("close", &PagemapHandle::Close),
         InstanceMethod("isOpen", &PagemapHandle::IsOpen)});
  }

  PagemapHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PagemapHandle>(info) {
    const int pid = info[0].As<Napi::Number>().Int32Value();
    file_ = guarded(info.Env(), [&] { return std::make_shared<pagewalk::PagemapFile>(pid); });
  }

 private:
  pagewalk::PagemapFile& open(Napi::Env env) {
    if (!file_ || closeRequested_)
      throw toJsError(env, SystemError(EBADF, "read", path_(), "pagemap handle is closed"));
    return *file_;
  }
  std::string path_() const { return file_ ? file_->path() : std::string(); }

  // read(firstPage, count, out: BigUint64Array, outOffset) -> entries read
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& file = open(env);
    const uint64_t first = toU64(info[0]);
    const size_t count = toSize(info[1]);
    auto out = info[2].As<Napi::BigUint64Array>();
    const size_t offset = toSize(info[3]);
    if (offset + count > out.ElementLength()) throw Napi::RangeError::New(env, "output buffer too small");
    const size_t got = guarded(env, [&] { return file.read(first, count, out.Data() + offset); });
    return Napi::Number::New(env, static_cast<double>(got));
  }

  // The async reads of one handle run one after another, in the order
  // asked, on one pool thread (ReadDrainer): a caller that keeps its next
  // read queued, as walk() does, finds that thread reading on without a
  // pause, where a worker per read left it idle for the round trip through
  // JavaScript between reads (about 110 us against a 1.2 ms read of 64K
  // entries: thread wake-ups on a virtual machine are slow). A read lands in
  // memory of the addon's own: the array itself when entryBuffer() made it,
  // else scratch memory from the ReadQueue, copied on the JS thread, so that
  // an array the caller detaches or shrinks meanwhile is not written after
  // it is gone.
  Napi::Value ReadAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    open(env);
    const uint64_t first = toU64(info[0]);
    const size_t count = toSize(info[1]);
    auto out = info[2].As<Napi::BigUint64Array>();
    const size_t offset = toSize(info[3]);
    if (offset + count > out.ElementLength()) throw Napi::RangeError::New(env, "output buffer too small");
    auto read = std::make_shared<QueuedRead>();
    read->id = nextReadId_++;
    read->first = first;
    read->count = count;
    read->owned = ownedMemoryOf(out);
    if (read->owned) read->ownedTarget = out.Data() + offset;
    auto deferred = Napi::Promise::Deferred::New(env);
    waiters_.emplace(read->id, Waiter{deferred, Napi::Persistent(out), offset});
    inflight_++;
    bool start;
    {
      std::lock_guard<std::mutex> lock(queue_->mutex);
      queue_->waiting.push_back(std::move(read));
      start = !queue_->draining;
      queue_->draining = true;
    }
    if (start)
      (new ReadDrainer(env, queue_, file_, info.This().As<Napi::Object>(), [this](QueuedRead& r) {
        finish(r);
      }))->Queue();
    return deferred.Promise();
  }

  // On the JS thread, as each read ends.
  void finish(QueuedRead& read) {
    auto it = waiters_.find(read.id);
    if (it == waiters_.end()) return;
    Waiter waiter = std::move(it->second);
    waiters_.erase(it);
    // Bookkeeping first: what follows can throw while the environment is
    // being torn down, and a deferred close must still happen.
    if (--inflight_ == 0 && closeRequested_) file_.reset();
    Napi::Env env = Env();
    if (read.error.set) {
      queue_->giveBack(std::move(read.scratch));
      waiter.deferred.Reject(read.error.toValue(env));
      return;
    }
    Napi::BigUint64Array arr = waiter.out.Value();
    // A detached buffer reports length 0: the copy is then skipped.
    // (memcpy with a null pointer is undefined even for 0 bytes: skip empty copies.)
    if (!read.owned && read.got > 0 && arr.ArrayBuffer().ByteLength() > 0 &&
        waiter.offset + read.got <= arr.ElementLength())
      std::memcpy(arr.Data() + waiter.offset, read.scratch->data(), read.got * sizeof(uint64_t));
    queue_->giveBack(std::move(read.scratch));
    waiter.deferred.Resolve(Napi::Number::New(env, static_cast<double>(read.got)));
  }

  // scan(startPage, endPage, inverted, mask, anyof, returnMask, maxPages,
  //      out: BigUint64Array, state: Float64Array) -> regions, or -1 when the
  //      kernel lacks PAGEMAP_SCAN. state[0] receives walk_end as a page.
  Napi::Value Scan(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& file = open(env);
    pagewalk::ScanRequest req;
    req.startAddress = toU64(info[0]) << pagewalk::kPageShift;
    req.endAddress = toU64(info[1]) << pagewalk::kPageShift;
    req.categoryInverted = toU64(info[2]);
    req.categoryMask = toU64(info[3]);
    req.categoryAnyofMask = toU64(info[4]);
    req.returnMask = toU64(info[5]);
    req.maxPages = toU64(info[6]);
    auto out = info[7].As<Napi::BigUint64Array>();
    auto state = info[8].As<Napi::Float64Array>();
    const size_t capacity = out.ElementLength() / 3;
    const auto r = guarded(env, [&] { return file.scan(req, out.Data(), capacity); });
    if (r.unsupported) return Napi::Number::New(env, -1);
    state[0] = static_cast<double>(r.walkEnd >> pagewalk::kPageShift);
    return Napi::Number::New(env, static_cast<double>(r.regions));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    // An fd must not be closed under a pread in flight: the number could be
    // reused by another open and the read would land in the wrong file.
    closeRequested_ = true;
    if (inflight_ == 0) file_.reset();
    queue_->dropSpares();
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), file_ && !closeRequested_);
  }

  std::shared_ptr<pagewalk::PagemapFile> file_;
  int inflight_ = 0;
  bool closeRequested_ = false;
  // What the JS thread keeps of each read in flight, by QueuedRead::id.
  struct Waiter {
    Napi::Promise::Deferred deferred;
    Napi::Reference<Napi::BigUint64Array> out;
    size_t offset;
  };
  std::unordered_map<uint64_t, Waiter> waiters_;
  uint64_t nextReadId_ = 0;
  std::shared_ptr<ReadQueue> queue_ = std::make_shared<ReadQueue>();
};

// ---------------------------------------------------------------- decoders

// countStates(entries, offset, count, out: Float64Array)
Napi::Value CountStates(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  auto out = info[3].As<Napi::Float64Array>();
  if (offset + count > entries.ElementLength() || out.ElementLength() < pagewalk::StateCounts::kFields)
    throw Napi::RangeError::New(info.Env(), "buffer too small");
  pagewalk::StateCounts c;
  pagewalk::countStates(entries.Data() + offset, count, &c);
  const uint64_t values[] = {c.pages,     c.present,   c.swapped, c.notPresent, c.file,
                             c.exclusive, c.softDirty, c.uffdWp,  c.guard,      c.presentWithPfn};
  for (size_t i = 0; i < pagewalk::StateCounts::kFields; i++) out[i] = static_cast<double>(values[i]);
  return info.Env().Undefined();
}

// firstPopulated(entries, offset, count) -> index from offset of the first
// present or swapped entry, count when none
Napi::Value FirstPopulated(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  return Napi::Number::New(info.Env(),
                           static_cast<double>(pagewalk::firstPopulated(entries.Data() + offset, count)));
}

// extractPfns(entries, offset, count, out: BigUint64Array) -> present count
Napi::Value ExtractPfns(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  auto out = info[3].As<Napi::BigUint64Array>();
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  const size_t n = pagewalk::extractPfns(entries.Data() + offset, count, out.Data(), out.ElementLength());
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// runLengths(entries, offset, count, mask: bigint, out: BigUint64Array) -> runs
Napi::Value RunLengths(const Napi::CallbackInfo& info) {
  auto entries = info[0].As<Napi::BigUint64Array>();
  const size_t offset = toSize(info[1]);
  const size_t count = toSize(info[2]);
  const uint64_t mask = bigToU64(info[3]);
  auto out = info[4].As<Napi::BigUint64Array>();
  if (offset + count > entries.ElementLength()) throw Napi::RangeError::New(info.Env(), "buffer too small");
  const size_t n =
      pagewalk::runLengths(entries.Data() + offset, count, mask, out.Data(), out.ElementLength() / 3);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// ---------------------------------------------------------------- SharedFrames

// The frames of shared file pages one measurement's walks pass on to each
// other (shared_frames.h). Walks hold the core until they finish, so the
// handle may be dropped at any time.
class SharedFramesHandle : public Napi::ObjectWrap<SharedFramesHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SharedFrames",
                       {InstanceMethod("bytes", &SharedFramesHandle::Bytes),
                        InstanceMethod("release", &SharedFramesHandle::Release)});
  }
  SharedFramesHandle(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<SharedFramesHandle>(info), frames_(std::make_shared<pagewalk::SharedFrames>()) {}
  std::shared_ptr<pagewalk::SharedFrames> core() const { return frames_; }

 private:
  // The measurement is over: the frames go as soon as no walk still running
  // holds them, not when the garbage collector gets to this handle. Walks
  // created afterwards share nothing.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    frames_ = std::make_shared<pagewalk::SharedFrames>();
    return info.Env().Undefined();
  }
  // Bytes of the chunks of frames allocated so far.
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(frames_->chunkBytes()));
  }
  std::shared_ptr<pagewalk::SharedFrames> frames_;
};

// ---------------------------------------------------------------- Walk

class Walk : public Napi::ObjectWrap<Walk> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Walk",
        {InstanceMethod("run", &Walk::Run), InstanceMethod("runAsync", &Walk::RunAsync),
         InstanceMethod("figures", &Walk::Figures), InstanceMethod("stats", &Walk::Stats),
         InstanceMethod("mappings", &Walk::Mappings), InstanceMethod("timings", &Walk::Timings),
         InstanceMethod("pendingPfns", &Walk::PendingPfns),
         InstanceMethod("figureTotals", &Walk::FigureTotals),
         InstanceMethod("shmemMappings", &Walk::ShmemMappings)});
  }

  // new Walk(pid, ranges: Float64Array [startPage, endPage]..., options bits,
  //          holdMicros, pauseMicros, sharedFrames): holdMicros and
  //          pauseMicros as LockPauses (0: none), validated by lib/;
  //          sharedFrames a SharedFrames handle, or undefined.
  Walk(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Walk>(info) {
    const int pid = info[0].As<Napi::Number>().Int32Value();
    auto ranges = info[1].As<Napi::Float64Array>();
    const uint32_t bits = info[2].As<Napi::Number>().Uint32Value();
    const auto micros = [&](size_t i) -> uint64_t {
      return info.Length() > i && info[i].IsNumber() ? toSize(info[i]) : 0;
    };
    pagewalk::WalkOptions options = walkOptionsFrom(bits);
    options.lockPauses.holdNs = micros(3) * 1000;
    options.lockPauses.pauseNs = micros(4) * 1000;
    walk_ = std::make_shared<pagewalk::ProcessWalk>(pid, rangeAddresses(ranges), options);
    if (info.Length() > 5 && info[5].IsObject()) {
      SharedFramesHandle* frames = SharedFramesHandle::Unwrap(info[5].As<Napi::Object>());
      if (frames == nullptr) throw Napi::TypeError::New(info.Env(), "sharedFrames: not a SharedFrames");
      walk_->shareFrames(frames->core());
    }
  }

  std::shared_ptr<pagewalk::ProcessWalk> core() const { return walk_; }
  bool busy() const { return busy_; }

 private:
  void begin(Napi::Env env) {
    if (busy_) throw Napi::Error::New(env, "walk already running");
    if (ran_) throw Napi::Error::New(env, "walk already ran");
    busy_ = ran_ = true;
  }

  Napi::Value Run(const Napi::CallbackInfo& info) {
    begin(info.Env());
    try {
      guarded(info.Env(), [&] { walk_->run(); });
    } catch (...) {
      busy_ = false;
      throw;
    }
    busy_ = false;
    return info.Env().Undefined();
  }

  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    begin(info.Env());
    auto walk = walk_;
    auto* worker = new PromiseWorker(
        info.Env(), [walk] { walk->run(); }, [](Napi::Env e) { return e.Undefined(); }, {info.This()});
    worker->onSettle = [this] { busy_ = false; };
    worker->Queue();
    return worker->promise();
  }

  // figures(out: BigUint64Array of mappings * kFields)
  Napi::Value Figures(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::BigUint64Array>();
    const auto& f = walk_->figures();
    if (busy_) throw Napi::Error::New(info.Env(), "walk still running");
    if (out.ElementLength() < f.size()) throw Napi::RangeError::New(info.Env(), "output buffer too small");
    // A process without mappings (kernel thread, zombie) has no figures, and
    // an empty typed array no data pointer: memcpy must not see the null.
    if (!f.empty()) std::memcpy(out.Data(), f.data(), f.size() * sizeof(uint64_t));
    return info.Env().Undefined();
  }

  // figureTotals(out: BigUint64Array of kFields): figures() summed over the
  // mappings, for reports without per-mapping output (no row per mapping in JS).
  Napi::Value FigureTotals(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::BigUint64Array>();
    if (busy_) throw Napi::Error::New(info.Env(), "walk still running");
    if (out.ElementLength() < pagewalk::kFields)
      throw Napi::RangeError::New(info.Env(), "output buffer too small");
    const auto& f = walk_->figures();
    uint64_t* o = out.Data();
    std::fill(o, o + pagewalk::kFields, uint64_t{0});
    for (size_t i = 0; i < f.size(); i++) o[i % pagewalk::kFields] += f[i];
    return info.Env().Undefined();
  }

  // stats(out: Float64Array of kWalkStats), laid out as WalkStat
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::Float64Array>();
    if (out.ElementLength() < kWalkStats) throw Napi::RangeError::New(info.Env(), "output buffer too small");
    const auto& s = walk_->stats();
    out[kWalkEntriesRead] = static_cast<double>(s.entriesRead);
    out[kWalkReadCalls] = static_cast<double>(s.readCalls);
    out[kWalkScanCalls] = static_cast<double>(s.scanCalls);
    out[kWalkPagesSkippedByScan] = static_cast<double>(s.pagesSkippedByScan);
    out[kWalkScanUnsupported] = s.scanUnsupported ? 1 : 0;
    out[kWalkPfnsVisible] = s.pfnsVisible ? 1 : 0;
    out[kWalkSawHiddenPfn] = s.sawHiddenPfn ? 1 : 0;
    out[kWalkPendingPfns] = static_cast<double>(walk_->pendingPages());
    out[kWalkSwapEntries] = static_cast<double>(walk_->swapEntries().size());
    out[kWalkLockPauses] = static_cast<double>(s.lockPauses);
    out[kWalkSharedFramePages] = static_cast<double>(s.sharedFramePages);
    out[kWalkSharedBlockPages] = static_cast<double>(s.sharedBlockPages);
    return info.Env().Undefined();
  }

  // timings(out: Float64Array of kWalkTimings), laid out as WalkTiming
  Napi::Value Timings(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::Float64Array>();
    if (out.ElementLength() < kWalkTimings)
      throw Napi::RangeError::New(info.Env(), "output buffer too small");
    if (busy_) throw Napi::Error::New(info.Env(), "walk still running");
    const auto& t = walk_->timings();
    out[kWalkPagemapMs] = static_cast<double>(t.pagemapNs) / 1e6;
    out[kWalkScanMs] = static_cast<double>(t.scanNs) / 1e6;
    out[kWalkThpMs] = static_cast<double>(t.thpNs) / 1e6;
    out[kWalkClassifyMs] = static_cast<double>(t.consumeNs) / 1e6;
    out[kWalkPausedMs] = static_cast<double>(t.pausedNs) / 1e6;
    out[kWalkMapsMs] = static_cast<double>(t.mapsNs) / 1e6;
    out[kWalkUnraisedMs] = static_cast<double>(t.unraisedNs) / 1e6;
    return info.Env().Undefined();
  }

  // shmemMappings() -> Float64Array of mapFields values each, laid out as
  // MapField: the mappings that may be shmem, read by a walk made with the
  // shmemMappings option.
  Napi::Value ShmemMappings(const Napi::CallbackInfo& info) {
    if (busy_) throw Napi::Error::New(info.Env(), "walk still running");
    return mapRecordsArray(info.Env(), walk_->shmemMappings());
  }

  Napi::Value Mappings(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(walk_->mappings()));
  }

  // pendingPfns(out: BigUint64Array) -> count: the PFNs the walk left to
  // look up (every present page but exclusive anonymous ones), repeats kept.
  Napi::Value PendingPfns(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::BigUint64Array>();
    if (busy_) throw Napi::Error::New(info.Env(), "walk still running");
    if (out.ElementLength() < walk_->pendingPages())
      throw Napi::RangeError::New(info.Env(), "output buffer too small");
    uint64_t* o = out.Data();
    size_t n = 0;
    walk_->forEachPendingPfn([&](uint64_t pfn) { o[n++] = pfn; });
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  std::shared_ptr<pagewalk::ProcessWalk> walk_;
  bool busy_ = false;
  bool ran_ = false;
};

// ---------------------------------------------------------------- Tally

class Tally : public Napi::ObjectWrap<Tally> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Tally",
        {InstanceMethod("add", &Tally::Add), InstanceMethod("resolve", &Tally::Resolve),
         InstanceMethod("resolveAsync", &Tally::ResolveAsync), InstanceMethod("groups", &Tally::Groups),
         InstanceMethod("sharingMatrix", &Tally::SharingMatrix),
         InstanceMethod("approximateSwapPss", &Tally::ApproximateSwapPss),
         InstanceMethod("excludeObserver", &Tally::ExcludeObserver), InstanceMethod("stats", &Tally::Stats),
         InstanceMethod("timings", &Tally::Timings), InstanceMethod("release", &Tally::Release),
         InstanceMethod("staleFrames", &Tally::StaleFrames)});
  }

  // new Tally(kpagecountPath, kpageflagsPath)
  Tally(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tally>(info) {
    pagewalk::KpagePaths paths;
    paths.count = info[0].As<Napi::String>().Utf8Value();
    paths.flags = info[1].As<Napi::String>().Utf8Value();
    tally_ = std::make_shared<pagewalk::Tally>(paths);
  }

 private:
  void idle(Napi::Env env) {
    if (busy_) throw Napi::Error::New(env, "tally busy");
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    idle(info.Env());
    Walk* walk = Walk::Unwrap(info[0].As<Napi::Object>());
    if (walk->busy()) throw Napi::Error::New(info.Env(), "walk still running");
    tally_->add(walk->core());
    return info.Env().Undefined();
  }

  Napi::Value Resolve(const Napi::CallbackInfo& info) {
    idle(info.Env());
    guarded(info.Env(), [&] { tally_->resolve(); });
    return info.Env().Undefined();
  }

  Napi::Value ResolveAsync(const Napi::CallbackInfo& info) {
    idle(info.Env());
    busy_ = true;
    auto tally = tally_;
    auto* worker = new PromiseWorker(
        info.Env(), [tally] { tally->resolve(); }, [](Napi::Env e) { return e.Undefined(); }, {info.This()});
    worker->onSettle = [this] { busy_ = false; };
    worker->Queue();
    return worker->promise();
  }

  // groups(groupOf: Int32Array, groups, out: BigUint64Array)
  Napi::Value Groups(const Napi::CallbackInfo& info) {
    idle(info.Env());
    auto groupOf = info[0].As<Napi::Int32Array>();
    const size_t groups = toSize(info[1]);
    auto out = info[2].As<Napi::BigUint64Array>();
    if (groupOf.ElementLength() < tally_->walks() || out.ElementLength() < groups * pagewalk::kGroupFields)
      throw Napi::RangeError::New(info.Env(), "buffer too small");
    tally_->groups(groupOf.Data(), groups, out.Data());
    return info.Env().Undefined();
  }

  Napi::Value SharingMatrix(const Napi::CallbackInfo& info) {
    idle(info.Env());
    auto out = info[0].As<Napi::BigUint64Array>();
    const size_t n = tally_->walks();
    if (out.ElementLength() < n * n) throw Napi::RangeError::New(info.Env(), "buffer too small");
    guarded(info.Env(), [&] { tally_->sharingMatrix(out.Data()); });
    return info.Env().Undefined();
  }

  // excludeObserver(ranges: Float64Array of the caller's own, walkOptions, observerWalk: index or -1)
  Napi::Value ExcludeObserver(const Napi::CallbackInfo& info) {
    idle(info.Env());
    pagewalk::ObserverPagemap observer;
    observer.ranges = rangeAddresses(info[0].As<Napi::Float64Array>());
    observer.options = walkOptionsFrom(info[1].As<Napi::Number>().Uint32Value());
    const int64_t walk = info[2].As<Napi::Number>().Int64Value();
    tally_->excludeObserver(std::move(observer),
                            walk < 0 ? pagewalk::Tally::kNoWalk : static_cast<size_t>(walk));
    return info.Env().Undefined();
  }

  Napi::Value ApproximateSwapPss(const Napi::CallbackInfo& info) {
    idle(info.Env());
    tally_->approximateSwapPss();
    return info.Env().Undefined();
  }

  // release(): frees every walk's pending frames and swap entries once the
  // figures, groups and matrix are out, rather than when the collector
  // finalizes the walks.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    idle(info.Env());
    tally_->releaseWalks();
    return info.Env().Undefined();
  }

  // stats(out: Float64Array of kTallyStats), laid out as TallyStat
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::Float64Array>();
    if (out.ElementLength() < kTallyStats) throw Napi::RangeError::New(info.Env(), "buffer too small");
    if (busy_) return info.Env().Undefined();
    if (tally_->resolved()) {
      const auto& t = tally_->table();
      out[kTallyDistinctPfns] = static_cast<double>(t.size());
      out[kTallyBytesRead] = static_cast<double>(t.bytesRead());
      out[kTallyReadCalls] = static_cast<double>(t.readCalls());
      out[kTallyPfnLimit] = static_cast<double>(t.pfnLimit());
    }
    out[kTallyObserverExcluded] = tally_->observerExcluded() ? 1 : 0;
    out[kTallyObserverReads] = static_cast<double>(tally_->observerReads());
    out[kTallyObserverRereadFrames] = static_cast<double>(tally_->observerRereadFrames());
    out[kTallyObserverUnsettledFrames] = static_cast<double>(tally_->observerUnsettledFrames());
    return info.Env().Undefined();
  }

  // staleFrames(out: Float64Array of one value per walk added): frames each
  // walk took from shared frames that are stale (Tally::staleFrames).
  Napi::Value StaleFrames(const Napi::CallbackInfo& info) {
    idle(info.Env());
    auto out = info[0].As<Napi::Float64Array>();
    if (out.ElementLength() < tally_->walks()) throw Napi::RangeError::New(info.Env(), "buffer too small");
    for (size_t w = 0; w < tally_->walks(); w++) out[w] = static_cast<double>(tally_->staleFrames(w));
    return info.Env().Undefined();
  }

  // timings(out: Float64Array of kTallyTimings), laid out as TallyTiming
  Napi::Value Timings(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::Float64Array>();
    if (out.ElementLength() < kTallyTimings) throw Napi::RangeError::New(info.Env(), "buffer too small");
    idle(info.Env());
    out[kTallyKpageMs] = static_cast<double>(tally_->kpageNs()) / 1e6;
    out[kTallySettleMs] = static_cast<double>(tally_->settleNs()) / 1e6;
    return info.Env().Undefined();
  }

  std::shared_ptr<pagewalk::Tally> tally_;
  bool busy_ = false;
};

// Looks up kpagecount and kpageflags for a list of PFNs (any order, repeats
// allowed), deduplicated and read in coalesced runs.
void lookUpKpages(const pagewalk::KpagePaths& paths, const uint64_t* pfns, size_t n, uint32_t* counts,
                  uint32_t* flags) {
  pagewalk::KpageTable table(paths);
  for (size_t i = 0; i < n; i++) table.want(pfns[i]);
  table.resolve();
  for (size_t i = 0; i < n; i++) {
    const size_t idx = table.indexOf(pfns[i]);
    counts[i] = idx == pagewalk::KpageTable::kAbsent ? 0 : table.mapcount(idx);
    flags[i] = idx == pagewalk::KpageTable::kAbsent ? (1u << pagewalk::kKpfNoPage) : table.flags(idx);
  }
}

// kpageLookup(countPath, flagsPath, pfns, countsOut: Uint32Array,
//             flagsOut: Uint32Array, async) -> undefined | Promise
Napi::Value KpageLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pagewalk::KpagePaths paths;
  paths.count = info[0].As<Napi::String>().Utf8Value();
  paths.flags = info[1].As<Napi::String>().Utf8Value();
  auto pfns = info[2].As<Napi::BigUint64Array>();
  auto counts = info[3].As<Napi::Uint32Array>();
  auto flags = info[4].As<Napi::Uint32Array>();
  const bool async = info[5].As<Napi::Boolean>().Value();
  const size_t n = pfns.ElementLength();
  if (counts.ElementLength() < n || flags.ElementLength() < n)
    throw Napi::RangeError::New(env, "output buffers too small");
  if (!async) {
    guarded(env, [&] { lookUpKpages(paths, pfns.Data(), n, counts.Data(), flags.Data()); });
    return env.Undefined();
  }
  // Worker-owned copies: the caller's arrays may be detached meanwhile.
  auto in = std::make_shared<pagewalk::LargeVector<uint64_t>>(pfns.Data(), pfns.Data() + n);
  auto outCounts = std::make_shared<pagewalk::LargeVector<uint32_t>>(n);
  auto outFlags = std::make_shared<pagewalk::LargeVector<uint32_t>>(n);
  auto countsRef = std::make_shared<Napi::Reference<Napi::Uint32Array>>(Napi::Persistent(counts));
  auto flagsRef = std::make_shared<Napi::Reference<Napi::Uint32Array>>(Napi::Persistent(flags));
  auto* worker = new PromiseWorker(
      env, [=] { lookUpKpages(paths, in->data(), n, outCounts->data(), outFlags->data()); },
      [](Napi::Env e) { return e.Undefined(); }, {});
  worker->onSettle = [=] {
    Napi::Uint32Array c = countsRef->Value();
    Napi::Uint32Array f = flagsRef->Value();
    if (n > 0 && c.ElementLength() >= n) std::memcpy(c.Data(), outCounts->data(), n * sizeof(uint32_t));
    if (n > 0 && f.ElementLength() >= n) std::memcpy(f.Data(), outFlags->data(), n * sizeof(uint32_t));
  };
  worker->Queue();
  return worker->promise();
}

// shmemSwap(pid, startPage, endPage, fileOffsetPages, behindHolesOnly)
//   -> swapped pages; -1 when the file is not shmem; -2 without cachestat
Napi::Value ShmemSwap(const Napi::CallbackInfo& info) {
  const int pid = info[0].As<Napi::Number>().Int32Value();
  const uint64_t start = toU64(info[1]) << pagewalk::kPageShift;
  const uint64_t end = toU64(info[2]) << pagewalk::kPageShift;
  const uint64_t offset = toU64(info[3]) << pagewalk::kPageShift;
  const bool holesOnly = info[4].As<Napi::Boolean>().Value();
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (holesOnly)
      return Napi::Number::New(
          info.Env(), static_cast<double>(pagewalk::shmemSwappedBehindHoles(pid, start, end, offset)));
    const auto r = pagewalk::shmemSwappedPages(pid, start, end, offset);
    if (!r.isShmem) return Napi::Number::New(info.Env(), -1);
    if (r.unsupported) return Napi::Number::New(info.Env(), -2);
    return Napi::Number::New(info.Env(), static_cast<double>(r.swappedPages));
  });
}

// readMappings(pid, shmemOnly | 2, useQuery) -> Promise<Float64Array of
// mappings * kMapFields>: user-space mappings, laid out as MapField.
Napi::Value ReadMappings(const Napi::CallbackInfo& info) {
  const int pid = info[0].As<Napi::Number>().Int32Value();
  pagewalk::MapsReadOptions options;
  // true/false: shmem candidates or all; 2: every file mapping (the RAM census).
  const Napi::Value selection = info[1];
  options.selection = selection.IsBoolean()
                          ? (selection.As<Napi::Boolean>().Value() ? pagewalk::MapSelection::kShmemCandidates
                                                                   : pagewalk::MapSelection::kAll)
                          : pagewalk::MapSelection::kFileBacked;
  options.useQuery = info[2].As<Napi::Boolean>().Value();
  auto records = std::make_shared<std::vector<pagewalk::MapRecord>>();
  auto* worker = new PromiseWorker(
      info.Env(), [=] { *records = pagewalk::readMapRecords(pid, options); },
      [=](Napi::Env e) -> Napi::Value { return mapRecordsArray(e, *records); }, {});
  worker->Queue();
  return worker->promise();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Every pagemap, kpagecount and kpageflags offset and every figure is
  // counted in 4 KiB pages (page_size.h): on a kernel with other pages they
  // would read the wrong entries, so the addon does not load there.
  if (pagewalk::kernelPageSize() != pagewalk::kPageSize) {
    throw Napi::Error::New(env, "pagewalk supports kernels with " + std::to_string(pagewalk::kPageSize) +
                                    "-byte pages only; this kernel's page size is " +
                                    std::to_string(pagewalk::kernelPageSize()) +
                                    " bytes (sysconf(_SC_PAGESIZE)), at which its pagemap, kpagecount "
                                    "and kpageflags would be read at the wrong entries");
  }
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(pagewalk::kernelPageSize())));
  exports.Set("PagemapHandle", PagemapHandle::Define(env));
  exports.Set("Walk", Walk::Define(env));
  exports.Set("Tally", Tally::Define(env));
  exports.Set("SharedFrames", SharedFramesHandle::Define(env));
  exports.Set("countStates", Napi::Function::New(env, CountStates));
  exports.Set("firstPopulated", Napi::Function::New(env, FirstPopulated));
  exports.Set("entryBuffer", Napi::Function::New(env, EntryBuffer));
  exports.Set("extractPfns", Napi::Function::New(env, ExtractPfns));
  exports.Set("runLengths", Napi::Function::New(env, RunLengths));
  exports.Set("shmemSwap", Napi::Function::New(env, ShmemSwap));
  exports.Set("kpageLookup", Napi::Function::New(env, KpageLookup));
  exports.Set("readMappings", Napi::Function::New(env, ReadMappings));
  // wholeSpaceEndPage() -> TASK_SIZE as a page number, or 0 without PAGEMAP_SCAN
  exports.Set("wholeSpaceEndPage", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(pagewalk::wholeSpaceEndPage()));
              }));
  // scanCategories() -> the PAGEMAP_SCAN categories this kernel knows, 0 without it
  exports.Set("scanCategories", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(pagewalk::knownScanCategories()));
              }));
  // Sizes of the layouts lib/native.ts mirrors, so that a stale build is caught on load.
  exports.Set("mappingFields", Napi::Number::New(env, pagewalk::kFields));
  exports.Set("groupFields", Napi::Number::New(env, pagewalk::kGroupFields));
  exports.Set("walkStatFields", Napi::Number::New(env, kWalkStats));
  exports.Set("walkTimingFields", Napi::Number::New(env, kWalkTimings));
  exports.Set("tallyStatFields", Napi::Number::New(env, kTallyStats));
  exports.Set("tallyTimingFields", Napi::Number::New(env, kTallyTimings));
  exports.Set("mapFields", Napi::Number::New(env, kMapFields));
  Napi::Object walkOptions = Napi::Object::New(env);
  walkOptions.Set("lookUpExclusiveAnon", Napi::Number::New(env, kLookUpExclusiveAnon));
  walkOptions.Set("collectSwapEntries", Napi::Number::New(env, kCollectSwapEntries));
  walkOptions.Set("noScan", Napi::Number::New(env, kNoScan));
  walkOptions.Set("wholeSpace", Napi::Number::New(env, kWholeSpace));
  walkOptions.Set("oneThread", Napi::Number::New(env, kOneThread));
  walkOptions.Set("noKsm", Napi::Number::New(env, kNoKsm));
  walkOptions.Set("noHugetlb", Napi::Number::New(env, kNoHugetlb));
  walkOptions.Set("noProcmapQuery", Napi::Number::New(env, kNoProcmapQuery));
  walkOptions.Set("shmemMappings", Napi::Number::New(env, kShmemMappings));
  exports.Set("walkOptions", walkOptions);
  pagewalk::InitProcFacts(env, exports);
  pagewalk::InitRamCensus(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(pagewalk, Init)
