#include "resp/door.h"

#include <unistd.h>

#include "net/event_loop.h"
#include "resp/worker.h"

namespace weightcache::resp {

RespDoor::RespDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*))
    : options_(std::move(options)), notify_(std::move(notify)), drop_pin_(drop_pin) {}

RespDoor::~RespDoor() {
  workers_.clear();  // joins each thread; each drops the pins it still held
  for (DoorEvent& e : events_) {
    if (e.kind == DoorEvent::kRelease) DropPin(e.pin);
  }
  events_.clear();
}

void RespDoor::DropPin(void* pin) {
  if (!pin) return;
  if (drop_pin_) drop_pin_(pin);
  stats_.pinned_buffers--;
}

uint16_t RespDoor::Start(int& err, std::string& what) {
  std::vector<int> fds;
  uint16_t port = net::ListenReusePort(options_.host, options_.port, options_.threads, fds, err, what);
  if (port == 0) return 0;
  for (uint32_t i = 0; i < options_.threads; i++) workers_.push_back(std::make_unique<RespWorker>(*this, i, fds[i]));
  for (auto& w : workers_) w->Start();
  return port;
}

void RespDoor::Deliver(std::vector<Send>&& batch) {
  std::vector<std::vector<Send>> per(workers_.size());
  for (Send& s : batch) {
    uint64_t index = s.conn >> kWorkerShift;
    if (index >= workers_.size()) {
      for (Piece& p : s.pieces) DropPin(p.pin);
      continue;
    }
    per[index].push_back(std::move(s));
  }
  for (size_t i = 0; i < per.size(); i++) {
    if (!per[i].empty()) workers_[i]->Submit(per[i]);
  }
}

std::vector<DoorEvent> RespDoor::TakeEvents() {
  std::vector<DoorEvent> out;
  std::lock_guard<std::mutex> lock(ev_mu_);
  out.swap(events_);
  return out;
}

void RespDoor::Post(DoorEvent&& e) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(ev_mu_);
    was_empty = events_.empty();
    events_.push_back(std::move(e));
  }
  if (was_empty) notify_();
}

void RespDoor::PostBatch(std::vector<DoorEvent>& events) {
  if (events.empty()) return;
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(ev_mu_);
    was_empty = events_.empty();
    for (DoorEvent& e : events) events_.push_back(std::move(e));
  }
  events.clear();
  if (was_empty) notify_();
}

bool RespDoor::TryOpenConnection() {
  int64_t open = stats_.connections_open.fetch_add(1) + 1;
  if (open > static_cast<int64_t>(options_.max_connections)) {
    stats_.connections_open--;
    return false;
  }
  return true;
}

}  // namespace weightcache::resp
