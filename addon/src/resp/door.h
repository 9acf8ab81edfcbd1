// The native RESP door's I/O side (docs/resp.md, "The native door"): N worker
// threads (net/door.h: each with its own event loop and SO_REUSEPORT
// listening socket), each owning its connections end to end: it reads, parses
// (parser.h) and bounds them, and posts every whole command to JavaScript,
// which runs it with the same command handlers as the JavaScript door
// (src/resp/commands/*) and hands the reply bytes back to be written in
// pipeline order. Nothing here blocks on JavaScript.
//
// What JavaScript keeps: admission (maxClients, strangers, per-address
// limits, the pre-auth timeout), reply memory across connections, the idle
// timeout and every command. What the thread bounds: descriptors
// (max_connections), commands read ahead of JavaScript (max_pipelined,
// pipeline_window_bytes; one at a time before AUTH, whose limits apply to the
// next command only once JavaScript says AUTH succeeded), one command's bytes
// (the parser's limits) and reply bytes queued per connection (JavaScript
// waits for 'written' past its high-water mark).
//
// The fast path (fastpath.h: GET, GETRANGE, STRLEN, EXISTS from the native
// store without JavaScript) sits at one seam: RespWorker::TryServeNatively,
// called for every command before it is posted.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/access.h"
#include "net/door.h"
#include "resp/fastpath.h"
#include "resp/parser.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache::resp {

struct DoorOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint32_t threads = 1;
  ParserLimits limits;
  bool auth = false;                         // strangers until JavaScript says AUTH succeeded
  uint32_t max_connections = 11'024;         // descriptors, all threads (JavaScript admits within them)
  uint32_t max_pipelined = 1024;             // per connection: commands posted and not yet finished
  uint64_t pipeline_window_bytes = 1u << 20; // per connection: their argument bytes (16 KiB before AUTH)
  uint32_t close_grace_ms = 2000;            // after the last reply of a closing connection: input read and dropped
  // GET/GETRANGE/STRLEN/EXISTS answered on the I/O threads (fastpath.h); null: every command goes to JavaScript.
  std::shared_ptr<RespFastPath> fast;
  // The request-duration histogram's upper bounds (seconds; JavaScript's, so fast-path replies land
  // in the same buckets as the commands it times), and whether fast-path replies go to the access log.
  std::vector<double> duration_bounds;
  bool access_log = false;
};

// With the fast path on: reply bytes queued on one connection past which its
// commands wait in the kernel (JavaScript's own high-water mark, native-port.ts
// HIGH_WATER_BYTES), so a client that pipelines GETs and reads nothing holds
// at most this much (plus one reply) on the thread.
constexpr uint64_t kMaxQueuedReplyBytes = 256 * 1024;

struct DoorStats : net::DoorCounters {
  std::atomic<uint64_t> commands{0};              // posted to JavaScript (in_flight: posted and not yet finished)
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<int64_t> access_pending{0};   // access records posted and not yet taken by JavaScript
  std::atomic<uint64_t> access_dropped{0};  // access records dropped at net::kMaxPendingAccessRecords
};

// What a worker tells JavaScript.
struct DoorEvent {
  enum Kind { kOpen, kCommand, kProtocolError, kWritten, kClosed, kRelease, kAccess } kind = kCommand;
  uint64_t conn = 0;
  std::string peer;                 // kOpen: "address:port"
  std::vector<std::string> args;    // kCommand
  ProtocolError error;              // kProtocolError
  uint64_t written = 0;             // kWritten, kCommand: reply bytes written since the last report
  uint64_t served = 0;              // kWritten, kCommand: commands answered on the thread since the last report
  std::string reason;               // kClosed
  void* pin = nullptr;              // kRelease: a JavaScript reference to drop on the JavaScript thread
  std::vector<net::AccessRecord> access;  // kAccess: access records of fast-path replies (conn unused)
};

// Reply bytes: a copy (small replies), JavaScript memory pinned until
// written, or (a fast-path reply) chunk memory of the native store, referenced
// until written. Bytes of native pieces are not JavaScript's: they are not in
// what the thread reports written.
struct Piece {
  std::string own;
  const char* data = nullptr;  // own.data(), pinned memory or chunk memory
  size_t len = 0;
  void* pin = nullptr;
  store::Piece ref;     // a chunk slice (DRAM reference or NVMe read buffer) of a fast-path reply
  bool native = false;  // a fast-path reply's bytes
  bool ends_fast = false;  // the last piece of a fast-path reply: written, the reply is timed (and logged)
};

// What JavaScript tells a connection's worker.
struct Send {
  uint64_t conn = 0;
  std::vector<Piece> pieces;  // appended to the connection's replies, in order
  uint32_t done = 0;          // commands finished since the last Send (the thread may read on)
  bool authenticated = false; // AUTH succeeded: the parser's pre-auth limits are lifted
  bool end = false;           // close once written (input is then read and dropped for close_grace_ms)
  bool want_written = false;  // report written bytes at once until the queue is empty (a writer waits)
  bool destroy = false;       // close now, dropping what is queued
  // AUTH succeeded (or the token changed): what the connection may read from now on, for the fast path.
  bool set_grant = false;
  std::shared_ptr<const RespGrant> grant;
};

class RespWorker;

class RespDoor : public net::DoorBase<DoorOptions, DoorEvent, RespWorker, DoorStats> {
 public:
  RespDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*));
  ~RespDoor();  // stops and joins every worker, closes every socket
  uint16_t Start(int& err, std::string& what);  // see net::DoorBase

  // Any thread; a send whose connection is gone is ignored. A batch takes each worker's lock and
  // rings its doorbell once.
  void Deliver(std::vector<Send>&& batch);
  // JavaScript took `n` records.
  void AccessTaken(size_t n) { stats().access_pending -= static_cast<int64_t>(n); }
  // Every thread's fast-path reply durations: counts per bucket (bounds + 1, the last +Inf), sum, count.
  void FastDurations(std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count);
};

using net::kMaxThreads;
using net::kWorkerShift;

}  // namespace weightcache::resp
