// A thin io_uring wrapper over the raw system calls (io_uring_setup,
// io_uring_enter, io_uring_register) and the kernel's uapi header, with no
// library: the rings are mmap'ed here, and submission/completion follow the
// kernel's documented memory ordering (release store of the SQ tail, acquire
// load of the CQ tail, release store of the CQ head).
//
// One Uring belongs to one thread (it is not locked). It knows nothing about
// what the operations mean: a caller fills SQEs (GetSqe) with its own
// user_data, calls Submit, and reaps CQEs (Reap). io::Loop builds file reads
// on it; the native HTTP door's event loop can put socket operations on the
// same kind of ring.
#pragma once
#include <linux/io_uring.h>

#include <cstdint>
#include <memory>
#include <string>

namespace weightcache::io {

class Uring {
 public:
  // A ring with at least `entries` submission slots (rounded up to a power
  // of two by the kernel), or nullptr with the reason in *why and the errno
  // in *err: ENOSYS (no io_uring in this kernel or a seccomp filter), EPERM
  // (kernel.io_uring_disabled, container policy), ENOMEM (locked-memory limit
  // on old kernels), or EOPNOTSUPP when an operation we need is missing.
  static std::unique_ptr<Uring> Create(unsigned entries, int* err, std::string* why);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // A zeroed SQE to fill, or nullptr when every slot is taken (Submit first).
  io_uring_sqe* GetSqe();
  // Hands the filled SQEs to the kernel; with `wait` > 0 also blocks until
  // that many completions are available. Returns the SQEs consumed or -errno.
  int Submit(unsigned wait = 0);
  // Calls fn(user_data, res) for each completion ready now; returns how many.
  template <class F>
  unsigned Reap(F&& fn) {
    unsigned head = *cq_head_;
    unsigned n = 0;
    for (;;) {
      unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
      if (head == tail) break;
      const io_uring_cqe& cqe = cqes_[head & cq_mask_];
      uint64_t data = cqe.user_data;
      int32_t res = cqe.res;
      head++;
      __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);  // the slot is free before fn may submit more
      fn(data, res);
      n++;
    }
    return n;
  }
  // Signals `fd` (an eventfd) whenever a completion is posted, so another
  // loop (libuv, epoll) can wait for this ring's completions.
  int RegisterEventfd(int fd);
  unsigned sq_entries() const { return sq_entries_; }
  // SQEs the kernel has not consumed yet (filled here, or published and left
  // behind by an io_uring_enter that consumed fewer).
  unsigned unsubmitted() const { return sqe_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE); }
  int fd() const { return fd_; }

 private:
  Uring() = default;
  int fd_ = -1;
  void* sq_ptr_ = nullptr;
  size_t sq_len_ = 0;
  void* cq_ptr_ = nullptr;
  size_t cq_len_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_len_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  unsigned cq_mask_ = 0;
  // SQEs handed out by GetSqe but not yet published to the kernel.
  unsigned sqe_head_ = 0;
  unsigned sqe_tail_ = 0;
};

}  // namespace weightcache::io
