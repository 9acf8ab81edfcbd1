#include "net/door_js.h"

#include <cstring>

namespace weightcache::net {

void* PinJs(Napi::Value v) { return new Napi::Reference<Napi::Value>(Napi::Persistent(v)); }

void DropJsPin(void* pin) { delete static_cast<Napi::Reference<Napi::Value>*>(pin); }

uint64_t NumberOption(Napi::Object o, const char* key, uint64_t dflt, uint64_t min, uint64_t max, const char* prefix) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) ||
      d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(o.Env(), std::string(prefix) + ": " + key + " must be an integer in " +
                                             std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<uint64_t>(d);
}

void SetCounters(Napi::Env env, Napi::Object o, const DoorCounters& s) {
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  set("connectionsAccepted", static_cast<double>(s.connections_accepted.load()));
  set("connectionsRejected", static_cast<double>(s.connections_rejected.load()));
  set("connectionsOpen", static_cast<double>(s.connections_open.load()));
  set("inFlight", static_cast<double>(s.in_flight.load()));
  set("bytesRead", static_cast<double>(s.bytes_read.load()));
  set("bytesWritten", static_cast<double>(s.bytes_written.load()));
  set("pinnedBuffers", static_cast<double>(s.pinned_buffers.load()));
  set("bufferedBytes", static_cast<double>(s.buffered_bytes.load()));
  set("pausedReads", static_cast<double>(s.paused_reads.load()));
}

Napi::Error StartError(Napi::Env env, int err, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + std::strerror(err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name ? name : "EINVAL"));
  return e;
}

}  // namespace weightcache::net
