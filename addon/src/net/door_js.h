// The JavaScript side every native door shares (door.h): the table of open
// doors by id, starting one (its thread-safe function, its drain of events on
// the JavaScript thread, the error when binding fails), finding one for a
// call, stopping one (and all at environment teardown), reading numeric
// options, pinning Buffers and the counters every door reports. A door's
// *_js.cc keeps only its options, its events' shape and its calls.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/access.h"
#include "net/door.h"
#include "net/histogram.h"

namespace weightcache::net {

// A pin is a Napi::Reference to a Buffer, held until the bytes are written.
void* PinJs(Napi::Value v);
void DropJsPin(void* pin);

// An integer option `key` of `o` in min..max, `dflt` when undefined; a
// RangeError names `prefix` (the door), the key and the range.
uint64_t NumberOption(Napi::Object o, const char* key, uint64_t dflt, uint64_t min, uint64_t max, const char* prefix);

// `o.durationBounds`: the latency histogram's upper bounds (seconds, ascending, at most
// LatencyHistogram::kMaxBounds), empty when undefined; a TypeError names `prefix` otherwise.
std::vector<double> DurationBoundsOption(Napi::Object o, const char* prefix);

// Fast-path answer durations, every thread's summed (`add` adds each thread's to the three):
// {buckets (per bucket, not cumulative; the last +Inf), sumSeconds, count}.
Napi::Object DurationsToJs(Napi::Env env, const std::function<void(std::vector<uint64_t>&, uint64_t&, uint64_t&)>& add);

// A string of the client's bytes as Latin-1 (every byte one character: HTTP methods, targets, headers).
Napi::Value Latin1(Napi::Env env, const std::string& s);

// {kind: "access", records: [{method, target, client, status, bytes, durationMs, aborted?, source?}]}
// (src/log/access.ts NativeAccessLine; `status` only when not 0, `source` "nvme" for NVMe bytes).
// Targets are Latin-1, or UTF-8 with `utf8_targets` (RESP keys, as JavaScript reads them).
Napi::Object AccessToJs(Napi::Env env, const std::vector<AccessRecord>& records, bool utf8_targets);

// Sets the shared counters on `o` (connectionsAccepted, ..., pausedReads).
void SetCounters(Napi::Env env, Napi::Object o, const DoorCounters& s);

// The Error thrown when a door cannot bind: `what: strerror`, code = errno's name.
Napi::Error StartError(Napi::Env env, int err, const std::string& what);

// The open doors of one kind, used from the main JavaScript thread only.
template <class Door, class Event>
class DoorRegistry {
 public:
  using ToJs = Napi::Value (*)(Napi::Env, Door&, Event&);
  struct Handle {
    Napi::ThreadSafeFunction tsfn;
    std::unique_ptr<Door> door;
  };

  // `name` names the door in messages ("http door"); `to_js` turns an event
  // (other than kRelease, which is handled here) into what `onEvents` gets.
  DoorRegistry(const char* name, ToJs to_js) : name_(name), to_js_(to_js) {}

  // Makes a door from `options` with `make(options, notify, drop_pin)`,
  // starts it and returns {id, port}; throws if it cannot bind.
  template <class Options>
  Napi::Object Start(Napi::Env env, Napi::Function on_events, Options options) {
    uint32_t id = next_++;
    auto* h = new Handle();
    h->tsfn = Napi::ThreadSafeFunction::New(env, on_events, std::string("weightcache-") + name_, 0, 1);
    Napi::ThreadSafeFunction tsfn = h->tsfn;
    h->door = std::make_unique<Door>(
        std::move(options),
        [this, tsfn, id]() mutable {
          tsfn.NonBlockingCall([this, id](Napi::Env e, Napi::Function fn) { Drain(e, fn, id); });
        },
        DropJsPin);
    int err = 0;
    std::string what;
    uint16_t port = h->door->Start(err, what);
    if (port == 0) {
      h->door.reset();
      h->tsfn.Release();
      delete h;
      throw StartError(env, err, what);
    }
    doors_[id] = h;
    if (!cleanup_added_) {
      cleanup_added_ = true;
      env.AddCleanupHook([this]() {
        while (!doors_.empty()) Stop(doors_.begin()->first);
      });
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("id", Napi::Number::New(env, id));
    out.Set("port", Napi::Number::New(env, port));
    return out;
  }

  // The door named by the call's first argument; throws if there is none.
  Handle& Need(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
      throw Napi::TypeError::New(info.Env(), std::string(name_) + ": door id must be a number");
    }
    auto it = doors_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == doors_.end()) throw Napi::Error::New(info.Env(), std::string(name_) + ": no such door (stopped?)");
    return *it->second;
  }

  void Stop(uint32_t id) {
    auto it = doors_.find(id);
    if (it == doors_.end()) return;
    Handle* h = it->second;
    doors_.erase(it);
    h->door.reset();  // joins the workers: nothing calls the tsfn after this
    h->tsfn.Release();
    delete h;
  }

 private:
  void Drain(Napi::Env env, Napi::Function fn, uint32_t id) {
    auto it = doors_.find(id);
    if (it == doors_.end() || !it->second->door) return;
    Door& door = *it->second->door;
    std::vector<Event> events = door.TakeEvents();
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env);
    uint32_t n = 0;
    for (Event& e : events) {
      if (e.kind == Event::kRelease) {
        door.DropPin(e.pin);
        continue;
      }
      batch.Set(n++, to_js_(env, door, e));
    }
    if (n == 0) return;
    try {
      fn.Call({batch});
    } catch (const Napi::Error& err) {
      if (!err.Message().empty()) fprintf(stderr, "weightcache %s: event handler threw: %s\n", name_, err.Message().c_str());
    }
  }

  const char* name_;
  ToJs to_js_;
  std::map<uint32_t, Handle*> doors_;
  uint32_t next_ = 1;
  bool cleanup_added_ = false;
};

}  // namespace weightcache::net
