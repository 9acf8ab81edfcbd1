// The transport's I/O thread: the node-to-node protocol (docs/wire-protocol.md)
// as a handler of the shared event loop (net/event_loop.h, the loop of the
// HTTP and RESP doors), which owns the epoll instance, the doorbell and the
// timeout tick. This thread owns every transport socket: listeners (several,
// registered here), accepted and outbound connections. The JS thread talks to
// it only through commands (a mutex-guarded queue and the loop's doorbell); it
// talks back only through events (a queue drained on the JS thread via one
// thread-safe function, see transport_js.cc). So the I/O thread never touches
// JS, and the JS thread never touches a socket. READ_CHUNK answered from the
// native store: native_reads.cc; the send side: send.cc.
#pragma once
#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "buffer_pool.h"
#include "net/event_loop.h"
#include "store/disk_reads.h"
#include "transport/connection.h"
#include "transport/stats.h"
#include "transport/chunk_serve.h"

namespace weightcache {

std::string Errno(const char* what, int err);  // "what: strerror(err)", for close reasons

struct Event {
  enum Kind { kAccepted, kConnected, kFrame, kClosed, kRelease } kind;
  uint64_t conn = 0;
  uint64_t listener = 0;
  FrameHeader header;
  uint32_t computed_crc = 0;
  std::vector<uint8_t> meta;
  uint8_t* payload = nullptr;  // from the pool; ownership passes to the event's consumer
  std::string text;            // peer address (accepted) or reason (closed)
  void* pin = nullptr;         // kRelease: a JS reference to drop on the JS thread
  // kFrame whose payload is native store memory (a pending allocation, transportReceiveInto):
  // held by the event, then by the JS Buffer over it; `payload` is then not the pool's.
  std::shared_ptr<store::Store> payload_store;  // declared before the reference: destroyed after it
  store::Ref payload_ref;
  // kFrame of a READ_CHUNK whose chunk file the I/O thread found damaged, gone or short: the
  // local NVMe copy is not to be sent as it is (JavaScript reads it through its read path).
  bool nvme_failed = false;

  static Event Make(Kind k, uint64_t conn, std::string text = {}) {
    Event e;
    e.kind = k;
    e.conn = conn;
    e.text = std::move(text);
    return e;
  }
};

struct Command {
  enum Kind { kListen, kConnect, kSend, kClose, kCloseListener, kServeNative, kReceiveInto, kStop } kind;
  uint64_t id = 0;
  int fd = -1;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  ConnLimits limits;
  uint32_t max_connections = 0;
  PreAuthLimits preauth;
  OutFrame frame;
  std::string reason;
  bool after_flush = false;
  // kSend on an accepted connection before authentication: after queueing the frame,
  // 1 = read the next handshake frame, 2 = authenticated (lift the pre-auth limits).
  uint8_t admit = 0;
  // kServeNative: what the listener `id` answers READ_CHUNK from on the I/O thread (null: nothing).
  std::shared_ptr<const transport::ChunkSource> chunks;
  // kReceiveInto: the store READ_CHUNK answers on outbound connections are read into (null: the pool).
  std::shared_ptr<store::Store> receive_store;
};

class IoLoop : private net::EventLoop::Handler {
 public:
  // `notify` runs on the I/O thread when the event queue goes from empty to
  // non-empty; it must only schedule a drain on the JS thread.
  explicit IoLoop(std::function<void()> notify);
  ~IoLoop();  // stops and joins the thread, closes every socket
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  uint64_t NextId() { return next_id_.fetch_add(1); }
  void Submit(Command&& c);
  std::vector<Event> TakeEvents();
  const std::shared_ptr<BufferPool>& pool() { return pool_; }
  TransportStats& stats() { return stats_; }
  // Called for pins still held when the loop is destroyed.
  void set_drop_pin(void (*drop)(void*)) { drop_pin_ = drop; }

 private:
  struct Listener {
    int fd = -1;
    ConnLimits limits;
    uint32_t max_connections = 0;
    PreAuthLimits preauth_limits;
    uint32_t connections = 0;
    // Connections not yet admitted, oldest first: with one timeout per listener
    // the front is also the first deadline, and the first to evict.
    std::list<uint64_t> preauth;
    std::unordered_map<std::string, uint32_t> preauth_by_addr;  // bounded by preauth's size
    // Set by transportServeNative: READ_CHUNK hits answered from the native store on this thread.
    std::shared_ptr<const transport::ChunkSource> chunks;
  };

  // net::EventLoop::Handler, on the I/O thread.
  void OnWake() override { DrainCommands(); }
  void OnAccept(int fd, const sockaddr_storage&) override;  // never: the loop has no listener of its own
  void OnReady(uint64_t id, uint32_t events) override;
  void OnTick(int64_t) override { ExpirePreauth(); }
  bool HasWork() const override;  // connections waiting to authenticate (their deadlines are swept on the tick)
  void AfterEvents() override;

  void DrainCommands();
  void Post(Event&& e);
  void OnAccept(uint64_t id, Listener& l);
  void OnConnectDone(Connection& c);
  void OnReadable(Connection& c);
  void OnFrame(Connection& c);
  // A READ_CHUNK request (the frame event `e`) on an admitted connection of a listener that serves
  // natively: answered here from the native store, or its NVMe reads started and `e` kept until
  // they complete (true); or left to JavaScript (false, `e` untouched).
  bool ServeNatively(Connection& c, Event& e);
  // The I/O thread's NVMe reader for `index` (created on first use; one per store the listeners
  // serve from, so one in a node), or null: none can be had.
  store::DiskReader* DiskFor(const std::shared_ptr<store::NvmeIndex>& index);
  // A READ_CHUNK answer's NVMe reads completed (store::DiskReader's callback, from its Poll).
  static void OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view);
  void DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view);
  // Queues the answer to request `h` with `reply`'s bytes, from `src`'s store.
  void SendChunk(Connection& c, const FrameHeader& h, transport::ChunkReply&& reply,
                 const std::shared_ptr<const transport::ChunkSource>& src);
  // admission.cc: the pre-auth bookkeeping (docs/wire-protocol.md, "Before authentication").
  void Admit(Connection& c, bool open);
  bool MakeRoom(Listener& l, const std::string& addr_key);
  void LeavePreauth(Connection& c);
  void ExpirePreauth();
  // Sends ERROR(requestId 0, code, message) as far as the socket takes it now, then
  // closes with the reason `why` + message.
  void Refuse(Connection& c, const char* code, const std::string& message, const char* why);
  // send.cc: the write side.
  void Enqueue(Connection& c, OutFrame&& f);
  void Flush(Connection& c);
  void FinishFrame(Connection& c, OutFrame& f);
  void ReleaseFrame(OutFrame& f);

  void UpdateInterest(Connection& c);
  void Close(Connection& c, const std::string& reason);
  Connection* Find(uint64_t id);

  // Frees a payload taken from a frame: a pending store allocation, or pool memory.
  void ReleaseEventPayload(Event& e);
  static uint8_t* AllocPayload(void* ctx, size_t len);
  static void ReleasePayload(void* ctx, uint8_t* p, size_t len);

  std::function<void()> notify_;
  net::EventLoop ev_{-1};  // epoll, doorbell and tick; the listeners are ours (listeners_)
  std::atomic<uint64_t> next_id_{net::EventLoop::kFirstId};
  std::mutex cmd_mu_;
  std::vector<Command> commands_;
  std::mutex ev_mu_;
  std::vector<Event> events_;
  std::unordered_map<uint64_t, Listener> listeners_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  // Shared: JS Buffers that wrap pooled memory may be finalized after the loop is gone.
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>(256u << 20);
  TransportStats stats_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed this iteration; freed after it
  void (*drop_pin_)(void*) = nullptr;
  // transportReceiveInto: READ_CHUNK answers (≥ kMinStoreReceive bytes) on outbound connections are
  // read into allocations of this store, held here until the frame is complete.
  std::shared_ptr<store::Store> receive_store_;
  std::unordered_map<const uint8_t*, store::Ref> receiving_;
  Connection* reading_ = nullptr;  // the connection OnReadable is reading (the allocator's context)
  // READ_CHUNK answers waiting on NVMe reads, by DiskReader token (net::TakeDiskWait).
  struct DiskWait {
    uint64_t conn = 0;
    Event request;  // the request frame: JavaScript's if the reads fail
    transport::ChunkReply reply;  // length and CRC32C known when the reads started
    std::shared_ptr<const transport::ChunkSource> src;
  };
  std::unordered_map<uint64_t, DiskWait> disk_waits_;
  uint64_t next_disk_ = 1;
  // Created on the I/O thread at the first READ_CHUNK of a listener serving from a store with this
  // NVMe index; its completions wake the loop as `id`. Destroyed last: read buffers of queued
  // answers give their bytes back to them. A reader that could not be created stays null (logged
  // once): that store's NVMe-only chunks are JavaScript's.
  struct Disk {
    const store::NvmeIndex* index = nullptr;
    std::unique_ptr<store::DiskReader> reader;
    uint64_t id = 0;
  };
  std::vector<Disk> disks_;  // one per store the listeners serve from (bounded by the listeners)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace weightcache
