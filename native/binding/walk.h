// The Walk and SharedFrames classes JavaScript sees, and the option bits and
// layouts of a walk: in a header because a Tally takes Walk objects.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "../large_vector.h"
#include "../page_size.h"
#include "../process_walk.h"
#include "../promise_worker.h"
#include "../shared_frames.h"
#include "common.h"
#include "maps.h"

namespace binding {

// The layouts and option bits JavaScript shares with the binding files. Each
// enum is mirrored in lib/native.ts under the same name (WalkOption, WalkStat,
// WalkTiming here; TallyStat, TallyTiming in tally.cc; MapField in maps.h):
// keep the two in step. Each feature's Init exports the sizes, which
// lib/native.ts checks on load.
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
  kWalkCpuMs,       // CPU time of the walk's threads
  kWalkTimings
};

// Walk ranges arrive as [startPage, endPage]... in a Float64Array.
inline pagewalk::LargeVector<uint64_t> rangeAddresses(const Napi::Float64Array& ranges) {
  pagewalk::LargeVector<uint64_t> addresses(ranges.ElementLength());
  for (size_t i = 0; i < addresses.size(); i++)
    addresses[i] = static_cast<uint64_t>(ranges[i]) << pagewalk::kPageShift;
  return addresses;
}

inline pagewalk::WalkOptions walkOptionsFrom(uint32_t bits) {
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
    out[kWalkCpuMs] = static_cast<double>(t.cpuNs) / 1e6;
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

}  // namespace binding
