// What every native door (HTTP, RESP) shares below its protocol: N I/O
// threads, each with its own event loop (event_loop.h) and SO_REUSEPORT
// listener; the counters every door keeps; the queue of events the threads
// hand to JavaScript (one wake-up call when it goes from empty to non-empty);
// the inbox each thread takes JavaScript's work from; the pins on JavaScript
// Buffers; and the id scheme that lets an answer find its thread without a
// shared table. A door (http/door.h, resp/door.h) is a DoorBase with its own
// options, events and worker; a worker is a WorkerThread with its protocol.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/event_loop.h"

namespace weightcache::net {

// Request and connection ids carry the worker's index in bits 48..52, so an
// answer finds its worker without a shared table; JavaScript numbers hold them
// exactly (< 2^53).
constexpr int kWorkerShift = 48;
constexpr uint32_t kMaxThreads = 32;
constexpr uint64_t kLocalMask = (uint64_t{1} << kWorkerShift) - 1;
inline uint64_t WireId(uint32_t worker, uint64_t local) { return (uint64_t{worker} << kWorkerShift) | local; }
inline uint64_t WorkerOf(uint64_t wire) { return wire >> kWorkerShift; }
inline uint64_t LocalOf(uint64_t wire) { return wire & kLocalMask; }

// Counters every door keeps (its DoorStats adds its own); read by JavaScript
// through SetCounters (door_js.h).
struct DoorCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_rejected{0};  // over max_connections
  std::atomic<int64_t> connections_open{0};
  std::atomic<int64_t> in_flight{0};              // posted to JavaScript and not yet answered (or abandoned)
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<int64_t> pinned_buffers{0};         // JavaScript Buffers referenced until written
  std::atomic<int64_t> buffered_bytes{0};         // answer bytes queued, all connections
  std::atomic<uint64_t> paused_reads{0};          // times a connection stopped reading at a bound
};

// The door's side shared by its workers and the JavaScript thread. `Options`
// has host, port, threads and max_connections; `Event` has `kind` (with a
// kRelease kind carrying `pin`); `Worker` is built as Worker(door, index,
// listen_fd) and has Start(); `Stats` derives from DoorCounters. The door
// itself defines, in its .cc where Worker is complete, `uint16_t Start(int&
// err, std::string& what)` (StartWorkers: binds one socket per thread and
// starts the workers; the port, or 0 with errno-like `err` and a message) and
// a destructor that calls StopWorkers.
template <class Options, class Event, class Worker, class Stats>
class DoorBase {
 public:
  // `notify` runs on a worker when the event queue goes from empty to
  // non-empty; it must only schedule a drain on the JavaScript thread.
  // `drop_pin` releases pins left over at shutdown (called on the destroying thread).
  DoorBase(Options options, std::function<void()> notify, void (*drop_pin)(void*))
      : options_(std::move(options)), notify_(std::move(notify)), drop_pin_(drop_pin) {}
  ~DoorBase() = default;  // the door's destructor (in its .cc) calls StopWorkers
  DoorBase(const DoorBase&) = delete;
  DoorBase& operator=(const DoorBase&) = delete;

  std::vector<Event> TakeEvents() {
    std::vector<Event> out;
    std::lock_guard<std::mutex> lock(ev_mu_);
    out.swap(events_);
    return out;
  }
  Stats& stats() { return stats_; }
  const Options& options() const { return options_; }

  // Used by workers (any thread).
  void Post(Event&& e) {
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(ev_mu_);
      was_empty = events_.empty();
      events_.push_back(std::move(e));
    }
    if (was_empty) notify_();
  }
  void PostBatch(std::vector<Event>& events) {
    if (events.empty()) return;
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(ev_mu_);
      was_empty = events_.empty();
      for (Event& e : events) events_.push_back(std::move(e));
    }
    events.clear();
    if (was_empty) notify_();
  }
  // Counts a connection against max_connections; false: over it.
  bool TryOpenConnection() {
    int64_t open = stats_.connections_open.fetch_add(1) + 1;
    if (open > static_cast<int64_t>(options_.max_connections)) {
      stats_.connections_open--;
      return false;
    }
    return true;
  }
  void CloseConnection() { stats_.connections_open--; }
  void DropPin(void* pin) {
    if (!pin) return;
    if (drop_pin_) drop_pin_(pin);
    stats_.pinned_buffers--;
  }

 protected:
  // The body of Start, for the door's .cc, where `Worker` is complete; `self` is the door.
  template <class Door>
  uint16_t StartWorkers(Door& self, int& err, std::string& what) {
    std::vector<int> fds;
    uint16_t port = ListenReusePort(options_.host, options_.port, options_.threads, fds, err, what);
    if (port == 0) return 0;
    for (uint32_t i = 0; i < options_.threads; i++) workers_.push_back(std::make_unique<Worker>(self, i, fds[i]));
    for (auto& w : workers_) w->Start();
    return port;
  }
  // Joins every worker (each drops the pins it still held) and drops the
  // release events nobody took: first in the door's destructor.
  void StopWorkers() {
    workers_.clear();
    for (Event& e : events_) {
      if (e.kind == Event::kRelease) DropPin(e.pin);
    }
    events_.clear();
  }
  Worker* worker(uint64_t index) { return index < workers_.size() ? workers_[index].get() : nullptr; }
  size_t worker_count() const { return workers_.size(); }

 private:
  Options options_;
  std::function<void()> notify_;
  void (*drop_pin_)(void*);
  Stats stats_;
  std::mutex ev_mu_;
  std::vector<Event> events_;  // under ev_mu_
  std::vector<std::unique_ptr<Worker>> workers_;
};

// An I/O thread: its event loop, the thread running it, and the inbox of work
// JavaScript hands it (taken under a mutex when the doorbell rings). The
// protocol's worker derives from it and is the loop's Handler.
template <class Item>
class WorkerThread : public EventLoop::Handler {
 public:
  explicit WorkerThread(int listen_fd) : loop_(listen_fd) {}
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  void Start() {
    thread_ = std::thread([this] { loop_.Run(*this); });
  }
  // From the JavaScript thread: queued in order, then the doorbell.
  void Submit(Item&& item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inbox_.push_back(std::move(item));
    }
    loop_.Wake();
  }
  void Submit(std::vector<Item>& items) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Item& i : items) inbox_.push_back(std::move(i));
    }
    items.clear();
    loop_.Wake();
  }

 protected:
  // The derived worker's destructor calls this first: after it, what the
  // thread held is the caller's to drop.
  void Join() {
    loop_.Stop();
    if (thread_.joinable()) thread_.join();
  }
  // On the worker's thread (or after Join): what JavaScript handed over since the last call.
  std::vector<Item> TakeInbox() {
    std::vector<Item> batch;
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(inbox_);
    return batch;
  }

  EventLoop loop_;

 private:
  std::mutex mu_;
  std::vector<Item> inbox_;  // under mu_
  std::thread thread_;
};

}  // namespace weightcache::net
