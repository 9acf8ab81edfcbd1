#include "http/door.h"

#include <algorithm>

#include "http/worker.h"

namespace weightcache::http {

HttpDoor::HttpDoor(DoorOptions options, std::function<void()> notify, void (*drop_pin)(void*))
    : DoorBase(std::move(options), std::move(notify), drop_pin), governor_(*this) {}

HttpDoor::~HttpDoor() { StopWorkers(); }  // before the governor the workers use goes

uint16_t HttpDoor::Start(int& err, std::string& what) { return StartWorkers(*this, err, what); }

void HttpDoor::Respond(Answer&& a) {
  HttpWorker* w = worker(net::WorkerOf(a.id));
  if (!w) {
    for (BodyPart& p : a.body) DropPin(p.pin);
    return;
  }
  w->Submit(std::move(a));
}

void HttpDoor::PostAccess(std::vector<AccessRecord>& batch) {
  net::AdmitAccess(batch, stats().access_pending, stats().access_dropped);
  if (!batch.empty()) {
    DoorEvent e;
    e.kind = DoorEvent::kAccess;
    e.access.swap(batch);
    Post(std::move(e));
  }
  batch.clear();
}

bool HttpDoor::EvictElsewhere(uint32_t from, bool unauthenticated, int64_t since_ms) {
  HttpWorker* best = nullptr;
  int64_t best_since = since_ms;
  for (size_t i = 0; i < worker_count(); i++) {
    if (i == from) continue;
    int64_t s = worker(i)->IdleSince(unauthenticated);
    if (s < best_since) {
      best = worker(i);
      best_since = s;
    }
  }
  if (!best) return false;
  Answer a;
  a.evict_idle = true;
  a.evict_unauthenticated = unauthenticated;
  best->Submit(std::move(a));
  return true;
}

void HttpDoor::FastDurations(std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count) {
  for (size_t i = 0; i < worker_count(); i++) worker(i)->durations().AddTo(counts, sum_ns, count);
}

}  // namespace weightcache::http
