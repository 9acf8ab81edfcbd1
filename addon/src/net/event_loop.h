// The event loop of a native door's I/O thread, shared by the HTTP and RESP
// doors: one epoll instance watching an eventfd doorbell (work from the
// JavaScript thread), the thread's own SO_REUSEPORT listening socket, and the
// connections the door registers, plus a short tick for timeouts while there
// are connections. The door's worker is the Handler: the loop knows nothing
// of any protocol. Also here: binding the listening sockets of N threads to
// one address, and naming a peer.
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace weightcache::net {

int64_t NowMs();  // CLOCK_MONOTONIC
int64_t NowNs();  // CLOCK_MONOTONIC
std::string PeerName(const sockaddr_storage& a);  // "1.2.3.4:5678" or "::1:5678"

// Binds `n` listening sockets to host:port with SO_REUSEPORT (the kernel
// spreads new connections over them; no accept thread, no lock). Port 0 picks
// one free port for all. Returns the port, or 0 with `err` (errno) and `what`.
uint16_t ListenReusePort(const std::string& host, uint16_t port, uint32_t n, std::vector<int>& fds, int& err,
                         std::string& what);

class EventLoop {
 public:
  struct Handler {
    virtual ~Handler() = default;
    virtual void OnWake() = 0;                                         // the doorbell rang
    virtual void OnAccept(int fd, const sockaddr_storage& peer) = 0;   // non-blocking, close-on-exec
    virtual void OnReady(uint64_t id, uint32_t events) = 0;            // a registered fd's epoll events
    virtual void OnTick(int64_t now_ms) = 0;                           // every kTickMs while HasWork()
    virtual bool HasWork() const = 0;                                  // connections to watch
    virtual void AfterEvents() {}                                      // once per wakeup, after the events
  };
  static constexpr uint64_t kFirstId = 2;  // ids 0 and 1 are the doorbell and the listener
  static constexpr int64_t kTickMs = 50;

  // Takes the listening socket; -1: none (a loop whose owner registers its own listening sockets
  // with Add and accepts on them in OnReady, as the transport does).
  explicit EventLoop(int listen_fd);
  ~EventLoop();                       // closes it, the doorbell and epoll
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The owner thread: runs until Stop().
  void Run(Handler& h);
  // Any thread.
  void Wake();
  void Stop();

  // The owner thread.
  void Add(int fd, uint64_t id, uint32_t events);
  void Modify(int fd, uint64_t id, uint32_t events);
  void Remove(int fd);
  int64_t now_ms() const { return now_ms_; }

 private:
  int listen_fd_;
  int epfd_ = -1;
  int evfd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> rung_{false};  // the doorbell rang and the loop has not answered yet: no second write
  bool listener_resting_ = false;  // accept ran out of descriptors: re-armed at the next tick
  int64_t now_ms_ = 0;
  int64_t last_tick_ms_ = 0;
};

}  // namespace weightcache::net
