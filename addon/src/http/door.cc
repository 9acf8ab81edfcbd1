#include "http/door.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace weightcache::http
