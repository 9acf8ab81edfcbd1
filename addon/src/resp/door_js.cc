#include "resp/door_js.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "http/fastpath_js.h"
#include "net/door_js.h"
#include "resp/door.h"
#include "resp/parser_js.h"
#include "store/store_js.h"

namespace weightcache::resp {

namespace {

// Reply pieces up to this size are copied (cheaper than pinning and releasing a Buffer).
constexpr size_t kCopyBelow = 16 * 1024;

Napi::Value ToJs(Napi::Env env, RespDoor& door, DoorEvent& e) {
  if (e.kind == DoorEvent::kAccess) {
    Napi::Object a = net::AccessToJs(env, e.access, true);
    door.AccessTaken(e.access.size());
    return a;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("conn", Napi::Number::New(env, static_cast<double>(e.conn)));
  switch (e.kind) {
    case DoorEvent::kOpen:
      o.Set("kind", "open");
      o.Set("peer", e.peer);
      break;
    case DoorEvent::kCommand: {
      o.Set("kind", "command");
      Napi::Array args = Napi::Array::New(env, e.args.size());
      for (uint32_t i = 0; i < e.args.size(); i++) {
        args.Set(i, Napi::Buffer<char>::Copy(env, e.args[i].data(), e.args[i].size()));
      }
      o.Set("args", args);
      o.Set("written", Napi::Number::New(env, static_cast<double>(e.written)));
      o.Set("served", Napi::Number::New(env, static_cast<double>(e.served)));
      break;
    }
    case DoorEvent::kProtocolError:
      o.Set("kind", "protocolError");
      o.Set("reason", e.error.reason);
      o.Set("message", e.error.message);
      break;
    case DoorEvent::kWritten:
      o.Set("kind", "written");
      o.Set("bytes", Napi::Number::New(env, static_cast<double>(e.written)));
      o.Set("served", Napi::Number::New(env, static_cast<double>(e.served)));
      break;
    case DoorEvent::kClosed:
      o.Set("kind", "closed");
      o.Set("reason", e.reason);
      break;
    case DoorEvent::kRelease:
    case DoorEvent::kAccess:
      break;
  }
  return o;
}

net::DoorRegistry<RespDoor, DoorEvent> g_doors("resp door", ToJs);
using Handle = net::DoorRegistry<RespDoor, DoorEvent>::Handle;

uint64_t Num(Napi::Object o, const char* key, uint64_t dflt, uint64_t min, uint64_t max) {
  return net::NumberOption(o, key, dflt, min, max, "resp door");
}

Handle& Need(const Napi::CallbackInfo& info) { return g_doors.Need(info); }

// respDoorStart(options, onEvents) → {id, port}
Napi::Value StartJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "respDoorStart(options, onEvents)");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  DoorOptions opt;
  Napi::Value host = o.Get("host");
  if (!host.IsString()) throw Napi::TypeError::New(env, "resp door: host must be a string (an IP address)");
  opt.host = host.As<Napi::String>().Utf8Value();
  opt.port = static_cast<uint16_t>(Num(o, "port", 0, 0, 65535));
  opt.threads = static_cast<uint32_t>(Num(o, "threads", 1, 1, kMaxThreads));
  opt.auth = o.Get("auth").ToBoolean().Value();
  opt.limits.max_args = static_cast<uint32_t>(Num(o, "maxArgs", opt.limits.max_args, 3, 1u << 20));
  opt.limits.max_bulk_bytes = Num(o, "maxBulkBytes", opt.limits.max_bulk_bytes, 1, 1ull << 40);
  opt.limits.max_query_buffer_bytes = Num(o, "maxQueryBufferBytes", opt.limits.max_query_buffer_bytes, 1, 1ull << 40);
  opt.max_connections = static_cast<uint32_t>(Num(o, "maxConnections", opt.max_connections, 1, 1u << 24));
  opt.max_pipelined = static_cast<uint32_t>(Num(o, "maxPipelined", opt.max_pipelined, 1, 1u << 20));
  opt.pipeline_window_bytes = Num(o, "pipelineWindowBytes", opt.pipeline_window_bytes, 1, 1ull << 32);
  opt.close_grace_ms = static_cast<uint32_t>(Num(o, "closeGraceMs", opt.close_grace_ms, 0, 60'000));
  Napi::Value fast = o.Get("fast");
  if (!fast.IsUndefined() && !fast.IsNull()) {
    if (!fast.IsObject()) throw Napi::TypeError::New(env, "resp door: fast must be an object {store, bindings, maxGetBytes}");
    Napi::Object f = fast.As<Napi::Object>();
    auto fp = std::make_shared<RespFastPath>();
    fp->store = store::StoreOf(env, f.Get("store"));
    if (!fp->store) throw Napi::TypeError::New(env, "resp door: fast.store must be a NativeStore");
    fp->bindings = http::BindingsOfJs(f.Get("bindings"));
    if (!fp->bindings) throw Napi::TypeError::New(env, "resp door: fast.bindings must be a NativeBindings");
    fp->max_get_bytes = Num(f, "maxGetBytes", fp->max_get_bytes, 0, 1ull << 50);
    opt.fast = std::move(fp);
  }
  opt.duration_bounds = net::DurationBoundsOption(o, "resp door");
  opt.access_log = o.Get("accessLog").ToBoolean().Value();

  return g_doors.Start(env, info[1].As<Napi::Function>(), std::move(opt));
}

// Most containers one connection's grant may list (as src/auth/tokens.ts bounds a token's scopes).
constexpr uint32_t kMaxGrantContainers = 10'000;

// One send of a batch: conn, pieces, done, flags (1 end, 2 destroy, 4 authenticated, 8 report
// written bytes at once, 16 the grant is every container, 32 the grant is the list `grant`), grant.
Send ReadSend(Napi::Env env, Handle& h, Napi::Value conn, Napi::Value pieces_v, Napi::Value done, Napi::Value flags_v,
              Napi::Value grant_v) {
  if (!conn.IsNumber() || !pieces_v.IsArray() || !done.IsNumber() || !flags_v.IsNumber()) {
    throw Napi::TypeError::New(env, "resp door: a send is conn (number), pieces (array), done (number), flags (number)");
  }
  Send s;
  s.conn = static_cast<uint64_t>(conn.As<Napi::Number>().Int64Value());
  s.done = done.As<Napi::Number>().Uint32Value();
  uint32_t flags = flags_v.As<Napi::Number>().Uint32Value();
  s.end = (flags & 1) != 0;
  s.destroy = (flags & 2) != 0;
  s.authenticated = (flags & 4) != 0;
  s.want_written = (flags & 8) != 0;
  if (flags & (16 | 32)) {
    auto g = std::make_shared<RespGrant>();
    g->all = (flags & 16) != 0;
    if (!g->all) {
      if (!grant_v.IsArray()) throw Napi::TypeError::New(env, "resp door: flag 32 needs the grant's containers (an array of strings)");
      auto list = grant_v.As<Napi::Array>();
      if (list.Length() > kMaxGrantContainers) throw Napi::RangeError::New(env, "resp door: a grant lists more than 10000 containers");
      for (uint32_t i = 0; i < list.Length(); i++) {
        Napi::Value c = list.Get(i);
        if (!c.IsString()) throw Napi::TypeError::New(env, "resp door: a grant's containers must be strings");
        g->containers.push_back(c.As<Napi::String>().Utf8Value());
      }
    }
    s.set_grant = true;
    s.grant = std::move(g);
  }
  auto pieces = pieces_v.As<Napi::Array>();
  for (uint32_t i = 0; i < pieces.Length(); i++) {  // checked before anything is pinned
    if (!pieces.Get(i).IsTypedArray()) throw Napi::TypeError::New(env, "resp door: reply pieces must be Uint8Arrays");
  }
  s.pieces.reserve(pieces.Length());
  for (uint32_t i = 0; i < pieces.Length(); i++) {
    Napi::Value v = pieces.Get(i);
    auto arr = v.As<Napi::Uint8Array>();
    if (arr.ByteLength() == 0) continue;
    Piece p;
    p.len = arr.ByteLength();
    if (p.len < kCopyBelow) {
      p.own.assign(reinterpret_cast<const char*>(arr.Data()), p.len);
    } else {
      // Sent from its own memory (a chunk slice): pinned until written, released on this thread.
      p.data = reinterpret_cast<const char*>(arr.Data());
      p.pin = net::PinJs(v);
      h.door->stats().pinned_buffers++;
    }
    s.pieces.push_back(std::move(p));
  }
  return s;
}

// respDoorSend(door, batch): batch is a flat [conn, pieces, done, flags, grant, conn, ...] list.
Napi::Value SendJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle& h = Need(info);
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "respDoorSend(door, batch)");
  auto flat = info[1].As<Napi::Array>();
  if (flat.Length() % 5 != 0) throw Napi::TypeError::New(env, "resp door: a batch is [conn, pieces, done, flags, grant] × n");
  std::vector<Send> batch;
  batch.reserve(flat.Length() / 5);
  try {
    for (uint32_t i = 0; i < flat.Length(); i += 5) {
      batch.push_back(ReadSend(env, h, flat.Get(i), flat.Get(i + 1), flat.Get(i + 2), flat.Get(i + 3), flat.Get(i + 4)));
    }
  } catch (...) {
    for (Send& s : batch) {
      for (Piece& p : s.pieces) h.door->DropPin(p.pin);
    }
    throw;
  }
  h.door->Deliver(std::move(batch));
  return env.Undefined();
}

Napi::Value StatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DoorStats& s = Need(info).door->stats();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  net::SetCounters(env, o, s);
  set("commands", static_cast<double>(s.commands.load()));
  set("protocolErrors", static_cast<double>(s.protocol_errors.load()));
  if (const auto& fp = Need(info).door->options().fast) {
    RespFastStats& f = fp->stats;
    set("fastHits", static_cast<double>(f.hits.load()));
    set("fastBodyBytes", static_cast<double>(f.body_bytes.load()));
    set("fastNoBinding", static_cast<double>(f.no_binding.load()));
    set("fastMisses", static_cast<double>(f.misses.load()));
    set("fastNvmeHits", static_cast<double>(f.nvme_hits.load()));
    set("fastNvmeBodyBytes", static_cast<double>(f.nvme_body_bytes.load()));
    set("fastUnauthorised", static_cast<double>(f.unauthorised.load()));
    set("fastOther", static_cast<double>(f.other.load()));
    set("fastBusy", static_cast<double>(f.busy.load()));
    set("fastChunkRefs", static_cast<double>(f.chunk_refs.load()));
    RespDoor& door = *Need(info).door;
    o.Set("fastDurations", net::DurationsToJs(env, [&](std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count) {
            door.FastDurations(counts, sum_ns, count);
          }));
  }
  set("accessDropped", static_cast<double>(s.access_dropped.load()));
  return o;
}

Napi::Value StopJs(const Napi::CallbackInfo& info) {
  Need(info);
  g_doors.Stop(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace

void InitDoorJs(Napi::Env env, Napi::Object exports) {
  // The request parser, for tests (test/resp/native-parser.test.ts).
  exports.Set("respReplay", Napi::Function::New(env, RespReplayJs, "respReplay"));
  // The I/O threads (src/resp/native-door.ts).
  exports.Set("respDoorStart", Napi::Function::New(env, StartJs, "respDoorStart"));
  exports.Set("respDoorSend", Napi::Function::New(env, SendJs, "respDoorSend"));
  exports.Set("respDoorStats", Napi::Function::New(env, StatsJs, "respDoorStats"));
  exports.Set("respDoorStop", Napi::Function::New(env, StopJs, "respDoorStop"));
}

}  // namespace weightcache::resp
