// The native HTTP door's I/O side: N worker threads (net/door.h: each with its
// own event loop and SO_REUSEPORT listening socket on the same address), each
// owning its connections end to end (keep-alive, pipelining, limits, timeouts).
// Every parsed request is posted to JavaScript as an event with an id;
// JavaScript answers by id (Respond), and the connection's worker writes the
// answers in request order. Nothing here blocks on JavaScript: a worker only
// ever waits in epoll_wait.
//
// The fast path (fastpath.h) sits between "request head parsed" and "post to
// JavaScript": a hit it can answer never reaches JavaScript.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "http/governor.h"
#include "http/parser.h"
#include "net/access.h"
#include "net/door.h"

namespace weightcache::http {

struct FastPath;

struct DoorOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint32_t threads = 1;
  ParserLimits limits;
  uint32_t max_connections = 4096;               // open connections, all threads together
  uint32_t max_per_address = 0;                  // open connections from one client address (IPv6: its /64); 0: no limit
  // Auth is on: connections start unauthenticated, and those hold at most
  // max_connections - reserved slots until one carries a valid token.
  bool auth_required = false;
  uint32_t reserved = 0;
  uint32_t max_in_flight = 16;                   // per connection: requests read and not yet answered
  uint64_t max_buffered_bytes = 8u << 20;        // per connection: answer bytes queued and not yet written
  // Per connection: request body bytes posted to JavaScript whose answers are not yet written.
  // At or past it the connection is not read (one body may pass it: it is read whole, at most
  // limits.max_body_bytes). With auth_required, an unauthenticated connection has at most one
  // request posted at a time, whatever this says (RESP's rule for strangers).
  uint64_t max_posted_body_bytes = 2u << 20;
  uint32_t first_request_timeout_ms = 10'000;    // accept → the first request's complete head
  uint32_t header_timeout_ms = 30'000;           // a later request's first byte → its complete head
  uint32_t idle_timeout_ms = 65'000;             // no progress while idle, or while an answer waits for the reader
  uint32_t request_timeout_ms = 60'000;          // a head's first byte → its whole body (node's requestTimeout)
  // Bytes of fast-path answers queued and not yet written, all connections together (http.maxInFlightBytes):
  // at or past it, hits go to JavaScript, whose answers wait in its send budget. 0: no bound.
  uint64_t max_fast_queued_bytes = 0;
  // Hits answered on the I/O threads (fastpath.h); null: every request goes to JavaScript.
  std::shared_ptr<FastPath> fast;
  // The request-duration histogram's upper bounds (seconds; JavaScript's, so fast-path answers land
  // in the same buckets), and whether fast-path answers go to the access log.
  std::vector<double> duration_bounds;
  bool access_log = false;
};

// A fast-path answer for the access log, and the bound on those waiting for JavaScript (net/access.h).
using net::AccessRecord;
using net::kMaxPendingAccessRecords;

struct DoorStats : net::DoorCounters {
  // connections_rejected (DoorCounters): over max_connections, every one busy (no idle one to take the place of)
  std::atomic<uint64_t> rejected_per_address{0};  // over max_per_address
  std::atomic<uint64_t> rejected_reserve{0};      // unauthenticated, at max_connections - reserved
  std::atomic<uint64_t> idle_evicted{0};          // closed to make room for a newcomer at a cap
  std::atomic<uint64_t> pipeline_cuts{0};         // sent more than max_in_flight requests in one go
  std::atomic<uint64_t> first_request_timeouts{0};  // no first head in time, or an unauthenticated connection idle too long
  std::atomic<int64_t> unauthenticated{0};        // open connections that have not presented a valid token (auth on)
  std::atomic<uint64_t> requests{0};              // posted to JavaScript
  std::atomic<uint64_t> responses{0};             // answers written completely
  std::atomic<uint64_t> parse_errors{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> request_timeouts{0};      // a body not all arrived within request_timeout_ms
  std::atomic<int64_t> fast_queued_bytes{0};      // fast-path answer bytes queued until each answer is written
  std::atomic<int64_t> posted_body_bytes{0};      // request body bytes posted to JavaScript, their answers not yet written
  std::atomic<uint64_t> fast_over_budget{0};      // requests sent to JavaScript at max_fast_queued_bytes
  std::atomic<int64_t> access_pending{0};         // access records posted and not yet taken by JavaScript
  std::atomic<uint64_t> access_dropped{0};        // access records dropped at kMaxPendingAccessRecords
};

// What a worker tells JavaScript.
struct DoorEvent {
  // kClosed: a connection that posted requests is gone (after any kAborted for it).
  // kAccess: access records of fast-path answers (`access`).
  // kFill: a fast-path miss is parked: make `fill` resident, then answer with Answer::fill_done.
  // kFillCancel: parked request `id` is no longer waiting (its client went away, or it was answered
  //   504 past the request timeout): chunks of its fill not yet started need not be fetched.
  enum Kind { kRequest, kAborted, kRelease, kDrain, kClosed, kAccess, kFill, kFillCancel } kind = kRequest;
  uint64_t id = 0;    // the request (kRequest, kAborted)
  uint64_t conn = 0;
  std::string method, target, path, query, authority, peer;
  bool has_query = false;
  uint8_t version_minor = 1;
  bool keep_alive = true;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string reason;  // kAborted: why the connection went away
  void* pin = nullptr;  // kRelease: a JavaScript reference to drop on the JavaScript thread
  uint64_t written = 0; // kDrain: bytes written on `conn` since the last drain event
  bool answered = false; // kDrain: answer `id` (asked with Answer::want_written) is written completely
  std::vector<AccessRecord> access;  // kAccess
  // kFill: the name, pin, version and chunk indexes to make resident (fastpath.h, FillAsk).
  std::string fill_name, fill_pin, fill_etag;
  int64_t fill_first = -1, fill_last = -1;
};

// A body part of an answer: bytes owned by JavaScript, pinned until written;
// or (chunk) bytes of a DRAM chunk, `pin` then a store::Ref* held until written.
struct BodyPart {
  const char* data = nullptr;
  size_t len = 0;
  void* pin = nullptr;
  bool chunk = false;
};

struct Answer {
  uint64_t id = 0;
  // A streamed answer: `body` is bytes JavaScript framed itself (status line
  // and headers included), appended to what earlier pieces queued; `end` says
  // it is the last piece. `status`, `headers` and `head_only` are unused.
  bool stream = false;
  bool end = true;
  // Post a kDrain event once the connection's queue is down to half its bound;
  // (want_written) one naming this answer once its last byte is written.
  bool want_drain = false;
  bool want_written = false;
  // Not an answer: close connection `close_conn` (JavaScript gave up on it),
  // or with `authenticate`, mark it as having presented a valid token.
  uint64_t close_conn = 0;
  bool authenticate = false;
  // Not an answer either: another thread is at http.maxConnections and this thread holds the
  // connection idle longest (of the unauthenticated ones, with `evict_unauthenticated`): close it.
  bool evict_idle = false;
  bool evict_unauthenticated = false;
  // Not an answer: the fill of parked request `id` (DoorEvent::kFill) is done; `fill_ok` false:
  // it failed, and JavaScript answers the request whole.
  bool fill_done = false;
  bool fill_ok = false;
  int fill_source = -1;  // FillSource: where the fill found the range's first chunk (-1: resident already, or resolve only)
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // validated by the caller
  std::vector<BodyPart> body;
  bool head_only = false;  // HEAD: Content-Length says the size, no body is sent
  uint64_t content_length = 0;  // used when head_only
  bool close = false;
};

class HttpWorker;

class HttpDoor : public net::DoorBase<DoorOptions, DoorEvent, HttpWorker, DoorStats> {
 public:
  HttpDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*));
  ~HttpDoor();  // stops and joins every worker, closes every socket
  uint16_t Start(int& err, std::string& what);  // see net::DoorBase

  // Answers request `a.id`, or a piece of it (from any thread; ignored if the
  // id names no live request), or closes `a.close_conn`.
  void Respond(Answer&& a);
  // The connection rules every worker applies (governor.h).
  ConnectionGovernor& governor() { return governor_; }

  // A worker's access records: posted in one event, up to kMaxPendingAccessRecords waiting in all
  // (the rest dropped and counted). `batch` is left empty.
  void PostAccess(std::vector<AccessRecord>& batch);
  // JavaScript took `n` records.
  void AccessTaken(size_t n) { stats().access_pending -= static_cast<int64_t>(n); }
  // Another thread than `from` holds a connection of the class (unauthenticated or not) idle since
  // before `since_ms` (as its worker last published): asks the one idle longest to close it and
  // returns true. The accepting thread admits its newcomer meanwhile (governor.h, ForceOpen).
  bool EvictElsewhere(uint32_t from, bool unauthenticated, int64_t since_ms);
  // Every thread's fast-path answer durations: counts per bucket (bounds + 1, the last +Inf), sum, count.
  void FastDurations(std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count);

 private:
  ConnectionGovernor governor_;
};

using net::kMaxThreads;
using net::kWorkerShift;

}  // namespace weightcache::http
