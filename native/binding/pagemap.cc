// PagemapHandle: reads and PAGEMAP_SCAN of one process's pagemap, the async
// reads of a handle drained in order on one pool thread; entryBuffer(),
// arrays over addon memory that reads land in directly.
#include <napi.h>

#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../large_vector.h"
#include "../page_size.h"
#include "../pagemap_file.h"
#include "../promise_worker.h"
#include "../system_error.h"
#include "bindings.h"
#include "common.h"

namespace binding {

namespace {

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

}  // namespace

}  // namespace binding

namespace pagewalk {

void InitPagemap(Napi::Env env, Napi::Object exports) {
  exports.Set("PagemapHandle", binding::PagemapHandle::Define(env));
  exports.Set("entryBuffer", Napi::Function::New(env, binding::EntryBuffer));
  // scanCategories() -> the PAGEMAP_SCAN categories this kernel knows, 0 without it
  exports.Set("scanCategories", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), static_cast<double>(pagewalk::knownScanCategories()));
              }));
}

}  // namespace pagewalk
