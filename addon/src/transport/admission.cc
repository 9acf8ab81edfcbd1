// Admission on the I/O thread (docs/wire-protocol.md, "Before authentication"):
// an accepted connection is a stranger, read one handshake frame at a time,
// until JavaScript admits it (transportAdmit); strangers are bounded per
// listener and per address (the oldest is closed to make room) and by a
// deadline swept on the event loop's tick. Refusals say why in an ERROR frame.
#include <algorithm>
#include <string>
#include <vector>

#include "transport/io_loop.h"

namespace weightcache {
namespace {

void PutStr(std::vector<uint8_t>& out, const std::string& s) {
  size_t n = std::min<size_t>(s.size(), 0xffff);
  out.push_back(static_cast<uint8_t>(n & 0xff));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.insert(out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace

void IoLoop::Admit(Connection& c, bool open) {
  if (!c.preauth) return;
  if (open) {
    LeavePreauth(c);
    c.reader.set_handshake_only(false);
  }
  c.reading_paused = c.inbound_pending >= c.limits.max_in_flight;
  UpdateInterest(c);
}

// Makes room for one more connection from `addr_key`, closing the oldest
// unauthenticated connection (of that address first) where a limit is
// reached. False only when every slot is held by an authenticated peer.
bool IoLoop::MakeRoom(Listener& l, const std::string& addr_key) {
  auto evict = [&](uint64_t id, const std::string& why) {
    Connection* v = Find(id);
    if (!v) return;
    stats_.preauth_evicted++;
    Refuse(*v, "OVERLOADED", why, "evicted: ");
  };
  auto same = l.preauth_by_addr.find(addr_key);
  if (same != l.preauth_by_addr.end() && same->second >= l.preauth_limits.max_per_address) {
    for (uint64_t id : l.preauth) {
      Connection* v = Find(id);
      if (v && v->addr_key == addr_key) {
        evict(id, "closed before authenticating to make room: " + std::to_string(same->second) +
                      " connections from " + addr_key +
                      " were waiting to authenticate (transport.maxUnauthenticatedPerAddress)");
        break;
      }
    }
  }
  if (!l.preauth.empty() && l.preauth.size() >= l.preauth_limits.max_connections) {
    evict(l.preauth.front(), "closed before authenticating to make room: " + std::to_string(l.preauth.size()) +
                                 " connections were waiting to authenticate (transport.maxUnauthenticated)");
  }
  if (l.connections < l.max_connections) return true;
  if (l.preauth.empty()) return false;
  evict(l.preauth.front(), "closed before authenticating to make room: all " + std::to_string(l.max_connections) +
                               " connections are in use (transport.maxConnections)");
  return true;
}

void IoLoop::LeavePreauth(Connection& c) {
  if (!c.preauth) return;
  c.preauth = false;
  auto it = listeners_.find(c.listener);
  if (it == listeners_.end()) return;  // the listener is gone, and its list with it
  Listener& l = it->second;
  l.preauth.erase(c.preauth_pos);
  auto n = l.preauth_by_addr.find(c.addr_key);
  if (n != l.preauth_by_addr.end() && --n->second == 0) l.preauth_by_addr.erase(n);
}

void IoLoop::ExpirePreauth() {
  uint64_t now = static_cast<uint64_t>(net::NowMs());
  for (auto& [id, l] : listeners_) {
    while (!l.preauth.empty()) {
      Connection* c = Find(l.preauth.front());
      if (!c) {
        l.preauth.pop_front();  // cannot happen: Close leaves the list; kept so the loop always ends
        continue;
      }
      if (c->preauth_deadline_ms > now) break;
      stats_.preauth_timeouts++;
      std::string ms = std::to_string(l.preauth_limits.timeout_ms);
      Refuse(*c, "UNAUTHORIZED",
             c->handshake_frames == 0 ? "no HELLO within " + ms + " ms (transport.preAuthTimeout)"
                                      : "handshake not completed within " + ms + " ms (transport.preAuthTimeout)",
             "protocol error: ");
    }
  }
}

void IoLoop::Refuse(Connection& c, const char* code, const std::string& message, const char* why) {
  OutFrame f;
  f.h.type = kError;
  f.h.flags = kFlagResponse;
  f.h.request_id = 0;
  PutStr(f.meta, code);
  PutStr(f.meta, message);
  c.reading_paused = true;  // nothing more is read from it
  Enqueue(c, std::move(f));  // written now if the socket takes it: it is small, and this peer gets no more time
  Close(c, why + message);
}

}  // namespace weightcache
