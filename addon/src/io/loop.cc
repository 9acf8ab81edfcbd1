#include "io/loop.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "io/uring.h"

namespace weightcache::io {

void Loop::ClearEventfd() {
  uint64_t v;
  while (read(efd_, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void Loop::Wait(int timeout_ms) {
  pollfd p{efd_, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
  }
}

void Loop::Drain() {
  while (!waiting_.empty()) {
    Op* op = waiting_.front();
    waiting_.pop_front();
    op->result = -ECANCELED;
    op->done(op);
  }
  while (in_flight_ > 0) {
    Wait(100);
    // Poll also starts what `done` submits; cancel that too, or draining never ends.
    Poll();
    while (!waiting_.empty()) {
      Op* op = waiting_.front();
      waiting_.pop_front();
      op->result = -ECANCELED;
      op->done(op);
    }
  }
}

namespace {

// --- io_uring ---------------------------------------------------------------

class UringLoop final : public Loop {
 public:
  UringLoop(std::unique_ptr<Uring> ring, unsigned depth, int efd) : Loop(depth, efd), ring_(std::move(ring)) {}
  ~UringLoop() override {
    Drain();
    ring_.reset();
    close(efd_);
  }

  void Flush() override {
    while (!waiting_.empty() && in_flight_ < depth_) {
      io_uring_sqe* sqe = ring_->GetSqe();
      if (!sqe) {
        ring_->Submit();
        sqe = ring_->GetSqe();
        if (!sqe) break;  // the kernel has not consumed the ring yet: next Flush
      }
      Op* op = waiting_.front();
      waiting_.pop_front();
      Prepare(sqe, op);
      in_flight_++;
    }
    // A failed io_uring_enter (EAGAIN, EBUSY under memory pressure) leaves the
    // SQEs in the ring; Submit hands them over again on the next Flush.
    if (ring_->unsubmitted() > 0) ring_->Submit();
  }

  unsigned Poll() override {
    ClearEventfd();
    unsigned n = ring_->Reap([this](uint64_t data, int32_t res) { Complete(reinterpret_cast<Op*>(data), res); });
    Flush();
    return n;
  }

  const char* backend() const override { return "io_uring"; }

 private:
  static void Prepare(io_uring_sqe* sqe, Op* op) {
    sqe->user_data = reinterpret_cast<uint64_t>(op);
    switch (op->kind) {
      case Op::kRead:
        sqe->opcode = IORING_OP_READ;
        sqe->fd = op->fd;
        sqe->addr = reinterpret_cast<uint64_t>(op->buf);
        sqe->len = op->len;
        sqe->off = op->offset;
        break;
      case Op::kOpen:
        sqe->opcode = IORING_OP_OPENAT;
        sqe->fd = AT_FDCWD;
        sqe->addr = reinterpret_cast<uint64_t>(op->path);
        sqe->open_flags = static_cast<uint32_t>(op->flags | O_CLOEXEC);
        sqe->len = 0;  // mode: never creates
        break;
    }
  }

  std::unique_ptr<Uring> ring_;
};

// --- thread pool ------------------------------------------------------------

class ThreadLoop final : public Loop {
 public:
  ThreadLoop(unsigned depth, unsigned threads, int efd) : Loop(depth, efd) {
    for (unsigned i = 0; i < threads; i++) workers_.emplace_back([this] { Work(); });
  }
  ~ThreadLoop() override {
    Drain();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    close(efd_);
  }

  void Flush() override {
    bool any = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!waiting_.empty() && in_flight_ < depth_) {
        todo_.push_back(waiting_.front());
        waiting_.pop_front();
        in_flight_++;
        any = true;
      }
    }
    if (any) cv_.notify_all();
  }

  unsigned Poll() override {
    ClearEventfd();
    std::vector<std::pair<Op*, int32_t>> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready.swap(done_);
    }
    for (auto& [op, res] : ready) Complete(op, res);
    Flush();
    return static_cast<unsigned>(ready.size());
  }

  const char* backend() const override { return "threads"; }

 private:
  void Work() {
    for (;;) {
      Op* op;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
        if (todo_.empty()) return;  // stopping, nothing left
        op = todo_.front();
        todo_.pop_front();
      }
      int32_t res = Run(op);
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_.emplace_back(op, res);
      }
      uint64_t one = 1;
      while (write(efd_, &one, sizeof one) < 0 && errno == EINTR) {
      }
    }
  }

  static int32_t Run(Op* op) {
    for (;;) {
      ssize_t r;
      if (op->kind == Op::kRead) {
        r = pread(op->fd, op->buf, op->len, static_cast<off_t>(op->offset));
      } else {
        r = open(op->path, op->flags | O_CLOEXEC);
      }
      if (r >= 0) return static_cast<int32_t>(r);
      if (errno != EINTR) return -errno;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op*> todo_;
  std::vector<std::pair<Op*, int32_t>> done_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<Loop> Loop::Create(const LoopOptions& o, std::string* fallback_reason) {
  unsigned depth = o.queue_depth < 1 ? 1 : o.queue_depth;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return nullptr;
  if (!o.force_threads) {
    int err = 0;
    std::string why;
    // Twice the depth: completions of one batch never crowd out the next one's submissions.
    std::unique_ptr<Uring> ring = Uring::Create(depth * 2, &err, &why);
    if (ring) {
      int r = ring->RegisterEventfd(efd);
      if (r == 0) return std::make_unique<UringLoop>(std::move(ring), depth, efd);
      why = std::string("io_uring cannot signal an eventfd: ") + std::strerror(-r);
    }
    *fallback_reason = why;
  } else {
    *fallback_reason = "the thread pool was asked for";
  }
  return std::make_unique<ThreadLoop>(depth, o.threads < 1 ? 1 : o.threads, efd);
}

}  // namespace weightcache::io
