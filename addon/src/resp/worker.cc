#include "resp/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "net/disk_wait.h"

namespace weightcache::resp {

namespace {

constexpr int kMaxIov = 64;
constexpr size_t kReadBytes = 64 * 1024;  // one read() into the thread's scratch buffer
constexpr int kReadsPerWakeup = 16;      // then other connections get their turn

// With auth off every connection may read every container.
std::shared_ptr<const RespGrant> AllContainers() {
  static const std::shared_ptr<const RespGrant> all = [] {
    auto g = std::make_shared<RespGrant>();
    g->all = true;
    return g;
  }();
  return all;
}

}  // namespace

RespWorker::RespWorker(RespDoor& door, uint32_t index, int listen_fd)
    : WorkerThread(listen_fd), door_(door), opt_(door.options()), index_(index) {
  durations_.SetBounds(opt_.duration_bounds);
  if (opt_.fast && opt_.fast->store->nvme()) {
    std::string why;
    disk_ = store::DiskReader::Create(opt_.fast->store->nvme(), OnDisk, this, &why);
    if (!disk_) fprintf(stderr, "weightcache resp: no NVMe reads on the fast path: %s\n", why.c_str());
    // Before the thread starts: its completions wake this loop like a socket (OnReady, kDiskId).
    if (disk_) loop_.Add(disk_->event_fd(), kDiskId, EPOLLIN);
  }
}

RespWorker::~RespWorker() {
  Join();
  // The thread is gone: what is left is ours (we are on the JavaScript thread).
  for (auto& [id, c] : conns_) {
    if (c->fd >= 0) {
      close(c->fd);
      door_.CloseConnection();
    }
    for (Piece& p : c->out) {
      door_.DropPin(p.pin);
      if (p.ref) {
        p.ref.reset();
        opt_.fast->stats.chunk_refs--;
      }
    }
    door_.stats().buffered_bytes -= static_cast<int64_t>(c->out_bytes);
    door_.stats().in_flight -= c->in_flight;
  }
  conns_.clear();
  graveyard_.clear();
  for (Send& s : TakeInbox()) {
    for (Piece& p : s.pieces) door_.DropPin(p.pin);
  }
  for (DoorEvent& e : outbox_) {
    if (e.kind == DoorEvent::kRelease) door_.DropPin(e.pin);
  }
  // Last: the pieces released above gave their read buffers back to it. Reads in flight
  // complete (the kernel may be writing into their buffers); their ranges are dropped.
  disk_waits_.clear();
  disk_.reset();
}

void RespWorker::OnWake() {
  for (Send& s : TakeInbox()) Apply(s);
}

void RespWorker::OnAccept(int fd, const sockaddr_storage& peer) {
  if (!door_.TryOpenConnection()) {
    // Past every slot JavaScript could admit: closed at once, so descriptors never run out.
    close(fd);
    door_.stats().connections_rejected++;
    return;
  }
  door_.stats().connections_accepted++;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  uint64_t cid = next_conn_++;
  auto c = std::make_unique<RespConnection>(cid, fd, net::PeerName(peer), opt_.limits);
  c->parser.set_authenticated(!opt_.auth);
  if (opt_.fast && !opt_.auth) c->grant = AllContainers();
  c->interest = EPOLLIN;
  loop_.Add(fd, cid, EPOLLIN);
  DoorEvent e;
  e.kind = DoorEvent::kOpen;
  e.conn = Wire(*c);
  e.peer = c->peer;
  Emit(std::move(e));
  conns_[cid] = std::move(c);
}

void RespWorker::OnReady(uint64_t id, uint32_t events) {
  if (id == kDiskId) {
    disk_->Poll();
    return;
  }
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second->fd < 0) return;
  RespConnection& c = *it->second;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (c.reading_paused && (events & (EPOLLHUP | EPOLLERR))) {
      Close(c, "connection reset by peer");
      return;
    }
    if (!c.reading_paused) OnReadable(c);
  }
  if (c.fd >= 0 && (events & EPOLLOUT)) {
    Flush(c);
    // Replies went out: commands already read may go on (the fast path's queued-bytes bound).
    if (c.fd >= 0 && opt_.fast && c.state == RespConnection::kReading) Parse(c);
  }
  if (c.fd >= 0) UpdateInterest(c);
}

bool RespWorker::CanPost(const RespConnection& c) const {
  if (c.state != RespConnection::kReading || c.peer_closed || c.disk_wait != 0) return false;
  if (!c.parser.authenticated()) return c.in_flight == 0;  // a stranger's commands run one at a time
  if (opt_.fast && c.out_bytes >= kMaxQueuedReplyBytes) return false;  // the client is not reading its replies
  return c.in_flight < opt_.max_pipelined && c.posted_bytes < opt_.pipeline_window_bytes;
}

void RespWorker::OnReadable(RespConnection& c) {
  // Reads land in the thread's scratch buffer; the parser keeps only what is not yet a whole
  // command (usually nothing), so a connection costs no read buffer between commands.
  if (scratch_.empty()) scratch_.resize(kReadBytes);
  for (int reads = 0; reads < kReadsPerWakeup && c.fd >= 0; reads++) {
    const bool parsing = c.state == RespConnection::kReading;
    if (parsing && !CanPost(c)) break;  // at a bound: the client's bytes wait in the kernel
    const size_t room = scratch_.size();
    ssize_t n = read(c.fd, scratch_.data(), room);
    if (n > 0) {
      door_.stats().bytes_read += static_cast<uint64_t>(n);
      if (opt_.fast) c.read_ns = net::NowNs();  // the commands in these bytes arrived now
      if (parsing) {  // else: closing, input is dropped
        c.parser.Append(scratch_.data(), static_cast<size_t>(n));
        Parse(c);
      }
      if (static_cast<size_t>(n) < room) break;  // drained (epoll is level-triggered: more wakes us again)
      continue;
    }
    if (n == 0) {
      // The client stopped sending. Replies already handed over still go out; commands
      // JavaScript is running are abandoned when the connection closes, as the JavaScript door does.
      c.peer_closed = true;
      if (c.state == RespConnection::kLinger || (c.out.empty() && c.in_flight == 0)) {
        Close(c, "peer closed the connection");
      } else if (c.in_flight > 0) {
        Flush(c);
        if (c.fd >= 0) Close(c, "peer closed the connection with commands running");
      } else {
        Flush(c);
      }
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) Close(c, std::string("read failed: ") + std::strerror(errno));
    break;
  }
}

void RespWorker::Parse(RespConnection& c) {
  bool served = false;
  for (;;) {
    while (c.fd >= 0 && CanPost(c)) {
      RequestParser::Status st = c.parser.Next(c.args);
      if (st == RequestParser::kNeedMore) break;
      if (st == RequestParser::kFailed) {
        door_.stats().protocol_errors++;
        c.state = RespConnection::kFailed;
        DoorEvent e;
        e.kind = DoorEvent::kProtocolError;
        e.conn = Wire(c);
        e.error = c.parser.error();
        Emit(std::move(e));
        break;
      }
      if (TryServeNatively(c, c.args)) {
        served = true;
        continue;
      }
      PostCommand(c, c.args);
    }
    // Replies answered here go out together: one writev for a pipeline of them. If that made room
    // under the queued-bytes bound, commands already read go on (no new input would wake us).
    if (!served || c.fd < 0) break;
    served = false;
    Flush(c);
    if (c.fd < 0 || !CanPost(c)) break;  // still full: the next EPOLLOUT flushes and parses on
  }
}

void RespWorker::PostCommand(RespConnection& c, std::vector<std::string>& args) {
  uint64_t bytes = 0;
  for (const std::string& a : args) bytes += a.size();
  c.in_flight++;
  c.posted_sizes.push_back(bytes);
  c.posted_bytes += bytes;
  door_.stats().commands++;
  door_.stats().in_flight++;
  DoorEvent e;
  e.kind = DoorEvent::kCommand;
  e.conn = Wire(c);
  e.args.swap(args);
  e.written = c.unreported_written;  // progress rides on the command: no event of its own
  e.served = c.unreported_served;
  c.unreported_written = 0;
  c.unreported_served = 0;
  Emit(std::move(e));
}

void RespWorker::Apply(Send& s) {
  auto it = conns_.find(net::LocalOf(s.conn));
  if (it == conns_.end() || it->second->fd < 0) {
    for (Piece& p : s.pieces) Release(p);  // the connection went away (a 'closed' event told JavaScript)
    return;
  }
  RespConnection& c = *it->second;
  for (uint32_t i = 0; i < s.done && c.in_flight > 0; i++) {
    c.in_flight--;
    door_.stats().in_flight--;
    c.posted_bytes -= c.posted_sizes.front();
    c.posted_sizes.pop_front();
  }
  if (s.authenticated) c.parser.set_authenticated(true);
  if (s.set_grant) c.grant = std::move(s.grant);
  if (s.want_written) {
    c.want_report = true;
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(c.id);
    }
  }
  if (s.destroy) {
    for (Piece& p : s.pieces) Release(p);
    Close(c, "closed by the server");
    return;
  }
  for (Piece& p : s.pieces) {
    if (p.len == 0) {
      Release(p);
      continue;
    }
    if (!p.pin) p.data = p.own.data();
    c.out_bytes += p.len;
    door_.stats().buffered_bytes += static_cast<int64_t>(p.len);
    c.out.push_back(std::move(p));
    // std::string's small-buffer storage moves with it: point at the new home.
    if (!c.out.back().pin) c.out.back().data = c.out.back().own.data();
  }
  if (s.end && c.state != RespConnection::kLinger) c.state = RespConnection::kEnding;
  Flush(c);
  if (c.fd < 0) return;
  Parse(c);  // a finished command may have lifted a bound: commands already read can go on
  if (c.fd >= 0) UpdateInterest(c);
}

void RespWorker::Flush(RespConnection& c) {
  while (c.fd >= 0 && !c.out.empty()) {
    iovec iov[kMaxIov];
    int cnt = 0;
    size_t skip = c.out_off;
    for (Piece& p : c.out) {
      if (cnt >= kMaxIov) break;
      iov[cnt++] = {const_cast<char*>(p.data) + skip, p.len - skip};
      skip = 0;
    }
    ssize_t n = writev(c.fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c, std::string("write failed: ") + std::strerror(errno));
      return;
    }
    door_.stats().bytes_written += static_cast<uint64_t>(n);
    door_.stats().buffered_bytes -= n;
    c.out_bytes -= static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    uint64_t js_bytes = 0;  // fast-path bytes are not JavaScript's to count
    int64_t now_ns = 0;     // read once per write, when a fast-path reply ends in it
    while (left > 0) {
      Piece& p = c.out.front();
      size_t take = std::min(left, p.len - c.out_off);
      if (!p.native) js_bytes += take;
      c.out_off += take;
      left -= take;
      if (c.out_off < p.len) break;
      if (p.ends_fast && !c.fast_replies.empty()) {
        if (now_ns == 0) now_ns = net::NowNs();
        FastDone(c, c.fast_replies.front(), now_ns, false);
        c.fast_replies.pop_front();
      }
      Release(p);  // written: its memory goes back to JavaScript (or its chunk to the store) now
      c.out.pop_front();
      c.out_off = 0;
    }
    c.unreported_written += js_bytes;
    if (js_bytes > 0 && !c.dirty) {
      c.dirty = true;
      dirty_.push_back(c.id);
    }
  }
  if (c.fd < 0 || !c.out.empty()) return;
  if (c.peer_closed) {
    if (c.in_flight == 0) Close(c, "peer closed the connection");
    return;
  }
  if (c.state == RespConnection::kEnding) {
    shutdown(c.fd, SHUT_WR);
    c.state = RespConnection::kLinger;
    c.linger_deadline_ms = loop_.now_ms() + opt_.close_grace_ms;
  }
}

void RespWorker::UpdateInterest(RespConnection& c) {
  if (c.fd < 0) return;
  bool was = c.reading_paused;
  c.reading_paused = c.peer_closed || (c.state == RespConnection::kReading && !CanPost(c));
  if (c.reading_paused && !was) door_.stats().paused_reads++;
  uint32_t want = (c.reading_paused ? 0u : static_cast<uint32_t>(EPOLLIN)) |
                  (c.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  // With neither, EPOLLHUP and EPOLLERR are still reported (a client that went away).
  if (want == c.interest) return;
  loop_.Modify(c.fd, c.id, want);
  c.interest = want;
}

void RespWorker::Release(Piece& p) {
  if (p.ref) {
    p.ref.reset();  // dropped here, on this thread (the store frees on any thread)
    opt_.fast->stats.chunk_refs--;
    return;
  }
  if (!p.pin) return;
  DoorEvent e;
  e.kind = DoorEvent::kRelease;
  e.pin = p.pin;
  p.pin = nullptr;
  Emit(std::move(e));
}

void RespWorker::Close(RespConnection& c, const std::string& reason) {
  if (c.fd < 0) return;
  loop_.Remove(c.fd);
  close(c.fd);
  c.fd = -1;
  door_.CloseConnection();
  for (Piece& p : c.out) Release(p);
  c.out.clear();
  if (!c.fast_replies.empty()) {
    int64_t now_ns = net::NowNs();
    for (RespConnection::FastReply& r : c.fast_replies) FastDone(c, r, now_ns, true);
    c.fast_replies.clear();
  }
  door_.stats().buffered_bytes -= static_cast<int64_t>(c.out_bytes);
  door_.stats().in_flight -= c.in_flight;
  c.out_bytes = 0;
  c.in_flight = 0;
  DoorEvent e;
  e.kind = DoorEvent::kClosed;
  e.conn = Wire(c);
  e.reason = reason;
  Emit(std::move(e));
  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

void RespWorker::Report(bool all) {
  size_t keep = 0;
  for (uint64_t id : dirty_) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    RespConnection& c = *it->second;
    if (!all && !c.want_report && (c.unreported_written > 0 || c.unreported_served > 0)) {
      dirty_[keep++] = id;  // nobody waits: the next command or tick carries it
      continue;
    }
    c.dirty = false;
    if (c.out.empty()) c.want_report = false;
    if (c.unreported_written == 0 && c.unreported_served == 0) continue;
    DoorEvent e;
    e.kind = DoorEvent::kWritten;
    e.conn = Wire(c);
    e.written = c.unreported_written;
    e.served = c.unreported_served;
    c.unreported_written = 0;
    c.unreported_served = 0;
    Emit(std::move(e));
  }
  dirty_.resize(keep);
}

void RespWorker::AfterEvents() {
  if (disk_) disk_->Flush();  // the reads this wakeup's commands started
  Report(false);
  PostAccess();
  door_.PostBatch(outbox_);
  graveyard_.clear();
}

void RespWorker::OnTick(int64_t now_ms) {
  std::vector<RespConnection*> done;
  for (auto& [id, c] : conns_) {
    if (c->state == RespConnection::kLinger && now_ms >= c->linger_deadline_ms) done.push_back(c.get());
  }
  for (RespConnection* c : done) Close(*c, "closed after its last reply");
  Report(true);
  PostAccess();
  door_.PostBatch(outbox_);
  graveyard_.clear();
}

}  // namespace weightcache::resp
