// The connection rules of the native HTTP door: those of
// src/http/connections.ts, from the same http.* keys, in its order
// (docs/http-api.md, "Connections and limits"). Door-wide: the per-address
// limit (IPv6 by its /64), http.maxConnections, the reserve for
// authenticated clients. Per connection, applied by the worker that owns it:
// which connection is idle longest (the one a newcomer at a cap replaces),
// the unauthenticated idle close, and the pipelining cut. Every decision is
// counted in DoorStats under the reason connections.ts gives it.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace weightcache::http {

class HttpDoor;
struct HttpConnection;

// The address a per-address limit counts: IPv4 as is (also IPv4-mapped), IPv6
// by its /64 ("2001:db8:0:1::/64"), as src/http/connections.ts's addressKey.
std::string AddressKey(const sockaddr_storage& a);

class ConnectionGovernor {
 public:
  explicit ConnectionGovernor(HttpDoor& door) : door_(door) {}

  // Makes room for a newcomer: closes the connection idle longest on any
  // thread, unauthenticated ones first (only those with `unauthenticated_only`).
  // kHere: the accepting thread closed one of its own; kElsewhere: another
  // thread was asked to close its own (its slot frees a moment later); kNone:
  // no connection is idle.
  enum class Eviction { kNone, kHere, kElsewhere };
  using EvictIdle = std::function<Eviction(bool unauthenticated_only)>;
  // While other threads close their idle connections the door may hold this
  // many connections over max_connections: kEvictionsInFlightPerThread per thread.
  static constexpr uint32_t kEvictionsInFlightPerThread = 16;
  uint32_t MaxOverCap() const;

  // A newcomer from `address` (AddressKey): admitted and counted (connection,
  // address, unauthenticated with auth on), returning ""; or refused, counted
  // under its reason, returning the message of the 503 OVERLOADED it gets.
  std::string Admit(const std::string& address, const EvictIdle& evict_idle);
  // A connection admitted by Admit is gone.
  void Closed(const HttpConnection& c);
  // `c` presented a valid token: it no longer counts against the reserve.
  void Authenticate(HttpConnection& c);

  // Between requests, before the first, or trickling a head: no request being handled.
  static bool Idle(const HttpConnection& c);
  // Of `conns` (a worker's), the one idle longest (among equals the older
  // one) that is (not) authenticated. Null if none is idle.
  using Connections = std::unordered_map<uint64_t, std::unique_ptr<HttpConnection>>;
  static HttpConnection* IdleLongest(const Connections& conns, bool unauthenticated);
  // With auth on, a connection that has not presented a valid token may idle
  // between requests only as long as a newcomer may wait for its first request.
  bool UnauthenticatedIdleTooLong(const HttpConnection& c, int64_t now_ms) const;
  std::string UnauthenticatedIdleReason() const;
  // At the pipelining bound with another complete request already read: the
  // client sent more than http.maxPipelined in one go and is disconnected (as
  // the JavaScript door does; RFC 9112 section 9.3.2 lets it retry them). A
  // head still arriving is just held, as TCP holds the rest.
  bool PipelineCut(HttpConnection& c) const;
  std::string PipelineCutReason() const;

 private:
  // Counts a newcomer while another thread closes an idle connection: up to MaxOverCap over the cap.
  bool ForceOpen();
  bool TryOpenAddress(const std::string& address);
  void CloseAddress(const std::string& address);

  HttpDoor& door_;
  std::mutex addr_mu_;
  std::unordered_map<std::string, uint32_t> per_address_;  // under addr_mu_
};

}  // namespace weightcache::http
