#include "net/event_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace weightcache::net {

namespace {
constexpr uint64_t kDoorbellId = 0;
constexpr uint64_t kListenerId = 1;
constexpr int kMaxEvents = 64;
}  // namespace

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string PeerName(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    port = ntohs(v6->sin6_port);
  }
  return std::string(buf) + ":" + std::to_string(port);
}

uint16_t ListenReusePort(const std::string& host, uint16_t port, uint32_t n, std::vector<int>& fds, int& err,
                         std::string& what) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    err = EINVAL;
    what = "host must be an IP address, got " + host;
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0 || listen(fd, 1024) < 0) {
      err = errno;
      what = "listen on " + host + ":" + std::to_string(port);
      if (fd >= 0) close(fd);
      for (int f : fds) close(f);
      fds.clear();
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
  return port;
}

EventLoop::EventLoop(int listen_fd) : listen_fd_(listen_fd) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  Add(evfd_, kDoorbellId, EPOLLIN);
  if (listen_fd_ >= 0) Add(listen_fd_, kListenerId, EPOLLIN);
}

EventLoop::~EventLoop() {
  if (listen_fd_ >= 0) close(listen_fd_);
  close(evfd_);
  close(epfd_);
}

void EventLoop::Wake() {
  if (rung_.exchange(true)) return;  // already rung: the loop will see everything queued so far
  uint64_t one = 1;
  ssize_t r = write(evfd_, &one, sizeof one);
  (void)r;  // EAGAIN only when the counter is saturated: the loop is awake anyway
}

void EventLoop::Stop() {
  stop_ = true;
  rung_ = false;
  Wake();
}

void EventLoop::Add(int fd, uint64_t id, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::Modify(int fd, uint64_t id, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::Run(Handler& h) {
  epoll_event evs[kMaxEvents];
  while (!stop_) {
    // Timeouts are swept on a short tick while there are connections to watch.
    int n = epoll_wait(epfd_, evs, kMaxEvents, h.HasWork() || listener_resting_ ? static_cast<int>(kTickMs) : -1);
    if (n < 0 && errno != EINTR) break;
    now_ms_ = NowMs();
    for (int i = 0; i < n; i++) {
      uint64_t id = evs[i].data.u64;
      if (id == kDoorbellId) {
        uint64_t v;
        ssize_t r = read(evfd_, &v, sizeof v);
        (void)r;
        if (stop_) return;
        rung_ = false;  // before taking the work: what is queued from now on rings again
        h.OnWake();
      } else if (id == kListenerId && listen_fd_ >= 0) {
        for (;;) {
          sockaddr_storage addr{};
          socklen_t len = sizeof addr;
          int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
              // Out of descriptors: the listener stays readable, so it is set aside until the
              // next tick instead of waking this loop in a spin; the kernel queues the clients.
              Modify(listen_fd_, kListenerId, 0);
              listener_resting_ = true;
            }
            break;
          }
          h.OnAccept(fd, addr);
        }
      } else {
        h.OnReady(id, evs[i].events);
      }
    }
    h.AfterEvents();
    if (now_ms_ - last_tick_ms_ >= kTickMs) {
      last_tick_ms_ = now_ms_;
      if (listener_resting_) {
        listener_resting_ = false;
        Modify(listen_fd_, kListenerId, EPOLLIN);
      }
      h.OnTick(now_ms_);
    }
  }
}

}  // namespace weightcache::net
