#include "http/door.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http/worker.h"

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
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options_.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options_.port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, options_.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options_.port);
    len = sizeof(sockaddr_in6);
  } else {
    err = EINVAL;
    what = "host must be an IP address, got " + options_.host;
    return 0;
  }
  // One listening socket per thread on the same address: the kernel spreads
  // new connections across them (SO_REUSEPORT), no accept thread, no lock.
  std::vector<int> fds;
  uint16_t port = options_.port;
  for (uint32_t i = 0; i < options_.threads; i++) {
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0 || listen(fd, 1024) < 0) {
      err = errno;
      what = "listen on " + options_.host + ":" + std::to_string(port);
      if (fd >= 0) close(fd);
      for (int f : fds) close(f);
      return 0;
    }
    if (i == 0) {
      sockaddr_storage bound{};
      socklen_t blen = sizeof bound;
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
      port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      // Port 0 picked a free port: the other threads bind that one.
      if (addr.ss_family == AF_INET6) {
        v6->sin6_port = htons(port);
      } else {
        v4->sin_port = htons(port);
      }
    }
    fds.push_back(fd);
  }
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

}  // namespace weightcache::http
