#include "http/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "http/doors/sigv4.h"
#include "http/fastpath.h"
#include "http/response.h"

namespace weightcache::http {

namespace {

constexpr size_t kInitialBuffer = 4096;
constexpr size_t kBodyReadBuffer = 64 * 1024;
constexpr int kReadsPerWakeup = 16;  // then other connections get their turn

}  // namespace

HttpWorker::HttpWorker(HttpDoor& door, uint32_t index, int listen_fd)
    : WorkerThread(listen_fd), door_(door), opt_(door.options()), index_(index), governor_(door.governor()) {
  durations_.SetBounds(opt_.duration_bounds);
  if (opt_.fast && opt_.fast->store->nvme()) {
    std::string why;
    disk_ = store::DiskReader::Create(opt_.fast->store->nvme(), OnDisk, this, &why);
    if (!disk_) fprintf(stderr, "weightcache http: no NVMe reads on the fast path: %s\n", why.c_str());
    // Before the thread starts: its completions wake this loop like a socket (OnReady, kDiskId).
    if (disk_) loop_.Add(disk_->event_fd(), kDiskId, EPOLLIN);
  }
}

HttpWorker::~HttpWorker() {
  Join();
  // The thread is gone: what is left is ours (we are on the JavaScript thread).
  for (auto& [id, c] : conns_) {
    if (c->fd >= 0) {
      close(c->fd);
      door_.CloseConnection();
    }
    for (Slot& s : c->out) {
      std::vector<BodyPart> parts(s.body.begin(), s.body.end());
      for (BodyPart& p : parts) {
        if (!p.chunk) door_.DropPin(p.pin), p.pin = nullptr;
      }
      ReleaseParts(parts);  // chunk references only, now
      door_.stats().buffered_bytes -= static_cast<int64_t>(s.pending);
      door_.stats().fast_queued_bytes -= static_cast<int64_t>(s.fast_bytes);
      door_.stats().posted_body_bytes -= static_cast<int64_t>(s.posted_body);
      if (s.counts) door_.stats().in_flight--;
    }
  }
  conns_.clear();
  graveyard_.clear();
  for (Answer& a : TakeInbox()) {
    for (BodyPart& p : a.body) door_.DropPin(p.pin);
  }
  // Last: the pieces released above gave their read buffers back to it. Reads in flight
  // complete (the kernel may be writing into their buffers); their ranges are dropped.
  disk_waits_.clear();
  disk_.reset();
  if (opt_.fast) opt_.fast->stats.fill_waiting -= static_cast<int64_t>(fills_.size());
  fills_.clear();
}

void HttpWorker::OnReady(uint64_t id, uint32_t e) {
  if (id == kDiskId) {
    disk_->Poll();
    return;
  }
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second->fd < 0) return;
  HttpConnection& c = *it->second;
  if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (c.reading_paused && (e & (EPOLLHUP | EPOLLERR))) {
      Close(c, "connection reset by peer");
      return;
    }
    if (!c.reading_paused) OnReadable(c);
  }
  if (c.fd >= 0 && (e & EPOLLOUT)) Pump(c);
}

void HttpWorker::OnTick(int64_t now_ms) {
  Sweep(now_ms);
  if (!fills_.empty()) SweepFills(now_ms);
  doors::ForgetStaleSigningKeys();
  PublishIdle();
  graveyard_.clear();
  FlushAccess();
}

void HttpWorker::AfterEvents() {
  if (disk_) disk_->Flush();  // the reads this wakeup's requests started
  graveyard_.clear();
  FlushAccess();
}

void HttpWorker::DrainAnswers() {
  for (Answer& a : TakeInbox()) Deliver(a);
}

void HttpWorker::OnAccept(int fd, const sockaddr_storage& addr) {
  std::string address = AddressKey(addr);
  std::string refusal = governor_.Admit(address, [this](bool unauthenticated_only) { return EvictIdle(unauthenticated_only); });
  if (!refusal.empty()) {
    RefuseAtAccept(fd, refusal);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint64_t cid = next_conn_++;
  auto conn = std::make_unique<HttpConnection>(cid, fd, net::PeerName(addr), opt_.limits);
  conn->address = std::move(address);
  conn->authenticated = !opt_.auth_required;  // the governor counted it as unauthenticated
  conn->in.resize(kInitialBuffer);
  conn->interest = EPOLLIN;
  // The first request must arrive within the header timeout: an idle stranger holds a slot briefly.
  conn->header_deadline_ms = loop_.now_ms() + opt_.first_request_timeout_ms;
  conn->last_progress_ms = loop_.now_ms();
  conn->idle_since_ms = loop_.now_ms();
  // A newcomer is idle until its first request. When this thread had no idle connection of its
  // kind, publish it now: another thread at the cap may take its place at once, not only after
  // this thread's next tick (strangers arriving within one tick were refused while it waited).
  std::atomic<int64_t>& published = conn->authenticated ? idle_auth_since_ : idle_unauth_since_;
  int64_t none = INT64_MAX;
  published.compare_exchange_strong(none, conn->idle_since_ms, std::memory_order_relaxed);
  loop_.Add(fd, cid, EPOLLIN);
  conns_[cid] = std::move(conn);
}

void HttpWorker::RefuseAtAccept(int fd, const std::string& message) {
  std::string bytes = Refusal(503, "OVERLOADED", message);
  // A fresh socket's send buffer takes it whole; what does not fit is dropped with the connection.
  ssize_t n = write(fd, bytes.data(), bytes.size());
  (void)n;
  shutdown(fd, SHUT_WR);
  close(fd);
}

ConnectionGovernor::Eviction HttpWorker::EvictIdle(bool unauthenticated_only) {
  using Eviction = ConnectionGovernor::Eviction;
  for (int pass = 0; pass < 2; pass++) {
    bool unauth = pass == 0;
    if (!unauth && unauthenticated_only) break;
    HttpConnection* local = ConnectionGovernor::IdleLongest(conns_, unauth);
    // Another thread's is older (on equal times, this thread's goes: no hand-off).
    if (door_.EvictElsewhere(index_, unauth, local ? local->idle_since_ms : INT64_MAX)) return Eviction::kElsewhere;
    if (local && EvictHere(unauth)) return Eviction::kHere;
  }
  return Eviction::kNone;
}

bool HttpWorker::EvictHere(bool unauthenticated) {
  HttpConnection* victim = ConnectionGovernor::IdleLongest(conns_, unauthenticated);
  if (!victim) return false;
  door_.stats().idle_evicted++;
  Close(*victim, "closed to make room for a new connection (idle longest)");
  PublishIdle();
  return true;
}

void HttpWorker::PublishIdle() {
  HttpConnection* u = ConnectionGovernor::IdleLongest(conns_, true);
  HttpConnection* a = ConnectionGovernor::IdleLongest(conns_, false);
  idle_unauth_since_.store(u ? u->idle_since_ms : INT64_MAX, std::memory_order_relaxed);
  idle_auth_since_.store(a ? a->idle_since_ms : INT64_MAX, std::memory_order_relaxed);
}

void HttpWorker::Compact(HttpConnection& c) {
  if (c.consumed == 0) return;
  std::memmove(c.in.data(), c.in.data() + c.consumed, c.in_len - c.consumed);
  c.in_len -= c.consumed;
  c.consumed = 0;
}

void HttpWorker::OnReadable(HttpConnection& c) {
  const size_t head_cap = size_t{c.parser.limits().max_request_line_bytes} + c.parser.limits().max_header_bytes;
  for (int reads = 0; reads < kReadsPerWakeup; reads++) {
    if (c.fd < 0 || c.phase == HttpConnection::kDone || c.reading_paused) break;
    if (c.phase == HttpConnection::kBody) Compact(c);  // body bytes already copied out
    if (c.in_len == c.in.size()) {
      size_t cap = c.phase == HttpConnection::kHead ? head_cap : kBodyReadBuffer;
      if (c.in.size() >= cap) break;  // the parser refuses before a head reaches this
      c.in.resize(std::min(cap, c.in.size() * 2));
    }
    ssize_t n = read(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len);
    if (n > 0) {
      c.in_len += static_cast<size_t>(n);
      c.last_progress_ms = loop_.now_ms();
      door_.stats().bytes_read += static_cast<uint64_t>(n);
      Process(c);
      continue;
    }
    if (n == 0) {
      // The client stopped sending. Answers already made are still written; requests JavaScript
      // has not answered are abandoned, as node:http does (a FIN is how most clients go away).
      c.peer_closed = true;
      c.phase = HttpConnection::kDone;
      for (const Slot& s : c.out) {
        if (s.counts && !s.complete) {
          Close(c, "peer closed the connection before its requests were answered");
          return;
        }
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close(c, std::string("read failed: ") + std::strerror(errno));
      return;
    }
    break;
  }
  Pump(c);
}

void HttpWorker::Process(HttpConnection& c) {
  while (c.fd >= 0 && c.phase != HttpConnection::kDone && !c.reading_paused && !c.held_for_fill) {
    bool more = c.phase == HttpConnection::kHead ? ProcessHead(c) : ProcessBody(c);
    if (!more) break;
  }
  if (governor_.PipelineCut(c)) {
    door_.stats().pipeline_cuts++;
    Close(c, governor_.PipelineCutReason());
  }
}

bool HttpWorker::ProcessHead(HttpConnection& c) {
  RequestParser::Status st = c.parser.Parse(c.in.data(), c.in_len);
  if (st == RequestParser::kNeedMore) {
    // A head has begun: it must be complete within the header timeout (slowloris).
    if (c.in_len > 0 && c.header_deadline_ms == 0) c.header_deadline_ms = loop_.now_ms() + opt_.header_timeout_ms;
    if (c.in_len > 0 && c.head_started_ms == 0) c.head_started_ms = loop_.now_ms();
    return false;
  }
  if (st == RequestParser::kFailed) {
    door_.stats().parse_errors++;
    Refuse(c, RefusalFor(c.parser.error(), c.parser.error_offset(), c.parser.error_in_path()));
    return false;
  }
  if (opt_.fast && TryFast(c)) return true;
  if (HasParked(c)) {
    // JavaScript runs a connection's requests one after another: this one must not reach it
    // before the parked one (which may yet go to JavaScript) has. Nothing of it is consumed.
    c.held_for_fill = true;
    c.header_deadline_ms = 0;
    return false;
  }
  const RequestHead& h = c.parser.head();
  c.pending = RequestEvent(c);
  c.header_deadline_ms = 0;
  // The whole request (head and body) within request_timeout_ms of its first byte, as node's requestTimeout.
  c.body_deadline_ms = (c.head_started_ms ? c.head_started_ms : loop_.now_ms()) + opt_.request_timeout_ms;
  c.head_started_ms = 0;
  c.consumed = c.parser.head_bytes();
  c.body.Start(h);
  if (h.expect_continue && h.framing != Framing::kNone && c.consumed == c.in_len) {
    // The client waits for this before sending the body; it goes out after earlier answers.
    Slot s;
    s.started = s.complete = true;
    s.counts = false;
    s.head = "HTTP/1.1 100 Continue\r\n\r\n";
    s.pending = s.head.size();
    c.out_bytes += s.pending;
    door_.stats().buffered_bytes += static_cast<int64_t>(s.pending);
    c.out.push_back(std::move(s));
  }
  c.phase = HttpConnection::kBody;
  return true;
}

DoorEvent HttpWorker::RequestEvent(const HttpConnection& c) const {
  const RequestHead& h = c.parser.head();
  DoorEvent e;
  e.kind = DoorEvent::kRequest;
  e.method = h.method;
  e.target = h.target;
  // Absolute-form without a path means "/" (RFC 9112 section 3.2.2).
  e.path = h.form == TargetForm::kAbsolute && h.path.empty() ? std::string("/") : std::string(h.path);
  e.query = h.query;
  e.has_query = h.has_query;
  e.authority = h.authority;
  e.version_minor = h.version_minor;
  e.keep_alive = h.keep_alive;
  e.peer = c.peer;
  e.headers.reserve(h.headers.size());
  for (const Header& f : h.headers) e.headers.emplace_back(f.name, f.value);
  return e;
}

bool HttpWorker::ProcessBody(HttpConnection& c) {
  for (;;) {
    BodyDecoder::Step s = c.body.Feed(c.in.data() + c.consumed, c.in_len - c.consumed);
    c.consumed += s.consumed;
    if (s.status == BodyDecoder::kData) {
      c.pending.body.append(s.data);
      continue;
    }
    if (s.status == BodyDecoder::kFailed) {
      door_.stats().parse_errors++;
      Refuse(c, RefusalFor(c.body.error(), c.parser.head_bytes() + c.body.error_offset()));
      return false;
    }
    if (s.status == BodyDecoder::kNeedMore) {
      Compact(c);
      return false;
    }
    break;  // kDone
  }
  Compact(c);  // the next request's bytes now start at in[0]
  c.parser.Reset();
  c.body_deadline_ms = 0;
  c.phase = HttpConnection::kHead;
  PostRequest(c);
  return true;
}

void HttpWorker::PostRequest(HttpConnection& c) {
  uint64_t id = net::WireId(index_, next_request_++);
  Slot s;
  s.id = id;
  s.close_after = !c.pending.keep_alive;
  // Its body stays in the window until the answer is written (UpdatePause reads it).
  s.posted_body = c.pending.body.size();
  c.posted_body_bytes += s.posted_body;
  door_.stats().posted_body_bytes += static_cast<int64_t>(s.posted_body);
  c.out.push_back(std::move(s));
  c.in_flight++;
  c.served_any = true;
  c.posted_any = true;
  requests_[id] = c.id;
  door_.stats().requests++;
  door_.stats().in_flight++;
  DoorEvent e = std::move(c.pending);
  c.pending = DoorEvent();
  e.id = id;
  e.conn = net::WireId(index_, c.id);
  if (!e.keep_alive) c.phase = HttpConnection::kDone;  // nothing after this request is read
  door_.Post(std::move(e));
  UpdatePause(c);
}

void HttpWorker::Refuse(HttpConnection& c, std::string bytes) {
  // After the answers to the requests before it, then the connection closes:
  // the stream past a refused request cannot be trusted to start another one.
  Slot s;
  s.started = s.complete = true;
  s.counts = false;
  s.close_after = true;
  s.pending = bytes.size();
  s.head = std::move(bytes);
  c.out_bytes += s.pending;
  door_.stats().buffered_bytes += static_cast<int64_t>(s.pending);
  c.out.push_back(std::move(s));
  c.phase = HttpConnection::kDone;
  c.header_deadline_ms = 0;
}

void HttpWorker::Close(HttpConnection& c, const std::string& reason) {
  if (c.fd < 0) return;
  loop_.Remove(c.fd);
  close(c.fd);
  c.fd = -1;
  governor_.Closed(c);
  uint64_t conn = net::WireId(index_, c.id);
  for (Slot& s : c.out) {
    door_.stats().buffered_bytes -= static_cast<int64_t>(s.pending);
    door_.stats().posted_body_bytes -= static_cast<int64_t>(s.posted_body);
    s.posted_body = 0;
    if (s.fast_started_ns != 0) {
      FastDone(c, s, true);
      door_.stats().fast_queued_bytes -= static_cast<int64_t>(s.fast_bytes);
    }
    if (s.counts) {
      door_.stats().in_flight--;
      // JavaScript's fill is told: it fetches no chunk it has not started (one shared with other
      // readers goes on for them); its late answer finds nothing.
      if (s.parked) CancelFill(s.id);
      if (!s.complete && !s.disk && !s.parked) {
        // JavaScript is still working on it: tell it the answer has nowhere to go.
        requests_.erase(s.id);
        DoorEvent e;
        e.kind = DoorEvent::kAborted;
        e.id = s.id;
        e.conn = conn;
        e.reason = reason;
        door_.Post(std::move(e));
      }
    }
    std::vector<BodyPart> parts(s.body.begin(), s.body.end());
    ReleaseParts(parts);
  }
  c.out.clear();
  c.out_bytes = 0;
  c.posted_body_bytes = 0;
  c.in_flight = 0;
  if (c.posted_any) {
    DoorEvent e;
    e.kind = DoorEvent::kClosed;
    e.conn = conn;
    e.reason = reason;
    door_.Post(std::move(e));
  }
  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

void HttpWorker::Sweep(int64_t now) {
  std::vector<HttpConnection*> expired_head, expired_request, idle, unauth_idle;
  for (auto& [id, cp] : conns_) {
    HttpConnection& c = *cp;
    if (c.fd < 0) continue;
    if (c.phase == HttpConnection::kHead && c.header_deadline_ms != 0 && now >= c.header_deadline_ms) {
      expired_head.push_back(&c);
      continue;
    }
    if (c.phase == HttpConnection::kBody && c.body_deadline_ms != 0 && now >= c.body_deadline_ms) {
      expired_request.push_back(&c);
      continue;
    }
    // JavaScript owes the first answer (or its next piece): not the client's idleness.
    bool waiting_on_js = c.in_flight > 0 && (c.out.empty() || (c.out.front().pending == 0 && !c.out.front().complete));
    if (!waiting_on_js && c.header_deadline_ms == 0 && now - c.last_progress_ms >= opt_.idle_timeout_ms) {
      // Idle between requests, a body that stopped coming, or answers the client does not read.
      idle.push_back(&c);
    } else if (governor_.UnauthenticatedIdleTooLong(c, now)) {
      unauth_idle.push_back(&c);
    }
  }
  for (HttpConnection* c : unauth_idle) {
    door_.stats().first_request_timeouts++;
    Close(*c, governor_.UnauthenticatedIdleReason());
  }
  for (HttpConnection* c : expired_head) {
    door_.stats().header_timeouts++;
    if (!c->served_any) door_.stats().first_request_timeouts++;
    Refuse(*c, Refusal(408, "REQUEST_TIMEOUT",
                       // The JavaScript door's words for the same two timeouts (client-errors.ts, connections.ts).
                       c->served_any ? std::string("the request did not arrive in time")
                                     : "no complete request head within http.firstRequestTimeout (" +
                                           std::to_string(opt_.first_request_timeout_ms) + " ms)"));
    Pump(*c);
  }
  for (HttpConnection* c : expired_request) {
    door_.stats().request_timeouts++;
    c->body_deadline_ms = 0;
    // The JavaScript door's words for node's requestTimeout (client-errors.ts).
    Refuse(*c, Refusal(408, "REQUEST_TIMEOUT", "the request did not arrive in time"));
    Pump(*c);
  }
  for (HttpConnection* c : idle) {
    if (c->fd < 0) continue;
    door_.stats().idle_timeouts++;
    Close(*c, "idle for " + std::to_string(opt_.idle_timeout_ms) + " ms");
  }
}

}  // namespace weightcache::http
