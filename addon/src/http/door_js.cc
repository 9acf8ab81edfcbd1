#include "http/door_js.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include "http/door.h"
#include "http/fastpath.h"
#include "http/fastpath_js.h"
#include "http/response.h"
#include "net/door_js.h"
#include "net/histogram.h"

namespace weightcache::http {

namespace {

using net::Latin1;

Napi::Value AccessEventToJs(Napi::Env env, HttpDoor& door, DoorEvent& e) {
  Napi::Object o = net::AccessToJs(env, e.access, false);
  door.AccessTaken(e.access.size());
  return o;
}

Napi::Value ToJs(Napi::Env env, HttpDoor& door, DoorEvent& e) {
  if (e.kind == DoorEvent::kAccess) return AccessEventToJs(env, door, e);
  Napi::Object o = Napi::Object::New(env);
  if (e.kind == DoorEvent::kFill) {
    o.Set("kind", "fill");
    o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
    o.Set("conn", Napi::Number::New(env, static_cast<double>(e.conn)));
    o.Set("name", Latin1(env, e.fill_name));
    o.Set("pin", Latin1(env, e.fill_pin));
    o.Set("etag", Latin1(env, e.fill_etag));
    o.Set("first", Napi::Number::New(env, static_cast<double>(e.fill_first)));
    o.Set("last", Napi::Number::New(env, static_cast<double>(e.fill_last)));
    return o;
  }
  if (e.kind == DoorEvent::kFillCancel) {
    o.Set("kind", "fillCancel");
    o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
    o.Set("conn", Napi::Number::New(env, static_cast<double>(e.conn)));
    return o;
  }
  o.Set("kind", e.kind == DoorEvent::kRequest ? "request"
                : e.kind == DoorEvent::kDrain ? "drain"
                : e.kind == DoorEvent::kClosed ? "closed"
                                               : "aborted");
  o.Set("id", Napi::Number::New(env, static_cast<double>(e.id)));
  o.Set("conn", Napi::Number::New(env, static_cast<double>(e.conn)));
  if (e.kind == DoorEvent::kDrain) {
    o.Set("written", Napi::Number::New(env, static_cast<double>(e.written)));
    o.Set("answered", Napi::Boolean::New(env, e.answered));
    return o;
  }
  if (e.kind == DoorEvent::kAborted) {
    o.Set("reason", e.reason);
    return o;
  }
  o.Set("method", Latin1(env, e.method));
  o.Set("target", Latin1(env, e.target));
  o.Set("path", Latin1(env, e.path));
  o.Set("query", Latin1(env, e.query));
  o.Set("hasQuery", Napi::Boolean::New(env, e.has_query));
  o.Set("authority", Latin1(env, e.authority));
  o.Set("versionMinor", Napi::Number::New(env, e.version_minor));
  o.Set("keepAlive", Napi::Boolean::New(env, e.keep_alive));
  o.Set("peer", e.peer);
  Napi::Array headers = Napi::Array::New(env, e.headers.size());
  for (uint32_t i = 0; i < e.headers.size(); i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Latin1(env, e.headers[i].first));
    pair.Set(1u, Latin1(env, e.headers[i].second));
    headers.Set(i, pair);
  }
  o.Set("headers", headers);
  // Admin bodies only (bounded by maxBodyBytes): copied once into a Buffer.
  o.Set("body", Napi::Buffer<char>::Copy(env, e.body.data(), e.body.size()));
  return o;
}

net::DoorRegistry<HttpDoor, DoorEvent> g_doors("http door", ToJs);
using Handle = net::DoorRegistry<HttpDoor, DoorEvent>::Handle;

uint32_t U32(Napi::Object o, const char* key, uint32_t dflt, uint32_t min, uint32_t max) {
  return static_cast<uint32_t>(net::NumberOption(o, key, dflt, min, max, "http door"));
}

Handle& Need(const Napi::CallbackInfo& info) { return g_doors.Need(info); }

// Appends each non-empty Uint8Array of `parts` to `a`'s body, sent from its
// own memory: pinned until written, released on this thread.
void PinParts(Napi::Env env, Handle& h, Napi::Array parts, Answer& a, const char* what) {
  for (uint32_t i = 0; i < parts.Length(); i++) {
    Napi::Value part = parts.Get(i);
    if (!part.IsTypedArray()) throw Napi::TypeError::New(env, what);
    auto arr = part.As<Napi::Uint8Array>();
    if (arr.ByteLength() == 0) continue;
    BodyPart p;
    p.data = reinterpret_cast<const char*>(arr.Data());
    p.len = arr.ByteLength();
    p.pin = net::PinJs(part);
    h.door->stats().pinned_buffers++;
    a.body.push_back(p);
  }
}

}  // namespace

Napi::Value HttpDoorStartJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "httpDoorStart(options, onEvents)");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  DoorOptions opt;
  Napi::Value host = o.Get("host");
  if (!host.IsString()) throw Napi::TypeError::New(env, "http door: host must be a string (an IP address)");
  opt.host = host.As<Napi::String>().Utf8Value();
  opt.port = static_cast<uint16_t>(U32(o, "port", 0, 0, 65535));
  opt.threads = U32(o, "threads", 1, 1, kMaxThreads);
  opt.max_connections = U32(o, "maxConnections", opt.max_connections, 1, 1u << 24);
  opt.max_per_address = U32(o, "maxPerAddress", 0, 0, 1u << 24);
  opt.auth_required = o.Get("authRequired").ToBoolean().Value();
  opt.reserved = U32(o, "reserved", 0, 0, opt.max_connections - 1);
  opt.max_in_flight = U32(o, "maxInFlight", opt.max_in_flight, 1, 1u << 16);
  opt.max_buffered_bytes = U32(o, "maxBufferedBytes", static_cast<uint32_t>(opt.max_buffered_bytes), 1, UINT32_MAX);
  opt.first_request_timeout_ms = U32(o, "firstRequestTimeoutMs", opt.first_request_timeout_ms, 1, 3'600'000);
  opt.header_timeout_ms = U32(o, "headerTimeoutMs", opt.header_timeout_ms, 1, 3'600'000);
  opt.idle_timeout_ms = U32(o, "idleTimeoutMs", opt.idle_timeout_ms, 1, 86'400'000);
  opt.request_timeout_ms = U32(o, "requestTimeoutMs", opt.request_timeout_ms, 1, 86'400'000);
  opt.max_posted_body_bytes = net::NumberOption(o, "maxPostedBodyBytes", opt.max_posted_body_bytes, 1, uint64_t{1} << 40, "http door");
  opt.max_fast_queued_bytes = net::NumberOption(o, "maxFastQueuedBytes", 0, 0, uint64_t{1} << 50, "http door");
  opt.limits.max_request_line_bytes = U32(o, "maxRequestLineBytes", opt.limits.max_request_line_bytes, 16, 1u << 24);
  opt.limits.max_header_count = U32(o, "maxHeaderCount", opt.limits.max_header_count, 1, 1u << 16);
  opt.limits.max_header_bytes = U32(o, "maxHeaderBytes", opt.limits.max_header_bytes, 16, 1u << 24);
  opt.limits.max_body_bytes = U32(o, "maxBodyBytes", static_cast<uint32_t>(opt.limits.max_body_bytes), 0, 1u << 30);
  Napi::Value fast = o.Get("fast");
  if (!fast.IsUndefined() && !fast.IsNull()) {
    if (!fast.IsObject()) throw Napi::TypeError::New(env, "http door: fast must be an object");
    opt.fast = FastPathOfJs(fast.As<Napi::Object>());
  }
  opt.duration_bounds = net::DurationBoundsOption(o, "http door");
  opt.access_log = o.Get("accessLog").ToBoolean().Value();

  return g_doors.Start(env, info[1].As<Napi::Function>(), std::move(opt));
}

Napi::Value HttpDoorRespondJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle& h = Need(info);
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsArray() || !info[4].IsArray()) {
    throw Napi::TypeError::New(env, "httpDoorRespond(door, id, status, headers, body, options?)");
  }
  Answer a;
  a.id = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  double status = info[2].As<Napi::Number>().DoubleValue();
  if (!(status >= 200 && status <= 599) || status != static_cast<int>(status)) {
    throw Napi::RangeError::New(env, "http door: status must be an integer 200..599");
  }
  a.status = static_cast<int>(status);
  auto headers = info[3].As<Napi::Array>();
  if (headers.Length() % 2 != 0) throw Napi::TypeError::New(env, "http door: headers must be a flat [name, value, ...] list");
  for (uint32_t i = 0; i < headers.Length(); i += 2) {
    Napi::Value n = headers.Get(i), v = headers.Get(i + 1);
    if (!n.IsString() || !v.IsString()) throw Napi::TypeError::New(env, "http door: header names and values must be strings");
    std::string name = n.As<Napi::String>().Utf8Value(), value = v.As<Napi::String>().Utf8Value();
    if (!ValidFieldName(name)) throw Napi::TypeError::New(env, "http door: invalid header name " + name);
    if (!ValidFieldValue(value)) {
      throw Napi::TypeError::New(env, "http door: header " + name + " has a CR, LF, NUL or other control character");
    }
    // The door owns the framing: it writes Content-Length and Connection itself.
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-length" || lower == "connection" || lower == "transfer-encoding") {
      throw Napi::TypeError::New(env, "http door: " + name + " is written by the door, not by the answer");
    }
    a.headers.emplace_back(std::move(name), std::move(value));
  }
  Napi::Object opts = info.Length() > 5 && info[5].IsObject() ? info[5].As<Napi::Object>() : Napi::Object::New(env);
  a.close = opts.Get("close").ToBoolean().Value();
  a.head_only = opts.Get("headOnly").ToBoolean().Value();
  if (a.head_only) {
    Napi::Value cl = opts.Get("contentLength");
    if (!cl.IsNumber() || cl.As<Napi::Number>().DoubleValue() < 0) {
      throw Napi::TypeError::New(env, "http door: headOnly needs contentLength (the size a GET would send)");
    }
    a.content_length = static_cast<uint64_t>(cl.As<Napi::Number>().DoubleValue());
  }
  auto body = info[4].As<Napi::Array>();
  if ((a.status == 204 || a.status == 304) && body.Length() > 0) {
    throw Napi::TypeError::New(env, "http door: a 204 or 304 answer has no body");
  }
  PinParts(env, h, body, a, "http door: body parts must be Uint8Arrays");
  h.door->Respond(std::move(a));
  return env.Undefined();
}

Napi::Value HttpDoorSendJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle& h = Need(info);
  if (info.Length() < 4 || !info[1].IsNumber() || !info[2].IsArray() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "httpDoorSend(door, id, parts, flags)");
  }
  Answer a;
  a.stream = true;
  a.id = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  uint32_t flags = info[3].As<Napi::Number>().Uint32Value();
  a.end = (flags & 1) != 0;
  a.close = (flags & 2) != 0;
  a.want_drain = (flags & 4) != 0;
  a.want_written = (flags & 8) != 0;
  auto parts = info[2].As<Napi::Array>();
  PinParts(env, h, parts, a, "http door: answer pieces must be Uint8Arrays");
  h.door->Respond(std::move(a));
  return env.Undefined();
}

Napi::Value HttpDoorFillDoneJs(const Napi::CallbackInfo& info) {
  Handle& h = Need(info);
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsBoolean() || (info.Length() > 3 && !info[3].IsString())) {
    throw Napi::TypeError::New(info.Env(), "httpDoorFillDone(door, id, ok, source)");
  }
  Answer a;
  a.id = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());  // routes to the request's worker
  a.fill_done = true;
  a.fill_ok = info[2].As<Napi::Boolean>().Value();
  if (info.Length() > 3) a.fill_source = FillSourceOf(info[3].As<Napi::String>().Utf8Value());
  h.door->Respond(std::move(a));
  return info.Env().Undefined();
}

Napi::Value HttpDoorCloseJs(const Napi::CallbackInfo& info) {
  Handle& h = Need(info);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "httpDoorClose(door, conn)");
  Answer a;
  a.close_conn = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  a.id = a.close_conn;  // routes to the connection's worker
  h.door->Respond(std::move(a));
  return info.Env().Undefined();
}

Napi::Value HttpDoorAuthenticateJs(const Napi::CallbackInfo& info) {
  Handle& h = Need(info);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "httpDoorAuthenticate(door, conn)");
  Answer a;
  a.close_conn = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  a.authenticate = true;
  a.id = a.close_conn;  // routes to the connection's worker
  h.door->Respond(std::move(a));
  return info.Env().Undefined();
}

Napi::Value HttpDoorStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DoorStats& s = Need(info).door->stats();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  net::SetCounters(env, o, s);
  set("rejectedPerAddress", static_cast<double>(s.rejected_per_address.load()));
  set("rejectedReserve", static_cast<double>(s.rejected_reserve.load()));
  set("idleEvicted", static_cast<double>(s.idle_evicted.load()));
  set("pipelineCuts", static_cast<double>(s.pipeline_cuts.load()));
  set("firstRequestTimeouts", static_cast<double>(s.first_request_timeouts.load()));
  set("unauthenticated", static_cast<double>(s.unauthenticated.load()));
  set("requests", static_cast<double>(s.requests.load()));
  set("responses", static_cast<double>(s.responses.load()));
  set("parseErrors", static_cast<double>(s.parse_errors.load()));
  set("headerTimeouts", static_cast<double>(s.header_timeouts.load()));
  set("idleTimeouts", static_cast<double>(s.idle_timeouts.load()));
  set("requestTimeouts", static_cast<double>(s.request_timeouts.load()));
  set("fastQueuedBytes", static_cast<double>(s.fast_queued_bytes.load()));
  set("postedBodyBytes", static_cast<double>(s.posted_body_bytes.load()));
  set("fastOverBudget", static_cast<double>(s.fast_over_budget.load()));
  if (const auto& fp = Need(info).door->options().fast) {
    FastPathStats& f = fp->stats;
    set("fastHits", static_cast<double>(f.hits.load()));
    set("fastBodyBytes", static_cast<double>(f.body_bytes.load()));
    set("fastBodyHits", static_cast<double>(f.body_hits.load()));
    set("fastNotModified", static_cast<double>(f.not_modified.load()));
    set("fastNoBinding", static_cast<double>(f.no_binding.load()));
    set("fastBusy", static_cast<double>(f.busy.load()));
    set("fastMisses", static_cast<double>(f.misses.load()));
    set("fastNvmeHits", static_cast<double>(f.nvme_hits.load()));
    set("fastNvmeBodyBytes", static_cast<double>(f.nvme_body_bytes.load()));
    set("fastUnauthorised", static_cast<double>(f.unauthorised.load()));
    set("fastOther", static_cast<double>(f.other.load()));
    set("fastChunkRefs", static_cast<double>(f.chunk_refs.load()));
    set("fastFillParked", static_cast<double>(f.fill_parked.load()));
    set("fastFillResumed", static_cast<double>(f.fill_resumed.load()));
    set("fastFillFallback", static_cast<double>(f.fill_fallback.load()));
    set("fastFillOverflow", static_cast<double>(f.fill_overflow.load()));
    set("fastFillTimeouts", static_cast<double>(f.fill_timeouts.load()));
    set("fastFillWaiting", static_cast<double>(f.fill_waiting.load()));
    // Resumed misses by the fill's source (FillSource order: origin, peer, nvme).
    Napi::Array hits = Napi::Array::New(env, 3), bytes = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; i++) {
      hits.Set(i, Napi::Number::New(env, static_cast<double>(f.fill_source_hits[i].load())));
      bytes.Set(i, Napi::Number::New(env, static_cast<double>(f.fill_source_bytes[i].load())));
    }
    o.Set("fastFillSourceHits", hits);
    o.Set("fastFillSourceBytes", bytes);
    HttpDoor& door = *Need(info).door;
    o.Set("fastDurations", net::DurationsToJs(env, [&](std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count) {
            door.FastDurations(counts, sum_ns, count);
          }));
  }
  set("accessDropped", static_cast<double>(s.access_dropped.load()));
  return o;
}

Napi::Value HttpDoorStopJs(const Napi::CallbackInfo& info) {
  Need(info);
  g_doors.Stop(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace weightcache::http
