#include "transport/transport_js.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "transport/file_payload.h"
#include "http/fastpath_js.h"
#include "transport/io_loop.h"
#include "store/store_js.h"

namespace weightcache {
namespace {

struct PayloadHint {
  std::shared_ptr<BufferPool> pool;
  size_t len;
  // A payload read into store memory (transportReceiveInto): the pending allocation, held until
  // the Buffer is collected; NativeStore.commit publishes it in place meanwhile.
  std::shared_ptr<store::Store> store;
  store::Ref ref;
};

// Per-environment state. The env cleanup hook stops the I/O thread before
// the thread-safe function goes away (hooks run in reverse order of adding).
struct State {
  Napi::ThreadSafeFunction tsfn;
  Napi::FunctionReference on_event;
  std::unique_ptr<IoLoop> loop;
};
State* g_state = nullptr;  // one per process: the transport is used from the main thread only

// File payloads are prepared on the libuv thread pool, which may still be
// running one when the environment tears down: workers submit through this
// guarded pointer, cleared (under the lock) before the loop is destroyed.
std::mutex g_submit_mu;
IoLoop* g_submit_loop = nullptr;

class FilePrep : public Napi::AsyncWorker {
 public:
  FilePrep(Napi::Env env, Command&& cmd) : Napi::AsyncWorker(env, "weightcache:file-payload"), cmd_(std::move(cmd)) {}

  void Execute() override {
    // The slow part runs unlocked, so thread-pool threads prepare files in parallel.
    TransportStats counts;
    PrepareFilePayload(cmd_.frame, counts);
    std::lock_guard<std::mutex> lock(g_submit_mu);
    if (!g_submit_loop) return;
    g_submit_loop->stats().bytes_crc_computed += counts.bytes_crc_computed.load();
    g_submit_loop->stats().send_failures += counts.send_failures.load();
    g_submit_loop->Submit(std::move(cmd_));
    cmd_.frame.file_fd = -1;  // a moved-from int keeps its value: the loop owns the descriptor now
  }

  ~FilePrep() override {
    if (cmd_.frame.file_fd >= 0) close(cmd_.frame.file_fd);  // only if never submitted
  }

 private:
  Command cmd_;
};

void DropPin(void* pin) {
  delete static_cast<Napi::Reference<Napi::Value>*>(pin);
}

State& Need(Napi::Env env) {
  if (!g_state || !g_state->loop) throw Napi::Error::New(env, "transport: call transportInit(onEvent) first");
  return *g_state;
}

Napi::Object ToJs(Napi::Env env, Event& e, IoLoop& loop) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("conn", Napi::Number::New(env, static_cast<double>(e.conn)));
  switch (e.kind) {
    case Event::kAccepted:
      o.Set("kind", "accepted");
      o.Set("listener", Napi::Number::New(env, static_cast<double>(e.listener)));
      o.Set("peer", e.text);
      break;
    case Event::kConnected:
      o.Set("kind", "connected");
      break;
    case Event::kClosed:
      o.Set("kind", "closed");
      o.Set("reason", e.text);
      break;
    case Event::kFrame: {
      const FrameHeader& h = e.header;
      o.Set("kind", "frame");
      o.Set("type", h.type);
      o.Set("flags", h.flags);
      o.Set("version", h.version);
      o.Set("requestId", Napi::Number::New(env, h.request_id));
      // Control bytes (≤ 64 KiB), not payload: copied, and not counted as payload copies.
      o.Set("meta", Napi::Buffer<uint8_t>::Copy(env, e.meta.data(), e.meta.size()));
      o.Set("payloadCrc", Napi::Number::New(env, h.payload_crc));
      o.Set("crcOk", Napi::Boolean::New(env, h.payload_crc == e.computed_crc));
      if (e.nvme_failed) o.Set("nvmeFailed", true);
      if (e.payload) {
        size_t len = static_cast<size_t>(h.payload_length);
        auto* hint = new PayloadHint{loop.pool(), len, std::move(e.payload_store), std::move(e.payload_ref)};
        // The received bytes become the JS Buffer in place: no copy.
        auto buf = Napi::Buffer<uint8_t>::New(
            env, e.payload, len,
            [](Napi::Env, uint8_t* p, PayloadHint* hint) {
              if (!hint->ref) hint->pool->Release(p, hint->len);
              delete hint;  // drops the store reference, if it held one
            },
            hint);
        // No AdjustExternalMemory: V8 already accounts an external ArrayBuffer's backing store
        // (and schedules GCs by it); reporting it again forced a full GC every few reads.
        e.payload = nullptr;
        o.Set("payload", buf);
      }
      break;
    }
    case Event::kRelease:
      break;
  }
  return o;
}

void Drain(Napi::Env env, Napi::Function fn) {
  if (!g_state || !g_state->loop) return;
  IoLoop& loop = *g_state->loop;
  std::vector<Event> events = loop.TakeEvents();
  for (Event& e : events) {
    if (e.kind == Event::kRelease) {
      DropPin(e.pin);
      loop.stats().pinned_buffers--;
      continue;
    }
    try {
      Napi::HandleScope scope(env);
      fn.Call({ToJs(env, e, loop)});
    } catch (const Napi::Error& err) {
      // The dispatcher must not throw; if it does, keep draining (pins and
      // payloads must still be released) and report it.
      // An empty message is node refusing to run JS at teardown: nothing to report then.
      if (!err.Message().empty()) {
        fprintf(stderr, "weightcache transport: event handler threw: %s\n", err.Message().c_str());
      }
    }
    if (e.payload && !e.payload_ref) loop.pool()->Release(e.payload, static_cast<size_t>(e.header.payload_length));
  }
}

std::string ErrName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "E" + std::to_string(err);
}

Napi::Error SysError(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + std::strerror(err));
  e.Set("code", Napi::String::New(env, ErrName(err)));
  return e;
}

bool ParseAddr(const std::string& host, uint32_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("transport: ") + name + " must be a number");
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string("transport: ") + name + " must be a uint32");
  }
  return static_cast<uint32_t>(d);
}

uint64_t IdArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "transport: id must be a number");
  return static_cast<uint64_t>(info[i].As<Napi::Number>().Int64Value());
}

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string("transport: ") + name + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

}  // namespace

// transportInit(onEvent)
Napi::Value TransportInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "transportInit(onEvent): onEvent must be a function");
  if (g_state) throw Napi::Error::New(env, "transportInit: already initialised in this process");
  auto* st = new State();
  st->tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "weightcache-transport", 0, 1);
  st->tsfn.Unref(env);  // only open servers and pending requests keep the process alive (ref/unref)
  Napi::ThreadSafeFunction tsfn = st->tsfn;
  st->loop = std::make_unique<IoLoop>([tsfn]() mutable { tsfn.NonBlockingCall(Drain); });
  st->loop->set_drop_pin(DropPin);
  g_state = st;
  {
    std::lock_guard<std::mutex> lock(g_submit_mu);
    g_submit_loop = st->loop.get();
  }
  env.AddCleanupHook([]() {
    if (!g_state) return;
    {
      std::lock_guard<std::mutex> lock(g_submit_mu);
      g_submit_loop = nullptr;
    }
    g_state->loop.reset();  // joins the I/O thread: nothing calls the tsfn after this
    g_state->tsfn.Release();
    delete g_state;
    g_state = nullptr;
  });
  return env.Undefined();
}

Napi::Value TransportRef(const Napi::CallbackInfo& info) {
  Need(info.Env()).tsfn.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value TransportUnref(const Napi::CallbackInfo& info) {
  Need(info.Env()).tsfn.Unref(info.Env());
  return info.Env().Undefined();
}

// transportListen(host, port, maxFrameBytes, maxInFlight, maxConnections,
//                 preAuthTimeoutMs, maxUnauthenticated, maxUnauthenticatedPerAddress) -> { id, port }
Napi::Value TransportListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  std::string host = StrArg(info, 0, "host");
  uint32_t port = U32Arg(info, 1, "port");
  Command cmd;
  cmd.kind = Command::kListen;
  cmd.limits.max_frame_bytes = U32Arg(info, 2, "maxFrameBytes");
  cmd.limits.max_in_flight = U32Arg(info, 3, "maxInFlight");
  cmd.max_connections = U32Arg(info, 4, "maxConnections");
  cmd.preauth.timeout_ms = U32Arg(info, 5, "preAuthTimeoutMs");
  cmd.preauth.max_connections = U32Arg(info, 6, "maxUnauthenticated");
  cmd.preauth.max_per_address = U32Arg(info, 7, "maxUnauthenticatedPerAddress");
  if (port > 65535) throw Napi::RangeError::New(env, "transport: port must be 0..65535");
  if (cmd.limits.max_in_flight == 0) throw Napi::RangeError::New(env, "transport: maxInFlight must be ≥ 1");
  if (cmd.preauth.timeout_ms == 0 || cmd.preauth.max_connections == 0 || cmd.preauth.max_per_address == 0) {
    throw Napi::RangeError::New(env, "transport: the pre-auth limits must be ≥ 1");
  }
  sockaddr_storage addr;
  socklen_t len;
  if (!ParseAddr(host, port, addr, len)) throw Napi::TypeError::New(env, "transport: host must be an IP address, got " + host);
  // Bound here, on the JS thread, so EADDRINUSE & co. are thrown at the caller.
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError(env, "socket", errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0 || listen(fd, 1024) < 0) {
    int err = errno;
    close(fd);
    throw SysError(env, "listen on " + host + ":" + std::to_string(port), err);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  uint16_t bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                    : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  cmd.id = st.loop->NextId();
  cmd.fd = fd;
  uint64_t id = cmd.id;
  st.loop->Submit(std::move(cmd));
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, static_cast<double>(id)));
  out.Set("port", Napi::Number::New(env, bound_port));
  return out;
}

Napi::Value TransportCloseListener(const Napi::CallbackInfo& info) {
  State& st = Need(info.Env());
  Command cmd;
  cmd.kind = Command::kCloseListener;
  cmd.id = IdArg(info, 0);
  st.loop->Submit(std::move(cmd));
  return info.Env().Undefined();
}

// transportServeNative(listenerId, { store, bindings, originId, maxFrameBytes } | null):
// READ_CHUNK hits of bound versions in `store` are answered on the I/O thread (transport/chunk_serve.h).
Napi::Value TransportServeNative(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  Command cmd;
  cmd.kind = Command::kServeNative;
  cmd.id = IdArg(info, 0);
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    auto src = std::make_shared<transport::ChunkSource>();
    src->store = store::StoreOf(env, o.Get("store"));
    if (!src->store) throw Napi::TypeError::New(env, "transportServeNative: store must be a NativeStore");
    src->bindings = http::BindingsOfJs(o.Get("bindings"));
    if (!src->bindings) throw Napi::TypeError::New(env, "transportServeNative: bindings must be a NativeBindings");
    Napi::Value origin = o.Get("originId");
    if (!origin.IsString()) throw Napi::TypeError::New(env, "transportServeNative: originId must be a string");
    src->origin_id = origin.As<Napi::String>().Utf8Value();
    Napi::Value mf = o.Get("maxFrameBytes");
    if (!mf.IsNumber()) throw Napi::TypeError::New(env, "transportServeNative: maxFrameBytes must be a number");
    double frame = mf.As<Napi::Number>().DoubleValue();
    if (!(frame >= 1 && frame <= 4294967295.0 && frame == static_cast<double>(static_cast<uint64_t>(frame)))) {
      throw Napi::RangeError::New(env, "transportServeNative: maxFrameBytes must be an integer 1..2^32-1");
    }
    src->max_frame_bytes = static_cast<uint64_t>(frame);
    cmd.chunks = std::move(src);
  } else if (info.Length() < 2 || !info[1].IsNull()) {
    throw Napi::TypeError::New(env, "transportServeNative(listenerId, source | null)");
  }
  st.loop->Submit(std::move(cmd));
  return env.Undefined();
}

// transportReceiveInto(store | null): READ_CHUNK answers on outbound connections are read into
// allocations of this NativeStore, so the receiver commits them in place (no copy).
Napi::Value TransportReceiveInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  Command cmd;
  cmd.kind = Command::kReceiveInto;
  if (info.Length() < 1 || !(info[0].IsNull() || info[0].IsObject())) {
    throw Napi::TypeError::New(env, "transportReceiveInto(store | null)");
  }
  if (!info[0].IsNull()) {
    cmd.receive_store = store::StoreOf(env, info[0]);
    if (!cmd.receive_store) throw Napi::TypeError::New(env, "transportReceiveInto: store must be a NativeStore");
  }
  st.loop->Submit(std::move(cmd));
  return env.Undefined();
}

// transportConnect(host, port, maxFrameBytes, maxInFlight) -> id; 'connected' or 'closed' follows.
Napi::Value TransportConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  std::string host = StrArg(info, 0, "host");
  uint32_t port = U32Arg(info, 1, "port");
  Command cmd;
  cmd.kind = Command::kConnect;
  cmd.limits.max_frame_bytes = U32Arg(info, 2, "maxFrameBytes");
  cmd.limits.max_in_flight = U32Arg(info, 3, "maxInFlight");
  if (port == 0 || port > 65535) throw Napi::RangeError::New(env, "transport: port must be 1..65535");
  if (!ParseAddr(host, port, cmd.addr, cmd.addr_len)) {
    throw Napi::TypeError::New(env, "transport: host must be an IP address, got " + host);
  }
  cmd.id = st.loop->NextId();
  uint64_t id = cmd.id;
  st.loop->Submit(std::move(cmd));
  return Napi::Number::New(env, static_cast<double>(id));
}

// transportSend(conn, type, flags, requestId, meta|null, payload|null, filePath|null, fileOffset, length, crc, admit?)
// payload: a Buffer sent in place (pinned until written). filePath: sendfile of [fileOffset, +length).
// crc: the payload's CRC32C, or -1 to have the I/O thread compute it.
// admit (an accepted connection's handshake replies only): 1 = read the next handshake frame,
// 2 = authenticated: lift the pre-auth limits. Applied right after the frame is queued.
Napi::Value TransportSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  Command cmd;
  cmd.kind = Command::kSend;
  cmd.id = IdArg(info, 0);
  OutFrame& f = cmd.frame;
  uint32_t type = U32Arg(info, 1, "type");
  if (type < 1 || type > 255) throw Napi::RangeError::New(env, "transport: frame type must be 1..255");
  f.h.type = static_cast<uint8_t>(type);
  f.h.flags = static_cast<uint16_t>(U32Arg(info, 2, "flags") & kFlagResponse);
  f.h.request_id = U32Arg(info, 3, "requestId");
  if (info.Length() > 4 && info[4].IsTypedArray()) {
    auto meta = info[4].As<Napi::Uint8Array>();
    if (meta.ByteLength() > kMaxMetaBytes) throw Napi::RangeError::New(env, "transport: meta exceeds 64 KiB");
    f.meta.assign(meta.Data(), meta.Data() + meta.ByteLength());
  }
  double crc = info.Length() > 9 && info[9].IsNumber() ? info[9].As<Napi::Number>().DoubleValue() : -1;
  uint32_t admit = info.Length() > 10 && info[10].IsNumber() ? U32Arg(info, 10, "admit") : 0;
  if (admit > 2) throw Napi::RangeError::New(env, "transport: admit must be 0, 1 or 2");
  cmd.admit = static_cast<uint8_t>(admit);
  f.compute_crc = crc < 0;
  f.h.payload_crc = crc < 0 ? 0 : static_cast<uint32_t>(crc);
  if (info.Length() > 5 && info[5].IsTypedArray()) {
    auto buf = info[5].As<Napi::Uint8Array>();
    f.kind = OutFrame::kMemory;
    f.mem = buf.Data();
    f.h.payload_length = buf.ByteLength();
    if (f.h.payload_length > 0) {
      f.pin = new Napi::Reference<Napi::Value>(Napi::Persistent(info[5]));
      st.loop->stats().pinned_buffers++;
    }
  } else if (info.Length() > 6 && info[6].IsString()) {
    f.kind = OutFrame::kFile;
    f.path = info[6].As<Napi::String>().Utf8Value();
    if (!info[7].IsNumber() || !info[8].IsNumber()) throw Napi::TypeError::New(env, "transport: file offset and length must be numbers");
    int64_t off = info[7].As<Napi::Number>().Int64Value();
    int64_t len = info[8].As<Napi::Number>().Int64Value();
    if (off < 0 || len < 0) throw Napi::RangeError::New(env, "transport: file offset and length must be ≥ 0");
    f.file_offset = static_cast<uint64_t>(off);
    f.h.payload_length = static_cast<uint64_t>(len);
    (new FilePrep(env, std::move(cmd)))->Queue();  // AsyncWorker deletes itself when done
    return env.Undefined();
  }
  st.loop->Submit(std::move(cmd));
  return env.Undefined();
}

// transportClose(conn, reason, afterFlush)
Napi::Value TransportClose(const Napi::CallbackInfo& info) {
  State& st = Need(info.Env());
  Command cmd;
  cmd.kind = Command::kClose;
  cmd.id = IdArg(info, 0);
  cmd.reason = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "closed locally";
  cmd.after_flush = info.Length() > 2 && info[2].ToBoolean().Value();
  st.loop->Submit(std::move(cmd));
  return info.Env().Undefined();
}

Napi::Value TransportStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& st = Need(env);
  TransportStats& s = st.loop->stats();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  set("bytesWritev", static_cast<double>(s.bytes_writev.load()));
  set("bytesSendfile", static_cast<double>(s.bytes_sendfile.load()));
  set("bytesCopied", static_cast<double>(s.bytes_copied.load()));
  set("bytesReceivedDirect", static_cast<double>(s.bytes_received_direct.load()));
  set("bytesCrcComputed", static_cast<double>(s.bytes_crc_computed.load()));
  set("framesSent", static_cast<double>(s.frames_sent.load()));
  set("framesReceived", static_cast<double>(s.frames_received.load()));
  set("connectionsOpened", static_cast<double>(s.connections_opened.load()));
  set("connectionsClosed", static_cast<double>(s.connections_closed.load()));
  set("connectionsRejected", static_cast<double>(s.connections_rejected.load()));
  set("preAuthTimeouts", static_cast<double>(s.preauth_timeouts.load()));
  set("preAuthEvicted", static_cast<double>(s.preauth_evicted.load()));
  set("preAuthRefused", static_cast<double>(s.preauth_refused.load()));
  set("protocolErrors", static_cast<double>(s.protocol_errors.load()));
  set("sendFailures", static_cast<double>(s.send_failures.load()));
  set("pinnedBuffers", static_cast<double>(s.pinned_buffers.load()));
  set("queuedBytes", static_cast<double>(s.queued_bytes.load()));
  set("pooledBytes", static_cast<double>(st.loop->pool()->pooled_bytes()));
  set("nativeServed", static_cast<double>(s.native_served.load()));
  set("nativeServedBytes", static_cast<double>(s.native_served_bytes.load()));
  set("nativePassUnbound", static_cast<double>(s.native_pass_unbound.load()));
  set("nativePassMiss", static_cast<double>(s.native_pass_miss.load()));
  set("nativePassOther", static_cast<double>(s.native_pass_other.load()));
  set("nativePassBusy", static_cast<double>(s.native_pass_busy.load()));
  set("nativeNvmeServed", static_cast<double>(s.native_nvme_served.load()));
  set("nativeNvmeServedBytes", static_cast<double>(s.native_nvme_served_bytes.load()));
  set("nativeNvmeFailed", static_cast<double>(s.native_nvme_failed.load()));
  set("nativeNvmeWaiting", static_cast<double>(s.native_nvme_waiting.load()));
  set("nativeChunkRefs", static_cast<double>(s.native_chunk_refs.load()));
  set("bytesReceivedStore", static_cast<double>(s.bytes_received_store.load()));
  return o;
}

}  // namespace weightcache
