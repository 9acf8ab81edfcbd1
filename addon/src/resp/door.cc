#include "resp/door.h"

#include "resp/worker.h"

namespace weightcache::resp {

RespDoor::RespDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*))
    : DoorBase(std::move(options), std::move(notify), drop_pin) {}

RespDoor::~RespDoor() { StopWorkers(); }

uint16_t RespDoor::Start(int& err, std::string& what) { return StartWorkers(*this, err, what); }

void RespDoor::Deliver(std::vector<Send>&& batch) {
  std::vector<std::vector<Send>> per(worker_count());
  for (Send& s : batch) {
    uint64_t index = net::WorkerOf(s.conn);
    if (index >= per.size()) {
      for (Piece& p : s.pieces) DropPin(p.pin);
      continue;
    }
    per[index].push_back(std::move(s));
  }
  for (size_t i = 0; i < per.size(); i++) {
    if (!per[i].empty()) worker(i)->Submit(per[i]);
  }
}

void RespDoor::FastDurations(std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count) {
  for (size_t i = 0; i < worker_count(); i++) worker(i)->durations().AddTo(counts, sum_ns, count);
}

}  // namespace weightcache::resp
