#include "http/governor.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>

#include "http/connection.h"
#include "http/door.h"

namespace weightcache::http {

std::string ConnectionGovernor::Admit(const std::string& address, const EvictIdle& evict_idle) {
  const DoorOptions& opt = door_.options();
  DoorStats& stats = door_.stats();
  if (!TryOpenAddress(address)) {
    stats.rejected_per_address++;
    return "too many connections from " + address + " (http.maxConnectionsPerAddress: " +
           std::to_string(opt.max_per_address) + ")";
  }
  // At the cap a newcomer takes the place of the connection idle longest (on whichever thread
  // holds it), or is refused: file descriptors never run out. An authenticated connection goes
  // only when no unauthenticated one is open anywhere.
  bool open = door_.TryOpenConnection();
  if (!open) {
    Eviction e = evict_idle(stats.unauthenticated.load() > 0);
    // A victim closed here freed a slot for the newcomer; while evictions asked of another thread
    // are still pending the count is over the cap, so take the freed slot within MaxOverCap rather
    // than refuse a newcomer a connection was just closed for.
    if (e == Eviction::kHere) open = door_.TryOpenConnection() || ForceOpen();
    if (e == Eviction::kElsewhere) open = ForceOpen();
  }
  if (!open) {
    CloseAddress(address);
    stats.connections_rejected++;
    return "the server holds http.maxConnections (" + std::to_string(opt.max_connections) + ") busy connections";
  }
  if (opt.auth_required &&
      stats.unauthenticated.load() >= static_cast<int64_t>(opt.max_connections) - opt.reserved &&
      evict_idle(true) == Eviction::kNone) {
    CloseAddress(address);
    door_.CloseConnection();
    stats.rejected_reserve++;
    return "unauthenticated connections hold every slot but the http.reservedConnections (" +
           std::to_string(opt.reserved) + ")";
  }
  stats.connections_accepted++;
  if (opt.auth_required) stats.unauthenticated++;
  return "";
}

void ConnectionGovernor::Closed(const HttpConnection& c) {
  door_.CloseConnection();
  CloseAddress(c.address);
  if (!c.authenticated) door_.stats().unauthenticated--;
}

void ConnectionGovernor::Authenticate(HttpConnection& c) {
  if (c.authenticated) return;
  c.authenticated = true;
  door_.stats().unauthenticated--;
}

bool ConnectionGovernor::Idle(const HttpConnection& c) {
  return c.fd >= 0 && c.in_flight == 0 && c.out.empty() && c.phase == HttpConnection::kHead;
}

HttpConnection* ConnectionGovernor::IdleLongest(const Connections& conns, bool unauthenticated) {
  HttpConnection* victim = nullptr;
  for (auto& [id, cp] : conns) {
    HttpConnection& c = *cp;
    if (!Idle(c) || c.authenticated == unauthenticated) continue;
    // Idle longest; among equals (the clock ticks in ms) the older connection.
    if (!victim || c.idle_since_ms < victim->idle_since_ms ||
        (c.idle_since_ms == victim->idle_since_ms && c.id < victim->id)) {
      victim = &c;
    }
  }
  return victim;
}

// Evictions asked of other threads and not yet done: each admitted newcomer holds one slot over the
// cap until its victim closes. One per thread was too few: strangers arriving within one 50 ms tick
// (or while the other thread is busy) were refused though idle ones were there to take the place of.
uint32_t ConnectionGovernor::MaxOverCap() const { return kEvictionsInFlightPerThread * door_.options().threads; }

bool ConnectionGovernor::ForceOpen() {
  DoorStats& stats = door_.stats();
  int64_t open = stats.connections_open.fetch_add(1) + 1;
  if (open > static_cast<int64_t>(door_.options().max_connections) + MaxOverCap()) {
    stats.connections_open--;
    return false;
  }
  return true;
}

bool ConnectionGovernor::UnauthenticatedIdleTooLong(const HttpConnection& c, int64_t now_ms) const {
  return !c.authenticated && Idle(c) && c.header_deadline_ms == 0 &&
         now_ms - c.idle_since_ms >= door_.options().first_request_timeout_ms;
}

std::string ConnectionGovernor::UnauthenticatedIdleReason() const {
  return "unauthenticated and idle for http.firstRequestTimeout (" +
         std::to_string(door_.options().first_request_timeout_ms) + " ms)";
}

bool ConnectionGovernor::PipelineCut(HttpConnection& c) const {
  return c.fd >= 0 && c.reading_paused && c.in_flight >= door_.options().max_in_flight &&
         c.phase == HttpConnection::kHead && c.in_len > 0 &&
         c.parser.Parse(c.in.data(), c.in_len) != RequestParser::kNeedMore;
}

std::string ConnectionGovernor::PipelineCutReason() const {
  return "more than http.maxPipelined (" + std::to_string(door_.options().max_in_flight) + ") requests sent in one go";
}

bool ConnectionGovernor::TryOpenAddress(const std::string& address) {
  if (door_.options().max_per_address == 0) return true;
  std::lock_guard<std::mutex> lock(addr_mu_);
  uint32_t& n = per_address_[address];
  if (n >= door_.options().max_per_address) return false;
  n++;
  return true;
}

void ConnectionGovernor::CloseAddress(const std::string& address) {
  if (door_.options().max_per_address == 0) return;
  std::lock_guard<std::mutex> lock(addr_mu_);
  auto it = per_address_.find(address);
  if (it == per_address_.end()) return;
  if (--it->second == 0) per_address_.erase(it);
}

std::string AddressKey(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (a.ss_family != AF_INET6) return buf;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    inet_ntop(AF_INET, v6.s6_addr + 12, buf, sizeof buf);
    return buf;
  }
  // The first four groups, lower-case hex without leading zeros, then ::/64.
  std::string out;
  for (int g = 0; g < 4; g++) {
    char h[8];
    snprintf(h, sizeof h, "%x", (v6.s6_addr[2 * g] << 8) | v6.s6_addr[2 * g + 1]);
    if (g) out += ':';
    out += h;
  }
  return out + "::/64";
}

}  // namespace weightcache::http
