#include "http/door.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "http/worker.h"
#include "net/event_loop.h"

namespace weightcache::http {

HttpDoor::HttpDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*))
    : options_(std::move(options)), notify_(std::move(notify)), drop_pin_(drop_pin) {}

HttpDoor::~HttpDoor() {
  workers_.clear();  // joins each thread; each drops the pins it still held
  for (DoorEvent& e : events_) {
    if (e.kind == DoorEvent::kRelease) DropPin(e.pin);
  }
  events_.clear();
}

void HttpDoor::DropPin(void* pin) {
  if (!pin) return;
  if (drop_pin_) drop_pin_(pin);
  stats_.pinned_buffers--;
}

uint16_t HttpDoor::Start(int& err, std::string& what) {
  std::vector<int> fds;
  uint16_t port = net::ListenReusePort(options_.host, options_.port, options_.threads, fds, err, what);
  if (port == 0) return 0;
  for (uint32_t i = 0; i < options_.threads; i++) {
    workers_.push_back(std::make_unique<HttpWorker>(*this, i, fds[i]));
  }
  for (auto& w : workers_) w->Start();
  return port;
}

void HttpDoor::Respond(Answer&& a) {
  uint64_t index = a.id >> kWorkerShift;
  if (index >= workers_.size()) {
    for (BodyPart& p : a.body) DropPin(p.pin);
    return;
  }
  workers_[index]->Submit(std::move(a));
}

std::vector<DoorEvent> HttpDoor::TakeEvents() {
  std::vector<DoorEvent> out;
  std::lock_guard<std::mutex> lock(ev_mu_);
  out.swap(events_);
  return out;
}

void HttpDoor::Post(DoorEvent&& e) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(ev_mu_);
    was_empty = events_.empty();
    events_.push_back(std::move(e));
  }
  if (was_empty) notify_();
}

bool HttpDoor::TryOpenConnection() {
  int64_t open = stats_.connections_open.fetch_add(1) + 1;
  if (open > static_cast<int64_t>(options_.max_connections)) {
    stats_.connections_open--;
    return false;
  }
  return true;
}

bool HttpDoor::TryOpenAddress(const std::string& address) {
  if (options_.max_per_address == 0) return true;
  std::lock_guard<std::mutex> lock(addr_mu_);
  uint32_t& n = per_address_[address];
  if (n >= options_.max_per_address) return false;
  n++;
  return true;
}

void HttpDoor::CloseAddress(const std::string& address) {
  if (options_.max_per_address == 0) return;
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
