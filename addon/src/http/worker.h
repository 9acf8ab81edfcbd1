// One I/O thread of the native HTTP door: the handler of an event loop
// (net/event_loop.h, shared with the RESP door) over its own SO_REUSEPORT
// listening socket and the connections it accepted. It reads,
// parses (parser.h, body.h), posts complete requests to JavaScript through the
// door, and writes answers in request order. It bounds every connection: the
// requests in flight, the answer bytes queued for a slow reader (past either,
// it stops reading that socket), the time to send a request head, and idle
// time; the connection rules (limits per address and in all, the reserve,
// idle eviction, the pipelining cut) are the governor's (governor.h). Answers
// arrive from the JavaScript thread through the inbox of net::WorkerThread
// and the loop's doorbell; the thread itself never waits on anything but
// epoll_wait. The input side (accept, read, parse, hand over, close) is
// worker.cc; the output side (answers delivered to their slots and written in
// order) worker_send.cc; the fast path's part (answering a head from the
// native store, timing and logging those answers) worker_fast.cc; parked
// misses worker_fill.cc.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/connection.h"
#include "http/door.h"
#include "http/fastpath.h"
#include "net/door.h"
#include "net/event_loop.h"
#include "net/histogram.h"
#include "store/disk_reads.h"

namespace weightcache::http {

// Start() and Submit(Answer&&) (from the JavaScript thread) come from net::WorkerThread.
class HttpWorker final : public net::WorkerThread<Answer> {
 public:
  using Door = HttpDoor;
  HttpWorker(HttpDoor& door, uint32_t index, int listen_fd);
  ~HttpWorker() override;  // stops and joins the thread, closes every socket, drops every pin

  // net::EventLoop::Handler
  void OnWake() override { DrainAnswers(); }
  void OnAccept(int fd, const sockaddr_storage& peer) override;
  void OnReady(uint64_t id, uint32_t events) override;
  void OnTick(int64_t now_ms) override;
  bool HasWork() const override { return !conns_.empty(); }
  void AfterEvents() override;

  // Since when this thread's (un)authenticated connection idle longest has been idle, as of its
  // last tick (INT64_MAX: none); any thread reads it (HttpDoor::EvictElsewhere).
  int64_t IdleSince(bool unauthenticated) const {
    return (unauthenticated ? idle_unauth_since_ : idle_auth_since_).load(std::memory_order_relaxed);
  }

  // This thread's fast-path answer durations (any thread reads them).
  const net::LatencyHistogram& durations() const { return durations_; }

 private:
  void DrainAnswers();
  void OnReadable(HttpConnection& c);
  // Parses what is buffered, as far as the bounds allow; then writes what is ready.
  void Pump(HttpConnection& c);
  void Process(HttpConnection& c);
  bool ProcessHead(HttpConnection& c);
  bool ProcessBody(HttpConnection& c);
  void PostRequest(HttpConnection& c);
  void Refuse(HttpConnection& c, std::string bytes);
  void Deliver(Answer& a);
  bool Flush(HttpConnection& c);  // true if an answer was completed
  bool FinishFront(HttpConnection& c);  // pops the written front answer; true if that closed the connection
  void UpdatePause(HttpConnection& c);
  void UpdateInterest(HttpConnection& c);
  void Close(HttpConnection& c, const std::string& reason);
  void Sweep(int64_t now);
  void ReleaseParts(std::vector<BodyPart>& parts);
  // Answers the parsed head on the fast path (fastpath.h); false: JavaScript answers it.
  bool TryFast(HttpConnection& c);
  // The parsed head as the request JavaScript gets.
  DoorEvent RequestEvent(const HttpConnection& c) const;
  // Queues a fast-path answer's head and pieces into `s`.
  void QueueFast(HttpConnection& c, Slot& s, FastAnswer& a);
  // A fast-path answer's NVMe reads completed (store/disk_reads.h): its bytes, or JavaScript answers.
  static void OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view);
  void DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view);
  // Refuses a connection at accept with 503 OVERLOADED (best effort: one write) and closes it.
  void RefuseAtAccept(int fd, const std::string& message);
  // Makes room at a cap (governor.h): closes the connection idle longest here, or asks the
  // thread that holds an older one to close it.
  ConnectionGovernor::Eviction EvictIdle(bool unauthenticated_only);
  // Closes this thread's (un)authenticated connection idle longest; false if none is idle.
  bool EvictHere(bool unauthenticated);
  void PublishIdle();
  const std::string& Date();
  // A fast-path answer written (or abandoned, `aborted`): timed, and logged with the access log on.
  void FastDone(const HttpConnection& c, const Slot& s, bool aborted);
  void FlushAccess() { door_.PostAccess(access_); }
  void Compact(HttpConnection& c);

  HttpDoor& door_;
  const DoorOptions& opt_;
  uint32_t index_;
  ConnectionGovernor& governor_;
  std::unordered_map<uint64_t, std::unique_ptr<HttpConnection>> conns_;
  std::unordered_map<uint64_t, uint64_t> requests_;  // request id -> connection id (posted, not answered)
  std::vector<std::unique_ptr<HttpConnection>> graveyard_;  // closed this iteration; freed after it
  uint64_t next_conn_ = net::EventLoop::kFirstId;
  uint64_t next_request_ = 1;
  std::atomic<int64_t> idle_unauth_since_{INT64_MAX};
  std::atomic<int64_t> idle_auth_since_{INT64_MAX};
  net::LatencyHistogram durations_;
  std::vector<AccessRecord> access_;  // posted once per wakeup
  std::string date_;      // node's Date header value, made once per second
  int64_t date_sec_ = -1;
  // The fast path's NVMe reads (null without the fast path) and the answers waiting on them.
  struct DiskWait {
    uint64_t conn = 0;
    FastAnswer answer;  // head and sizes; the pieces arrive with the reads
    DoorEvent request;  // what JavaScript gets if a read fails
  };
  static constexpr uint64_t kDiskId = ~uint64_t{0};  // the disk reader's event fd in the loop
  std::unique_ptr<store::DiskReader> disk_;
  std::unordered_map<uint64_t, DiskWait> disk_waits_;

  // Misses parked while JavaScript fills them (worker_fill.cc), by request id.
  struct FillWait {
    uint64_t conn = 0;
    std::string head;    // the request head's bytes: parsed again when the fill is done
    DoorEvent request;   // what JavaScript gets if the fill fails
    uint32_t attempts = 0;
    int64_t deadline_ms = 0;  // then answered 504 (the request timeout)
    int source = -1;          // FillSource of the fill that fetched the first chunk (kept over later fills)
    std::string source_etag;  // ... of this version: an answer of another version does not report it
    std::string asked_etag;   // the version the fill in progress makes resident (empty: resolve only)
  };
  std::unordered_map<uint64_t, FillWait> fills_;
  // Parks `c`'s parsed head (a kFill result `a`) in slot `s`; false: at a parked limit.
  bool Park(HttpConnection& c, Slot& s, FastAnswer& a, uint64_t id);
  void PostFill(const HttpConnection& c, uint64_t id, const FillAsk& ask);
  // JavaScript's fill of `id` is done: plan again (answer, read NVMe, fill again) or hand to JavaScript.
  // `source`: where the fill found the range's first chunk (FillSource), -1 if it did not fetch it.
  void FillDone(uint64_t id, bool ok, int source);
  static bool HasParked(const HttpConnection& c);
  // No slot of `c` is parked any more: the head held behind it (held_for_fill) is parsed again.
  void ReleaseHeld(HttpConnection& c);
  // Posts parked request `id` whole to JavaScript, which answers it into its slot.
  void FallBack(HttpConnection& c, Slot& s, DoorEvent&& e, uint64_t id);
  void Unpark(uint64_t id);  // forgets a parked request (its connection closed)
  void CancelFill(uint64_t id);  // forgets a parked request no longer waiting and tells JavaScript (kFillCancel)
  void SweepFills(int64_t now);
};

}  // namespace weightcache::http
