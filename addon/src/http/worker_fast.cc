// The fast path's side of an HTTP I/O thread (worker.h): answering a parsed
// head from the native store (fastpath.h) into the connection's answer queue
// (at once, or once its NVMe reads completed: store/disk_reads.h),
// and what a fast-path answer leaves behind once written: its duration in the
// thread's histogram and its access-log record. The rest of the thread is
// worker.cc.
#include <time.h>

#include <cstdlib>

#include "http/fastpath.h"
#include "http/response.h"
#include "http/worker.h"
#include "net/disk_wait.h"

namespace weightcache::http {

const std::string& HttpWorker::Date() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != date_sec_) {
    date_sec_ = ts.tv_sec;
    date_ = HttpDate(ts.tv_sec);
  }
  return date_;
}

bool HttpWorker::TryFast(HttpConnection& c) {
  // Slow clients hold at most this much in fast-path answers, all threads (each thread may pass it by
  // the one answer it queues last): past it JavaScript answers, reserving in its send budget.
  if (opt_.max_fast_queued_bytes != 0 &&
      door_.stats().fast_queued_bytes.load() >= static_cast<int64_t>(opt_.max_fast_queued_bytes)) {
    door_.stats().fast_over_budget++;
    return false;
  }
  FastPath& fp = *opt_.fast;
  // A request earlier on this connection that JavaScript has not answered yet runs first: a
  // POST /v1/invalidate pipelined before this GET must have taken effect when the GET is
  // answered, as on the JavaScript door (which handles a connection's requests in order).
  for (const Slot& s : c.out) {
    if (s.id != 0 && !s.started && !s.disk && !s.parked) {
      fp.stats.busy++;
      return false;
    }
  }
  FastAnswer a;
  uint64_t id = (uint64_t{index_} << kWorkerShift) | next_request_;
  FastResult r = StartFastPath(fp, c.parser.head(), Date(), a, disk_.get(), id);
  if (r == FastResult::kNo) return false;
  // With auth on, the fast path answers only a request whose token may read the name: a valid token.
  if (opt_.auth_required) governor_.Authenticate(c);
  Slot s;
  s.close_after = a.close;
  s.fast_started_ns = net::NowNs();
  if (opt_.access_log) {  // the head's fields point into `in`: copied before it is compacted
    s.method = c.parser.head().method;
    s.target = c.parser.head().target;
  }
  if (r == FastResult::kFill) {
    // A miss: parked in its place in the answer order while JavaScript fills it (worker_fill.cc).
    if (!Park(c, s, a, id)) return false;
    next_request_++;
  } else if (r == FastResult::kPending) {
    // Its place in the answer order is taken now; the bytes come with the reads (DiskDone).
    next_request_++;
    s.id = id;
    s.disk = true;
    DiskWait& w = disk_waits_[id];
    w.conn = c.id;
    w.request = RequestEvent(c);  // before the head's bytes are consumed: it points into them
    w.answer = std::move(a);
  } else {
    QueueFast(c, s, a);
  }
  // Answered: the head's bytes are consumed (a fast-path request has no body) and the next request may follow.
  c.header_deadline_ms = 0;
  c.head_started_ms = 0;
  c.consumed = c.parser.head_bytes();
  Compact(c);
  c.parser.Reset();
  bool close = s.close_after;
  c.out.push_back(std::move(s));
  c.in_flight++;
  c.served_any = true;
  door_.stats().in_flight++;
  if (close) c.phase = HttpConnection::kDone;  // nothing after this request is read
  UpdatePause(c);
  return true;
}

void HttpWorker::QueueFast(HttpConnection& c, Slot& s, FastAnswer& a) {
  s.started = s.complete = true;
  // "HTTP/1.1 200 OK": the status is the head's characters 9..11 (the access log's and durations').
  s.status = a.head.size() > 12 ? std::atoi(a.head.substr(9, 3).c_str()) : 0;
  s.body_bytes = a.body_bytes;
  s.source = a.source_name                                                 ? a.source_name
             : !a.head_only && !a.pieces.empty() && a.pieces[0].from_disk ? "nvme"
                                                                          : "dram";
  s.head = std::move(a.head);
  for (store::Piece& piece : a.pieces) {
    BodyPart p;
    p.data = reinterpret_cast<const char*>(piece.data);
    p.len = piece.len;
    p.chunk = true;
    p.pin = new store::Piece(std::move(piece));
    opt_.fast->stats.chunk_refs++;
    s.body.push_back(p);
  }
  a.pieces.clear();
  s.pending = s.head.size() + a.body_bytes;
  s.fast_bytes = s.pending;
  door_.stats().fast_queued_bytes += static_cast<int64_t>(s.fast_bytes);
  c.out_bytes += s.pending;
  door_.stats().buffered_bytes += static_cast<int64_t>(s.pending);
}

void HttpWorker::OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  static_cast<HttpWorker*>(self)->DiskDone(token, status, std::move(view));
}

void HttpWorker::DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  DiskWait wait;
  HttpConnection* live = net::TakeDiskWait(disk_waits_, conns_, token, wait);
  if (!live) return;  // the view's pieces are dropped with it
  HttpConnection& c = *live;
  Slot* slot = nullptr;
  for (Slot& s : c.out) {
    if (s.id == token && s.disk) {
      slot = &s;
      break;
    }
  }
  if (!slot) return;
  slot->disk = false;
  if (status == store::RangeStatus::kReady) {
    wait.answer.pieces = std::move(view.pieces);
    NoteFastHit(*opt_.fast, wait.answer);
    NoteFillSource(*opt_.fast, wait.answer);
    QueueFast(c, *slot, wait.answer);
  } else {
    // A block failed its CRC32C, or the file was gone or short: no byte of it was sent, and
    // JavaScript answers the request as if the fast path had never looked (it drops and refetches).
    opt_.fast->stats.misses++;
    slot->fast_started_ns = 0;  // JavaScript's answer now: timed and logged there
    requests_[token] = c.id;
    c.posted_any = true;
    door_.stats().requests++;
    DoorEvent e = std::move(wait.request);
    e.id = token;
    e.conn = (uint64_t{index_} << kWorkerShift) | c.id;
    door_.Post(std::move(e));
  }
  UpdatePause(c);
  Pump(c);
}

void HttpWorker::FastDone(const HttpConnection& c, const Slot& s, bool aborted) {
  int64_t ns = net::NowNs() - s.fast_started_ns;
  durations_.Observe(ns);
  if (!opt_.access_log) return;
  AccessRecord r;
  r.method = s.method;
  r.target = s.target;
  r.peer = c.peer;
  r.status = s.status;
  r.bytes = s.body_bytes;
  r.source = s.source;
  r.duration_ms = static_cast<double>(ns) / 1e6;
  r.aborted = aborted;
  access_.push_back(std::move(r));
}

}  // namespace weightcache::http
