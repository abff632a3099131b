// Tally: the walks of one measurement settled against the kpage table, group
// figures and the sharing matrix.
#include "../tally.h"

#include <napi.h>

#include <memory>

#include "../promise_worker.h"
#include "bindings.h"
#include "common.h"
#include "walk.h"

namespace binding {

namespace {

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

enum TallyTiming : size_t { kTallyKpageMs = 0, kTallySettleMs, kTallyCpuMs, kTallyTimings };

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
    out[kTallyCpuMs] = static_cast<double>(tally_->cpuNs()) / 1e6;
    return info.Env().Undefined();
  }

  std::shared_ptr<pagewalk::Tally> tally_;
  bool busy_ = false;
};

}  // namespace

}  // namespace binding

namespace pagewalk {

void InitTally(Napi::Env env, Napi::Object exports) {
  exports.Set("Tally", binding::Tally::Define(env));
  exports.Set("groupFields", Napi::Number::New(env, pagewalk::kGroupFields));
  exports.Set("tallyStatFields", Napi::Number::New(env, binding::kTallyStats));
  exports.Set("tallyTimingFields", Napi::Number::New(env, binding::kTallyTimings));
}

}  // namespace pagewalk
