// The fast path's side of an HTTP I/O thread (worker.h): answering a parsed
// head from the native store (fastpath.h) into the connection's answer queue,
// and what a fast-path answer leaves behind once written: its duration in the
// thread's histogram and its access-log record. The rest of the thread is
// worker.cc.
#include <time.h>

#include <cstdlib>

#include "http/fastpath.h"
#include "http/response.h"
#include "http/worker.h"

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
  FastAnswer a;
  if (!TryFastPath(fp, c.parser.head(), Date(), a)) return false;
  Slot s;
  s.fast_started_ns = net::NowNs();
  if (opt_.access_log) {  // the head's fields point into `in`: copied before it is compacted
    s.method = c.parser.head().method;
    s.target = c.parser.head().target;
  }
  // With auth on, the fast path answers only a request whose token may read the name: a valid token.
  if (opt_.auth_required) governor_.Authenticate(c);
  // Answered: the head's bytes are consumed (a fast-path request has no body) and the next request may follow.
  c.header_deadline_ms = 0;
  c.head_started_ms = 0;
  c.consumed = c.parser.head_bytes();
  Compact(c);
  c.parser.Reset();
  s.started = s.complete = true;
  s.close_after = a.close;
  // "HTTP/1.1 200 OK": the status is the head's characters 9..11.
  s.status = a.head.size() > 12 ? std::atoi(a.head.substr(9, 3).c_str()) : 0;
  s.body_bytes = a.body_bytes;
  s.head = std::move(a.head);
  for (size_t i = 0; i < a.parts.size(); i++) {
    BodyPart p;
    p.data = reinterpret_cast<const char*>(a.parts[i].first);
    p.len = a.parts[i].second;
    p.chunk = true;
    p.pin = new store::Ref(std::move(a.refs[i]));
    fp.stats.chunk_refs++;
    s.body.push_back(p);
  }
  s.pending = s.head.size() + a.body_bytes;
  s.fast_bytes = s.pending;
  door_.stats().fast_queued_bytes += static_cast<int64_t>(s.fast_bytes);
  c.out_bytes += s.pending;
  door_.stats().buffered_bytes += static_cast<int64_t>(s.pending);
  c.out.push_back(std::move(s));
  c.in_flight++;
  c.served_any = true;
  door_.stats().in_flight++;
  if (a.close) c.phase = HttpConnection::kDone;  // nothing after this request is read
  UpdatePause(c);
  return true;
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
  r.duration_ms = static_cast<double>(ns) / 1e6;
  r.aborted = aborted;
  access_.push_back(std::move(r));
}

}  // namespace weightcache::http
