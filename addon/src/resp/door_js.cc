#include "resp/door_js.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "http/fastpath_js.h"
#include "resp/door.h"
#include "resp/parser_js.h"
#include "store/store_js.h"

namespace weightcache::resp {

namespace {

struct Handle {
  Napi::ThreadSafeFunction tsfn;
  std::unique_ptr<RespDoor> door;
};

// Doors are used from the main JavaScript thread only.
std::map<uint32_t, Handle*> g_doors;
uint32_t g_next_door = 1;
bool g_cleanup_added = false;

// Reply pieces up to this size are copied (cheaper than pinning and releasing a Buffer).
constexpr size_t kCopyBelow = 16 * 1024;

void DropPin(void* pin) { delete static_cast<Napi::Reference<Napi::Value>*>(pin); }

Napi::Value ToJs(Napi::Env env, DoorEvent& e) {
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
      break;
  }
  return o;
}

void Drain(Napi::Env env, Napi::Function fn, uint32_t id) {
  auto it = g_doors.find(id);
  if (it == g_doors.end() || !it->second->door) return;
  RespDoor& door = *it->second->door;
  std::vector<DoorEvent> events = door.TakeEvents();
  Napi::HandleScope scope(env);
  Napi::Array batch = Napi::Array::New(env);
  uint32_t n = 0;
  for (DoorEvent& e : events) {
    if (e.kind == DoorEvent::kRelease) {
      door.DropPin(e.pin);
      continue;
    }
    batch.Set(n++, ToJs(env, e));
  }
  if (n == 0) return;
  try {
    fn.Call({batch});
  } catch (const Napi::Error& err) {
    if (!err.Message().empty()) fprintf(stderr, "weightcache resp door: event handler threw: %s\n", err.Message().c_str());
  }
}

void Stop(uint32_t id) {
  auto it = g_doors.find(id);
  if (it == g_doors.end()) return;
  Handle* h = it->second;
  g_doors.erase(it);
  h->door.reset();  // joins the workers: nothing calls the tsfn after this
  h->tsfn.Release();
  delete h;
}

uint64_t Num(Napi::Object o, const char* key, uint64_t dflt, uint64_t min, uint64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(o.Env(), std::string("resp door: ") + key + " must be an integer in " +
                                             std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<uint64_t>(d);
}

Handle& Need(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "resp door: door id must be a number");
  auto it = g_doors.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == g_doors.end()) throw Napi::Error::New(info.Env(), "resp door: no such door (stopped?)");
  return *it->second;
}

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

  uint32_t id = g_next_door++;
  auto* h = new Handle();
  h->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "weightcache-resp-door", 0, 1);
  Napi::ThreadSafeFunction tsfn = h->tsfn;
  h->door = std::make_unique<RespDoor>(
      opt, [tsfn, id]() mutable { tsfn.NonBlockingCall([id](Napi::Env e, Napi::Function fn) { Drain(e, fn, id); }); },
      DropPin);
  int err = 0;
  std::string what;
  uint16_t port = h->door->Start(err, what);
  if (port == 0) {
    h->door.reset();
    h->tsfn.Release();
    delete h;
    Napi::Error e = Napi::Error::New(env, what + ": " + std::strerror(err));
    const char* name = strerrorname_np(err);
    e.Set("code", Napi::String::New(env, name ? name : "EINVAL"));
    throw e;
  }
  g_doors[id] = h;
  if (!g_cleanup_added) {
    g_cleanup_added = true;
    env.AddCleanupHook([]() {
      while (!g_doors.empty()) Stop(g_doors.begin()->first);
    });
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, id));
  out.Set("port", Napi::Number::New(env, port));
  return out;
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
      p.pin = new Napi::Reference<Napi::Value>(Napi::Persistent(v));
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
  set("connectionsAccepted", static_cast<double>(s.connections_accepted.load()));
  set("connectionsRejected", static_cast<double>(s.connections_rejected.load()));
  set("connectionsOpen", static_cast<double>(s.connections_open.load()));
  set("commands", static_cast<double>(s.commands.load()));
  set("inFlight", static_cast<double>(s.in_flight.load()));
  set("protocolErrors", static_cast<double>(s.protocol_errors.load()));
  set("bytesRead", static_cast<double>(s.bytes_read.load()));
  set("bytesWritten", static_cast<double>(s.bytes_written.load()));
  set("pinnedBuffers", static_cast<double>(s.pinned_buffers.load()));
  set("bufferedBytes", static_cast<double>(s.buffered_bytes.load()));
  set("pausedReads", static_cast<double>(s.paused_reads.load()));
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
  }
  return o;
}

Napi::Value StopJs(const Napi::CallbackInfo& info) {
  Need(info);
  Stop(info[0].As<Napi::Number>().Uint32Value());
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
