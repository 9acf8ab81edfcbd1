// Misses on the fast path, parked on the I/O thread while JavaScript fills
// them (FastPath::fill_misses). A GET/HEAD of /v1/objects whose name has no
// valid binding, or whose range covers a chunk in no tier, keeps its place in
// the connection's answer order (a parked slot) and JavaScript gets a fill
// request instead of the request: the name, the pin, the binding's version
// and the chunk indexes. JavaScript runs its one read path (resolve the
// name, read those chunks: single-flight per chunk, into the native store)
// and says "done" (Answer::fill_done); the thread then plans the answer
// again from the binding as it is now (a revoke meanwhile is seen: no old
// bytes), and answers it natively, reads NVMe, asks for another fill (at most
// kMaxFillAttempts in all), or hands the request whole to JavaScript, which
// answers it exactly as it answers any miss. A failed fill is handed to
// JavaScript too, so error answers stay JavaScript's. Nothing here waits:
// a parked request holds no chunk reference, only its head's bytes; its
// connection going away forgets it; past the request timeout it is answered
// 504 ORIGIN_TIMEOUT. Limits: kMaxParkedFillsPerThread, kMaxParkedFills.
#include "http/fastpath.h"
#include "http/response.h"
#include "http/worker.h"

namespace weightcache::http {

bool HttpWorker::Park(HttpConnection& c, Slot& s, FastAnswer& a, uint64_t id) {
  FastPathStats& st = opt_.fast->stats;
  if (fills_.size() >= kMaxParkedFillsPerThread || st.fill_waiting.load() >= kMaxParkedFills) {
    st.fill_overflow++;
    return false;
  }
  st.fill_waiting++;
  st.fill_parked++;
  s.id = id;
  s.parked = true;
  FillWait& w = fills_[id];
  w.conn = c.id;
  w.head.assign(c.in.data(), c.parser.head_bytes());
  w.request = RequestEvent(c);  // before the head's bytes are consumed: it points into them
  w.attempts = 1;
  w.deadline_ms = (c.head_started_ms ? c.head_started_ms : loop_.now_ms()) + opt_.request_timeout_ms;
  w.asked_etag = a.fill.etag;
  PostFill(c, id, a.fill);
  return true;
}

void HttpWorker::PostFill(const HttpConnection& c, uint64_t id, const FillAsk& ask) {
  DoorEvent e;
  e.kind = DoorEvent::kFill;
  e.id = id;
  e.conn = net::WireId(index_, c.id);
  e.fill_name = ask.name;
  e.fill_pin = ask.pin;
  e.fill_etag = ask.etag;
  e.fill_first = ask.first;
  e.fill_last = ask.last;
  door_.Post(std::move(e));
}

bool HttpWorker::HasParked(const HttpConnection& c) {
  for (const Slot& s : c.out) {
    if (s.parked) return true;
  }
  return false;
}

void HttpWorker::ReleaseHeld(HttpConnection& c) {
  if (!c.held_for_fill || HasParked(c) || c.fd < 0) return;
  c.held_for_fill = false;
  c.parser.Reset();
  Process(c);
}

void HttpWorker::Unpark(uint64_t id) {
  if (fills_.erase(id) > 0) opt_.fast->stats.fill_waiting--;
}

void HttpWorker::CancelFill(uint64_t id) {
  auto w = fills_.find(id);
  if (w == fills_.end()) return;
  DoorEvent e;
  e.kind = DoorEvent::kFillCancel;
  e.id = id;
  e.conn = net::WireId(index_, w->second.conn);
  Unpark(id);
  door_.Post(std::move(e));
}

void HttpWorker::FallBack(HttpConnection& c, Slot& s, DoorEvent&& e, uint64_t id) {
  opt_.fast->stats.fill_fallback++;
  s.parked = false;
  s.fast_started_ns = 0;  // JavaScript's answer now: timed and logged there
  requests_[id] = c.id;
  c.posted_any = true;
  door_.stats().requests++;
  e.id = id;
  e.conn = net::WireId(index_, c.id);
  door_.Post(std::move(e));
}

void HttpWorker::FillDone(uint64_t id, bool ok, int source) {
  auto w = fills_.find(id);
  if (w == fills_.end()) return;  // its connection went away meanwhile
  FillWait wait = std::move(w->second);
  if (source >= 0) {
    wait.source = source;
    wait.source_etag = wait.asked_etag;
  }
  Unpark(id);
  auto it = conns_.find(wait.conn);
  if (it == conns_.end() || it->second->fd < 0) return;
  HttpConnection& c = *it->second;
  Slot* slot = nullptr;
  for (Slot& s : c.out) {
    if (s.id == id && s.parked) {
      slot = &s;
      break;
    }
  }
  if (!slot) return;
  FastPath& fp = *opt_.fast;
  RequestParser parser(opt_.limits);
  FastAnswer a;
  FastResult r = FastResult::kNo;
  if (ok && parser.Parse(wait.head.data(), wait.head.size()) == RequestParser::kDone) {
    // The binding as it is now: a revoke or invalidation since the fill is seen here.
    r = StartFastPath(fp, parser.head(), Date(), a, disk_.get(), id);
  }
  if (r == FastResult::kFill && wait.attempts < kMaxFillAttempts) {
    // The name is resolved now but its chunks are not resident (or were evicted again).
    wait.attempts++;
    fp.stats.fill_parked++;
    fp.stats.fill_waiting++;
    wait.asked_etag = a.fill.etag;
    PostFill(c, id, a.fill);
    fills_[id] = std::move(wait);
    return;
  }
  if (r == FastResult::kAnswer || r == FastResult::kPending) {
    fp.stats.fill_resumed++;
    slot->parked = false;
    // Where a fill of this request got the first chunk of the version answered; after a version
    // change between fills, one fill's source says nothing of another version's bytes.
    a.fill_source = a.etag == wait.source_etag ? wait.source : -1;
    if (r == FastResult::kAnswer) {
      NoteFillSource(fp, a);  // for kPending, once its NVMe pieces are read (DiskDone)
      QueueFast(c, *slot, a);
    } else {
      slot->disk = true;
      DiskWait& d = disk_waits_[id];
      d.conn = c.id;
      d.request = std::move(wait.request);
      d.answer = std::move(a);
    }
  } else {
    // The fill failed, or the plan is no longer the fast path's (a pin now naming another
    // version, the binding gone again, ...): JavaScript answers, as for any miss.
    FallBack(c, *slot, std::move(wait.request), id);
  }
  ReleaseHeld(c);  // a request held behind this one goes on, in order
  UpdatePause(c);
  Pump(c);
}

void HttpWorker::SweepFills(int64_t now) {
  std::vector<uint64_t> late;
  for (const auto& [id, w] : fills_) {
    if (now >= w.deadline_ms) late.push_back(id);
  }
  for (uint64_t id : late) {
    // An earlier one's 504 may have closed its connection, which unparks (erases) the others on it.
    auto w = fills_.find(id);
    if (w == fills_.end()) continue;
    uint64_t cid = w->second.conn;
    CancelFill(id);  // answered 504 now: what its fill has not started is not needed
    opt_.fast->stats.fill_timeouts++;
    auto it = conns_.find(cid);
    if (it == conns_.end() || it->second->fd < 0) continue;
    HttpConnection& c = *it->second;
    for (Slot& s : c.out) {
      if (s.id != id || !s.parked) continue;
      // The JSON error every door answers with; the connection closes after it (what follows
      // it on the connection cannot wait behind a fill that did not come).
      s.parked = false;
      s.status = 504;  // timed and logged as the thread's own answer (FastDone)
      s.head = Refusal(504, "ORIGIN_TIMEOUT",
                       "the object's bytes were not filled within the request timeout (" +
                           std::to_string(opt_.request_timeout_ms) + " ms)");
      s.started = s.complete = true;
      s.close_after = true;
      s.pending = s.head.size();
      c.out_bytes += s.pending;
      door_.stats().buffered_bytes += static_cast<int64_t>(s.pending);
      c.phase = HttpConnection::kDone;
      break;
    }
    UpdatePause(c);
    Pump(c);
  }
}

}  // namespace weightcache::http
