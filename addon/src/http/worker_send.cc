// The output side of an HTTP I/O thread: answers from JavaScript delivered to
// their slots, each connection's slots written in request order (writev from
// chunk memory and JavaScript's pinned pieces, NVMe blocks once read and
// verified), the budget counters released as bytes leave, reading paused
// while too much waits to be written. The input side (accept, read, parse,
// hand over) is worker.cc; parked fills worker_fill.cc; the fast path's
// planning worker_fast.cc.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http/fastpath.h"
#include "http/response.h"
#include "http/worker.h"

namespace weightcache::http {

namespace {

constexpr int kMaxIov = 64;

}  // namespace

void HttpWorker::Deliver(Answer& a) {
  if (a.evict_idle) {
    // Another thread is at the cap and admitted its newcomer already; if this thread's idle
    // connection got busy meanwhile, the next close frees the slot.
    EvictHere(a.evict_unauthenticated);
    return;
  }
  if (a.fill_done) {
    FillDone(a.id, a.fill_ok, a.fill_source);
    return;
  }
  if (a.close_conn != 0) {
    auto it = conns_.find(net::LocalOf(a.close_conn));
    if (it == conns_.end() || it->second->fd < 0) return;
    if (a.authenticate) {
      governor_.Authenticate(*it->second);
      // A stranger's next requests were not read (one at a time): they may be now.
      UpdatePause(*it->second);
      Pump(*it->second);
    } else {
      Close(*it->second, "closed by the server");
    }
    return;
  }
  auto rq = requests_.find(a.id);
  if (rq == requests_.end()) {
    ReleaseParts(a.body);  // the connection went away (an 'aborted' event told JavaScript)
    return;
  }
  uint64_t cid = rq->second;
  auto it = conns_.find(cid);
  if (it == conns_.end() || it->second->fd < 0) {
    requests_.erase(rq);
    ReleaseParts(a.body);
    return;
  }
  HttpConnection& c = *it->second;
  Slot* slot = nullptr;
  for (Slot& s : c.out) {
    if (s.id == a.id) {
      slot = &s;
      break;
    }
  }
  if (!slot || slot->complete) {
    requests_.erase(rq);
    ReleaseParts(a.body);
    return;
  }
  uint64_t body_len = 0;
  for (const BodyPart& p : a.body) body_len += p.len;
  bool close = a.close || slot->close_after;
  slot->close_after = close;
  uint64_t added = 0;
  if (a.stream) {
    // A piece of an answer JavaScript frames itself: appended as it is.
    for (BodyPart& p : a.body) slot->body.push_back(p);
    a.body.clear();
    added = body_len;
    slot->complete = a.end;
  } else {
    if (slot->started) {  // a whole answer after pieces: a caller's mistake; keep the stream intact
      ReleaseParts(a.body);
      return;
    }
    slot->head = SerializeHead(a.status, a.headers, a.head_only ? a.content_length : body_len, close);
    if (a.head_only) {
      ReleaseParts(a.body);
    } else {
      for (BodyPart& p : a.body) slot->body.push_back(p);
      a.body.clear();
    }
    added = slot->head.size() + (a.head_only ? 0 : body_len);
    slot->complete = true;
  }
  slot->started = true;
  slot->pending += added;
  if (slot->complete) requests_.erase(rq);
  c.out_bytes += added;
  door_.stats().buffered_bytes += static_cast<int64_t>(added);
  if (a.want_drain) c.want_drain = true;
  if (a.want_written) slot->report_written = true;
  if (close && slot->complete && c.phase != HttpConnection::kDone) c.phase = HttpConnection::kDone;  // read nothing more
  UpdatePause(c);
  Pump(c);
}

void HttpWorker::Pump(HttpConnection& c) {
  for (int round = 0; round < 64 && c.fd >= 0; round++) {
    Process(c);
    if (c.fd < 0) return;
    bool finished = Flush(c);
    if (c.fd < 0) return;
    bool was_paused = c.reading_paused;
    UpdatePause(c);
    // An answer written may have lifted a bound: requests already buffered can go on.
    if (!finished || c.reading_paused || c.phase == HttpConnection::kDone || !was_paused) break;
  }
  if (c.fd < 0) return;
  if (c.phase == HttpConnection::kDone && c.out.empty()) {
    Close(c, c.peer_closed ? "peer closed the connection" : "connection done");
    return;
  }
  if (c.want_drain && c.out_bytes <= opt_.max_buffered_bytes / 2) {
    // JavaScript stopped streaming at the bound: it may go on.
    c.want_drain = false;
    DoorEvent e;
    e.kind = DoorEvent::kDrain;
    e.conn = net::WireId(index_, c.id);
    e.written = c.unreported_written;
    c.unreported_written = 0;
    door_.Post(std::move(e));
  }
  UpdateInterest(c);
}

bool HttpWorker::Flush(HttpConnection& c) {
  bool finished = false;
  for (;;) {
    // An answer whose last bytes went out before its end arrived is finished now.
    while (!c.out.empty() && c.out.front().complete && c.out.front().pending == 0) {
      if (FinishFront(c)) return true;
      finished = true;
    }
    if (c.out.empty() || c.out.front().pending == 0) break;
    // Queued bytes in answer order: an answer's bytes go out only once every
    // answer before it is complete and written.
    iovec iov[kMaxIov];
    int cnt = 0;
    for (Slot& s : c.out) {
      if (cnt >= kMaxIov) break;
      if (s.head_off < s.head.size()) iov[cnt++] = {s.head.data() + s.head_off, s.head.size() - s.head_off};
      size_t skip = s.part_off;
      for (BodyPart& p : s.body) {
        if (cnt >= kMaxIov) break;
        iov[cnt++] = {const_cast<char*>(p.data) + skip, p.len - skip};
        skip = 0;
      }
      if (!s.complete || s.close_after) break;  // nothing after an unfinished or a closing answer
    }
    if (cnt == 0) break;
    ssize_t n = writev(c.fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c, std::string("write failed: ") + std::strerror(errno));
      return finished;
    }
    c.last_progress_ms = loop_.now_ms();
    door_.stats().bytes_written += static_cast<uint64_t>(n);
    door_.stats().buffered_bytes -= n;
    c.out_bytes -= static_cast<uint64_t>(n);
    c.unreported_written += static_cast<uint64_t>(n);
    uint64_t left = static_cast<uint64_t>(n);
    while (!c.out.empty()) {
      Slot& s = c.out.front();
      size_t h = std::min<uint64_t>(left, s.head.size() - s.head_off);
      s.head_off += h;
      left -= h;
      s.pending -= h;
      while (left > 0 && !s.body.empty()) {
        BodyPart& p = s.body.front();
        size_t take = std::min<uint64_t>(left, p.len - s.part_off);
        s.part_off += take;
        left -= take;
        s.pending -= take;
        if (s.part_off < p.len) break;
        // Written: its memory goes back to JavaScript now, not when the answer ends.
        std::vector<BodyPart> done{p};
        ReleaseParts(done);
        s.body.pop_front();
        s.part_off = 0;
      }
      if (s.pending > 0 || !s.complete) break;
      finished = true;
      if (FinishFront(c)) return true;
    }
  }
  return finished;
}

bool HttpWorker::FinishFront(HttpConnection& c) {
  Slot& s = c.out.front();
  bool close_after = s.close_after;
  if (s.report_written) {
    // JavaScript's answer is out: its send-budget reservation can end (native-server.ts).
    DoorEvent e;
    e.kind = DoorEvent::kDrain;
    e.conn = net::WireId(index_, c.id);
    e.id = s.id;
    e.answered = true;
    e.written = c.unreported_written;
    c.unreported_written = 0;
    door_.Post(std::move(e));
  }
  if (s.fast_started_ns != 0) {
    FastDone(c, s, false);
    door_.stats().fast_queued_bytes -= static_cast<int64_t>(s.fast_bytes);
  }
  if (s.counts) {
    c.in_flight--;
    door_.stats().responses++;
    door_.stats().in_flight--;
  }
  c.posted_body_bytes -= s.posted_body;
  door_.stats().posted_body_bytes -= static_cast<int64_t>(s.posted_body);
  c.out.pop_front();
  if (c.in_flight == 0) c.idle_since_ms = loop_.now_ms();
  if (close_after) {
    Close(c, "closed after the answer (Connection: close, or a refused request)");
    return true;
  }
  return false;
}

void HttpWorker::UpdatePause(HttpConnection& c) {
  // Bodies posted and unanswered are a window too; a stranger (auth on, no valid token yet) has
  // one request read and posted at a time, so it cannot make the door hold more for it.
  bool pause = c.in_flight >= opt_.max_in_flight || c.out_bytes >= opt_.max_buffered_bytes ||
               c.posted_body_bytes >= opt_.max_posted_body_bytes || (!c.authenticated && c.in_flight > 0);
  if (pause == c.reading_paused) return;
  c.reading_paused = pause;
  if (pause) door_.stats().paused_reads++;
  UpdateInterest(c);
}

void HttpWorker::UpdateInterest(HttpConnection& c) {
  if (c.fd < 0) return;
  bool want_read = !c.reading_paused && c.phase != HttpConnection::kDone;
  bool want_write = !c.out.empty() && c.out.front().pending > 0;
  // With neither, EPOLLHUP and EPOLLERR are still reported (a client that went away).
  uint32_t want = (want_read ? static_cast<uint32_t>(EPOLLIN) : 0u) | (want_write ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  if (want == c.interest) return;
  loop_.Modify(c.fd, c.id, want);
  c.interest = want;
}

void HttpWorker::ReleaseParts(std::vector<BodyPart>& parts) {
  for (BodyPart& p : parts) {
    if (!p.pin) continue;
    if (p.chunk) {
      // A chunk reference: dropped here, on this thread (the store frees on any thread).
      delete static_cast<store::Piece*>(p.pin);
      p.pin = nullptr;
      opt_.fast->stats.chunk_refs--;
      continue;
    }
    DoorEvent e;
    e.kind = DoorEvent::kRelease;
    e.pin = p.pin;
    p.pin = nullptr;
    door_.Post(std::move(e));
  }
  parts.clear();
}

}  // namespace weightcache::http
