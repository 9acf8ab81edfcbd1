// An I/O event loop owned by one thread: it submits operations and runs
// their completions on that thread, never blocking it on a device. Backed by
// io_uring (io/uring.h) or, where io_uring is unavailable (an old kernel,
// seccomp, kernel.io_uring_disabled, or forced), by a small pool of threads
// doing the same system calls (pread, open). Either way the owner sees the
// same thing: Submit, then `done` runs on the owner thread inside Poll.
//
// The owner drives it in one of two ways:
// - as part of another loop: wait for event_fd() to become readable (libuv
//   uv_poll, epoll), then Poll(); Flush() before blocking (libuv prepare);
// - as its own thread's loop: Wait() then Poll(), in a loop.
//
// At most `queue_depth` operations are in flight (enough to keep an NVMe
// device busy, few enough to bound kernel work and pinned buffers); later
// submissions wait in order. The buffers and paths an operation points at
// must live until its `done` has run.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace weightcache::io {

struct Op {
  enum Kind : uint8_t { kRead, kOpen } kind = kRead;
  int fd = -1;              // kRead
  uint8_t* buf = nullptr;   // kRead: destination
  uint32_t len = 0;         // kRead
  uint64_t offset = 0;      // kRead: file offset
  const char* path = nullptr;  // kOpen
  int flags = 0;               // kOpen: open(2) flags; O_CLOEXEC is always added
  int32_t result = 0;          // bytes read, the new fd, or -errno
  void (*done)(Op*) = nullptr;  // runs on the owner thread (may submit more)
  void* user = nullptr;
};

struct LoopOptions {
  unsigned queue_depth = 32;
  bool force_threads = false;  // skip io_uring (tests, or a kernel where it misbehaves)
  unsigned threads = 4;        // the fallback pool
};

class Loop {
 public:
  // io_uring if it can be set up, else the thread pool; `fallback_reason`
  // says why the pool was chosen (empty when io_uring is in use).
  static std::unique_ptr<Loop> Create(const LoopOptions& options, std::string* fallback_reason);
  // Drain()s first: the kernel or a worker may still be writing into buffers.
  virtual ~Loop() = default;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Owner thread. Queues `op`; it starts at the next Flush/Poll.
  void Submit(Op* op) { waiting_.push_back(op); }
  // Owner thread. Starts queued operations while fewer than queue_depth are in flight.
  virtual void Flush() = 0;
  // Owner thread. Runs the completions that are ready, then flushes; never blocks.
  virtual unsigned Poll() = 0;
  // Owner thread. Blocks until a completion may be ready, or `timeout_ms` (-1: no limit).
  void Wait(int timeout_ms);
  // Owner thread. Completes every operation: waits for those in flight and
  // fails those still queued with -ECANCELED, running `done` for each. A
  // `done` that submits again after -ECANCELED would keep it draining: don't.
  void Drain();

  // Readable when Poll has completions to run (an eventfd).
  int event_fd() const { return efd_; }
  unsigned in_flight() const { return in_flight_; }
  size_t queued() const { return waiting_.size(); }
  unsigned queue_depth() const { return depth_; }
  virtual const char* backend() const = 0;  // "io_uring" or "threads"

 protected:
  Loop(unsigned depth, int efd) : depth_(depth), efd_(efd) {}
  void Complete(Op* op, int32_t result) {
    in_flight_--;
    op->result = result;
    op->done(op);
  }
  void ClearEventfd();

  std::deque<Op*> waiting_;
  unsigned in_flight_ = 0;
  unsigned depth_;
  int efd_;
};

}  // namespace weightcache::io
