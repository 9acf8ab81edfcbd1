#include "transport/io_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "net/disk_wait.h"

namespace weightcache {
namespace {

// Bytes one connection may read per wakeup before the loop serves the others.
constexpr size_t kReadBudget = 8u << 20;
// READ_CHUNK answers at least this long go into store memory (transportReceiveInto); shorter ones
// (probes, small objects' tails) into the pool: a store extent costs at least a page.
constexpr size_t kMinStoreReceive = 64u << 10;

uint64_t NowMs() { return static_cast<uint64_t>(net::NowMs()); }

// The key the per-address pre-auth limit counts by: the IPv4 address, or an
// IPv6 address's /64 (one host usually has a whole /64 to pick from).
std::string AddrKey(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, host, sizeof host);
    return host;
  }
  if (a.ss_family == AF_INET6) {
    in6_addr v6 = reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, v6.s6_addr + 12, host, sizeof host);
      return host;
    }
    std::memset(v6.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &v6, host, sizeof host);
    return std::string(host) + "/64";
  }
  return host;
}

// Small frames (PING, STAT, errors) must not wait for Nagle; and an idle
// connection to a peer that vanished without a FIN (power loss, partition)
// is found by keepalive within ~1 minute instead of at the next request.
void TuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 30, interval = 10, count = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

std::string Errno(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

IoLoop::IoLoop(std::function<void()> notify) : notify_(std::move(notify)) {
  thread_ = std::thread([this] { ev_.Run(*this); });
}

IoLoop::~IoLoop() {
  Command stop;
  stop.kind = Command::kStop;
  Submit(std::move(stop));
  if (thread_.joinable()) thread_.join();
  // The thread is gone; what is left is ours (we are on the JS thread, at env teardown).
  for (auto& [id, c] : conns_) {
    if (c->fd >= 0) close(c->fd);
    for (auto& f : c->out) {
      if (f.file_fd >= 0) close(f.file_fd);
      if (f.pin && drop_pin_) drop_pin_(f.pin);
    }
  }
  conns_.clear();
  graveyard_.clear();
  for (auto& [id, l] : listeners_) close(l.fd);
  // Last: the frames dropped above gave their read buffers back to it. Reads in flight complete
  // (the kernel may be writing into their buffers); their answers are dropped.
  disk_waits_.clear();
  disks_.clear();
  for (auto& c : commands_) {
    if (c.frame.pin && drop_pin_) drop_pin_(c.frame.pin);
    if (c.frame.file_fd >= 0) close(c.frame.file_fd);
    if (c.fd >= 0) close(c.fd);
  }
  for (auto& e : events_) {
    ReleaseEventPayload(e);
    if (e.pin && drop_pin_) drop_pin_(e.pin);
  }
}

void IoLoop::Submit(Command&& c) {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    commands_.push_back(std::move(c));
  }
  ev_.Wake();
}

std::vector<Event> IoLoop::TakeEvents() {
  std::vector<Event> out;
  std::lock_guard<std::mutex> lock(ev_mu_);
  out.swap(events_);
  return out;
}

void IoLoop::Post(Event&& e) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(ev_mu_);
    was_empty = events_.empty();
    events_.push_back(std::move(e));
  }
  if (was_empty) notify_();
}

Connection* IoLoop::Find(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

uint8_t* IoLoop::AllocPayload(void* ctx, size_t len) {
  auto* l = static_cast<IoLoop*>(ctx);
  // A chunk a peer answers on a connection we opened goes straight into store memory, so the
  // receiver publishes it in place (NativeStore.commit finds the pending allocation): no copy.
  if (l->receive_store_ && l->reading_ && l->reading_->listener == 0 && len >= kMinStoreReceive) {
    const FrameHeader& h = l->reading_->reader.header();
    if (h.type == transport::kReadChunk && (h.flags & kFlagResponse)) {
      if (store::Ref r = l->receive_store_->Allocate(len)) {
        uint8_t* p = r.writable_data();
        l->receiving_.emplace(p, std::move(r));
        return p;
      }
    }
  }
  return l->pool_->Acquire(len);
}

void IoLoop::ReleasePayload(void* ctx, uint8_t* p, size_t len) {
  auto* l = static_cast<IoLoop*>(ctx);
  if (l->receiving_.erase(p) == 0) l->pool_->Release(p, len);
}

void IoLoop::ReleaseEventPayload(Event& e) {
  if (e.payload_ref) {
    e.payload_ref.reset();
    e.payload_store.reset();
  } else if (e.payload) {
    pool_->Release(e.payload, e.header.payload_length);
  }
  e.payload = nullptr;
}

void IoLoop::OnAccept(int fd, const sockaddr_storage&) { close(fd); }

bool IoLoop::HasWork() const {
  for (const auto& [id, l] : listeners_) {
    if (!l.preauth.empty()) return true;
  }
  return false;
}

void IoLoop::AfterEvents() {
  for (Disk& d : disks_) {
    if (d.reader) d.reader->Flush();  // the reads this wakeup's requests started
  }
  graveyard_.clear();
}

void IoLoop::OnReady(uint64_t id, uint32_t e) {
  if (stopping_) return;
  for (Disk& d : disks_) {
    if (d.reader && id == d.id) {
      d.reader->Poll();
      return;
    }
  }
  if (auto it = listeners_.find(id); it != listeners_.end()) {
    OnAccept(id, it->second);
    return;
  }
  Connection* c = Find(id);
  if (!c || c->fd < 0) return;
  if (c->connecting) {
    OnConnectDone(*c);
    return;
  }
  if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->reading_paused) OnReadable(*c);
  if (c->fd >= 0 && (e & EPOLLOUT)) Flush(*c);
  if (c->fd >= 0 && c->reading_paused && (e & (EPOLLHUP | EPOLLERR))) Close(*c, "connection reset by peer");
}

void IoLoop::DrainCommands() {
  std::vector<Command> cmds;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    cmds.swap(commands_);
  }
  for (size_t i = 0; i < cmds.size(); i++) {
    Command& cmd = cmds[i];
    switch (cmd.kind) {
      case Command::kListen: {
        Listener& l = listeners_[cmd.id];
        l.fd = cmd.fd;
        l.limits = cmd.limits;
        l.max_connections = cmd.max_connections;
        l.preauth_limits = cmd.preauth;
        cmd.fd = -1;
        ev_.Add(l.fd, cmd.id, EPOLLIN);
        break;
      }
      case Command::kConnect: {
        int fd = socket(cmd.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
          Post(Event::Make(Event::kClosed, cmd.id, Errno("socket failed", errno)));
          break;
        }
        if (connect(fd, reinterpret_cast<sockaddr*>(&cmd.addr), cmd.addr_len) < 0 && errno != EINPROGRESS) {
          int err = errno;
          close(fd);
          Post(Event::Make(Event::kClosed, cmd.id, Errno("connect failed", err)));
          break;
        }
        auto conn = std::make_unique<Connection>(cmd.id, fd, 0, cmd.limits, this, AllocPayload, ReleasePayload);
        conn->connecting = true;
        conn->interest = EPOLLOUT;
        ev_.Add(fd, cmd.id, EPOLLOUT);
        conns_[cmd.id] = std::move(conn);
        stats_.connections_opened++;
        break;
      }
      case Command::kSend: {
        Connection* c = Find(cmd.id);
        if (!c || c->fd < 0) {
          ReleaseFrame(cmd.frame);
          break;
        }
        Enqueue(*c, std::move(cmd.frame));
        if (cmd.admit && c->fd >= 0) Admit(*c, cmd.admit == 2);
        break;
      }
      case Command::kClose: {
        Connection* c = Find(cmd.id);
        if (!c || c->fd < 0) break;
        if (cmd.after_flush && !c->out.empty()) {
          c->close_after_flush = true;
          c->close_reason = cmd.reason;
        } else {
          Close(*c, cmd.reason);
        }
        break;
      }
      case Command::kServeNative: {
        auto it = listeners_.find(cmd.id);
        if (it != listeners_.end()) it->second.chunks = std::move(cmd.chunks);
        break;
      }
      case Command::kReceiveInto:
        receive_store_ = std::move(cmd.receive_store);
        break;
      case Command::kCloseListener: {
        auto it = listeners_.find(cmd.id);
        if (it == listeners_.end()) break;
        // Nobody will admit them now (and their timeouts are kept per listener).
        std::vector<uint64_t> strangers(it->second.preauth.begin(), it->second.preauth.end());
        for (uint64_t id : strangers) {
          if (Connection* c = Find(id)) Refuse(*c, "SHUTTING_DOWN", "server shutting down", "");
        }
        ev_.Remove(it->second.fd);
        close(it->second.fd);
        listeners_.erase(it);
        break;
      }
      case Command::kStop:
        stopping_ = true;
        ev_.Stop();  // Run returns once this wakeup's events are handled (OnReady ignores them now)
        // Hand the unprocessed rest back so the destructor can release it.
        std::lock_guard<std::mutex> lock(cmd_mu_);
        for (size_t j = i + 1; j < cmds.size(); j++) commands_.push_back(std::move(cmds[j]));
        return;
    }
  }
}

void IoLoop::OnAccept(uint64_t id, Listener& l) {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or EMFILE & co: retried on the next readiness
    std::string key = AddrKey(addr);
    if (!MakeRoom(l, key)) {
      close(fd);
      stats_.connections_rejected++;
      continue;
    }
    TuneSocket(fd);
    uint64_t cid = NextId();
    auto conn = std::make_unique<Connection>(cid, fd, id, l.limits, this, AllocPayload, ReleasePayload);
    conn->interest = EPOLLIN;
    // A stranger until JS admits it (transportAdmit): handshake frames only, against a deadline.
    conn->preauth = true;
    conn->reader.set_handshake_only(true);
    conn->preauth_deadline_ms = NowMs() + l.preauth_limits.timeout_ms;
    conn->addr_key = key;
    l.preauth.push_back(cid);
    conn->preauth_pos = std::prev(l.preauth.end());
    l.preauth_by_addr[key]++;
    ev_.Add(fd, cid, EPOLLIN);
    conns_[cid] = std::move(conn);
    l.connections++;
    stats_.connections_opened++;
    Event e = Event::Make(Event::kAccepted, cid, net::PeerName(addr));
    e.listener = id;
    Post(std::move(e));
  }
}

void IoLoop::OnConnectDone(Connection& c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err) {
    Close(c, Errno("connect failed", err));
    return;
  }
  c.connecting = false;
  TuneSocket(c.fd);
  Post(Event::Make(Event::kConnected, c.id));
  UpdateInterest(c);
  Flush(c);
}

void IoLoop::OnReadable(Connection& c) {
  reading_ = &c;  // AllocPayload's context while this connection's frames are read
  size_t budget = kReadBudget;
  while (c.fd >= 0 && !c.reading_paused && budget > 0) {
    FrameReader::Span span = c.reader.Want();
    ssize_t n = read(c.fd, span.ptr, span.len);
    if (n > 0) {
      budget = static_cast<size_t>(n) >= budget ? 0 : budget - static_cast<size_t>(n);
      FrameReader::Result r = c.reader.Advance(static_cast<size_t>(n));
      if (r == FrameReader::kFail) {
        stats_.protocol_errors++;
        if (*c.reader.refusal_code()) {
          // A well-framed header we will not read on: say why before closing.
          stats_.preauth_refused++;
          Refuse(c, c.reader.refusal_code(), c.reader.error(), "protocol error: ");
        } else {
          Close(c, "protocol error: " + c.reader.error());
        }
        return;
      }
      if (r == FrameReader::kFrame) OnFrame(c);
    } else if (n == 0) {
      Close(c, c.reader.mid_frame()
                   ? "peer closed the connection mid-frame (" + c.reader.Progress() + ")"
                   : "peer closed the connection");
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      Close(c, Errno("read failed", errno));
      return;
    }
  }
}

void IoLoop::OnFrame(Connection& c) {
  Event e = Event::Make(Event::kFrame, c.id);
  e.header = c.reader.header();
  e.computed_crc = c.reader.computed_payload_crc();
  e.meta = c.reader.TakeMeta();
  e.payload = c.reader.TakePayload();
  if (e.payload) {
    if (auto it = receiving_.find(e.payload); it != receiving_.end()) {
      e.payload_ref = std::move(it->second);
      e.payload_store = receive_store_;
      receiving_.erase(it);
      stats_.bytes_received_store += e.header.payload_length;
    }
  }
  const FrameHeader& h = e.header;
  stats_.frames_received++;
  stats_.bytes_received_direct += h.payload_length;
  if (c.preauth) {
    // Lock-step until admitted: one handshake frame at a time, the next read
    // only after JS has judged this one (transportAdmit). Whatever else the
    // peer sent waits in its socket, not in our memory.
    c.handshake_frames++;
    c.reading_paused = true;
    UpdateInterest(c);
  }
  bool connection_level = h.type == kHello || (h.type == kError && h.request_id == 0);
  if ((h.flags & kFlagResponse) && !connection_level) {
    if (c.awaiting.erase(h.request_id) == 0) {
      ReleaseEventPayload(e);
      stats_.protocol_errors++;
      Close(c, "protocol error: response to unknown request id " + std::to_string(h.request_id));
      return;
    }
  } else if (IsRequest(h.type, h.flags)) {
    if (++c.inbound_pending >= c.limits.max_in_flight) {
      c.reading_paused = true;  // backpressure: the peer's requests wait in its socket, not in our memory
      UpdateInterest(c);
    }
    if (h.type == transport::kReadChunk && ServeNatively(c, e)) return;
  }
  Post(std::move(e));
}

void IoLoop::UpdateInterest(Connection& c) {
  if (c.fd < 0 || c.connecting) return;
  uint32_t want = (c.reading_paused ? 0u : static_cast<uint32_t>(EPOLLIN)) |
                  (c.want_write ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  if (want == c.interest) return;
  ev_.Modify(c.fd, c.id, want);
  c.interest = want;
}

void IoLoop::Close(Connection& c, const std::string& reason) {
  if (c.fd < 0) return;
  ev_.Remove(c.fd);
  close(c.fd);
  c.fd = -1;
  for (OutFrame& f : c.out) ReleaseFrame(f);
  c.out.clear();
  c.reader.Abandon();  // before the event: whoever sees the close sees the memory back in the pool
  LeavePreauth(c);
  if (c.listener) {
    if (auto it = listeners_.find(c.listener); it != listeners_.end() && it->second.connections > 0) {
      it->second.connections--;
    }
  }
  stats_.connections_closed++;
  Post(Event::Make(Event::kClosed, c.id, reason));
  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

}  // namespace weightcache
