#include "http/door.h"

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

}  // namespace weightcache::http
