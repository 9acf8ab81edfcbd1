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

std::vector<double> DurationBoundsOption(Napi::Object o, const char* prefix) {
  std::vector<double> out;
  Napi::Value bounds = o.Get("durationBounds");
  if (bounds.IsUndefined()) return out;
  if (!bounds.IsArray() || bounds.As<Napi::Array>().Length() > LatencyHistogram::kMaxBounds) {
    throw Napi::TypeError::New(o.Env(), std::string(prefix) +
                                            ": durationBounds must be an array of at most 32 numbers (seconds, ascending)");
  }
  auto list = bounds.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value b = list.Get(i);
    double d = b.IsNumber() ? b.As<Napi::Number>().DoubleValue() : -1;
    if (!(d > 0 && d < 1e6) || (!out.empty() && d <= out.back())) {
      throw Napi::TypeError::New(o.Env(),
                                 std::string(prefix) + ": durationBounds must be ascending positive numbers of seconds");
    }
    out.push_back(d);
  }
  return out;
}

Napi::Object DurationsToJs(Napi::Env env, const std::function<void(std::vector<uint64_t>&, uint64_t&, uint64_t&)>& add) {
  std::vector<uint64_t> counts;
  uint64_t sum_ns = 0, count = 0;
  add(counts, sum_ns, count);
  Napi::Array buckets = Napi::Array::New(env, counts.size());
  for (uint32_t i = 0; i < counts.size(); i++) buckets.Set(i, Napi::Number::New(env, static_cast<double>(counts[i])));
  Napi::Object d = Napi::Object::New(env);
  d.Set("buckets", buckets);
  d.Set("sumSeconds", Napi::Number::New(env, static_cast<double>(sum_ns) / 1e9));
  d.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return d;
}

Napi::Value Latin1(Napi::Env env, const std::string& s) {
  napi_value v;
  if (napi_create_string_latin1(env, s.data(), s.size(), &v) != napi_ok) {
    throw Napi::Error::New(env, "door: creating a string failed");
  }
  return Napi::Value(env, v);
}

Napi::Object AccessToJs(Napi::Env env, const std::vector<AccessRecord>& records, bool utf8_targets) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", "access");
  Napi::Array list = Napi::Array::New(env, records.size());
  for (uint32_t i = 0; i < records.size(); i++) {
    const AccessRecord& r = records[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("method", Latin1(env, r.method));
    x.Set("target", utf8_targets ? Napi::String::New(env, r.target) : Latin1(env, r.target));
    x.Set("client", r.peer);
    if (r.status != 0) x.Set("status", Napi::Number::New(env, r.status));
    x.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
    x.Set("durationMs", Napi::Number::New(env, r.duration_ms));
    if (r.aborted) x.Set("aborted", Napi::Boolean::New(env, true));
    if (std::string_view(r.source) != "dram") x.Set("source", r.source);
    list.Set(i, x);
  }
  o.Set("records", list);
  return o;
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
