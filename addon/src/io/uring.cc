#include "io/uring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace weightcache::io {
namespace {

int SysSetup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}
int SysEnter(int fd, unsigned submit, unsigned wait, unsigned flags) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, submit, wait, flags, nullptr, 0));
}
int SysRegister(int fd, unsigned op, void* arg, unsigned n) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, n));
}

// The operations io::Loop submits; a kernel without one of them gets the
// thread-pool fallback instead of failing at the first read.
constexpr uint8_t kNeededOps[] = {IORING_OP_READ, IORING_OP_OPENAT, IORING_OP_NOP};

}  // namespace

std::unique_ptr<Uring> Uring::Create(unsigned entries, int* err, std::string* why) {
  std::unique_ptr<Uring> r(new Uring());
  io_uring_params p{};
  p.flags = IORING_SETUP_CLAMP;
  int fd = SysSetup(entries, &p);
  if (fd < 0) {
    *err = errno;
    *why = std::string("io_uring_setup failed: ") + std::strerror(errno);
    return nullptr;
  }
  r->fd_ = fd;
  // Without NODROP a full completion queue silently loses completions (pre-5.5 kernels).
  if (!(p.features & IORING_FEAT_NODROP)) {
    *err = EOPNOTSUPP;
    *why = "io_uring lacks IORING_FEAT_NODROP (kernel older than 5.5)";
    return nullptr;
  }
  r->sq_len_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = p.features & IORING_FEAT_SINGLE_MMAP;
  if (single) r->sq_len_ = r->cq_len_ = std::max(r->sq_len_, r->cq_len_);
  r->sq_ptr_ = mmap(nullptr, r->sq_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sq_ptr_ == MAP_FAILED) {
    r->sq_ptr_ = nullptr;
    *err = errno;
    *why = std::string("mmap of the io_uring submission ring failed: ") + std::strerror(errno);
    return nullptr;
  }
  if (single) {
    r->cq_ptr_ = r->sq_ptr_;
  } else {
    r->cq_ptr_ = mmap(nullptr, r->cq_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cq_ptr_ == MAP_FAILED) {
      r->cq_ptr_ = nullptr;
      *err = errno;
      *why = std::string("mmap of the io_uring completion ring failed: ") + std::strerror(errno);
      return nullptr;
    }
  }
  r->sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, r->sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    *err = errno;
    *why = std::string("mmap of the io_uring SQE array failed: ") + std::strerror(errno);
    return nullptr;
  }
  r->sqes_ = static_cast<io_uring_sqe*>(sqes);
  auto* sq = static_cast<uint8_t*>(r->sq_ptr_);
  auto* cq = static_cast<uint8_t*>(r->cq_ptr_);
  r->sq_head_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  r->sq_tail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  r->sq_array_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  r->sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  r->sq_entries_ = p.sq_entries;
  r->cq_head_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  r->cq_tail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  r->cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  r->cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  r->sqe_head_ = r->sqe_tail_ = *r->sq_tail_;

  // IORING_REGISTER_PROBE (5.6+): a kernel that cannot probe cannot read either.
  std::vector<uint8_t> probe_mem(sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op), 0);
  auto* probe = reinterpret_cast<io_uring_probe*>(probe_mem.data());
  if (SysRegister(fd, IORING_REGISTER_PROBE, probe, 256) < 0) {
    *err = errno == EINVAL ? EOPNOTSUPP : errno;
    *why = std::string("io_uring cannot probe its operations (kernel older than 5.6?): ") + std::strerror(errno);
    return nullptr;
  }
  for (uint8_t op : kNeededOps) {
    if (op > probe->last_op || !(probe->ops[op].flags & IO_URING_OP_SUPPORTED)) {
      *err = EOPNOTSUPP;
      *why = "io_uring lacks operation " + std::to_string(op) + " (kernel older than 5.6?)";
      return nullptr;
    }
  }
  return r;
}

Uring::~Uring() {
  if (sqes_) munmap(sqes_, sqes_len_);
  if (cq_ptr_ && cq_ptr_ != sq_ptr_) munmap(cq_ptr_, cq_len_);
  if (sq_ptr_) munmap(sq_ptr_, sq_len_);
  if (fd_ >= 0) close(fd_);
}

io_uring_sqe* Uring::GetSqe() {
  unsigned head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  if (sqe_tail_ - head >= sq_entries_) return nullptr;
  io_uring_sqe* sqe = &sqes_[sqe_tail_ & sq_mask_];
  sqe_tail_++;
  std::memset(sqe, 0, sizeof *sqe);
  return sqe;
}

int Uring::Submit(unsigned wait) {
  unsigned tail = *sq_tail_;
  unsigned n = sqe_tail_ - sqe_head_;
  for (unsigned i = 0; i < n; i++) {
    sq_array_[tail & sq_mask_] = sqe_head_ & sq_mask_;
    tail++;
    sqe_head_++;
  }
  __atomic_store_n(sq_tail_, tail, __ATOMIC_RELEASE);
  // Everything the kernel has not consumed yet, including SQEs a previous
  // call left behind (io_uring_enter may consume fewer than asked, e.g. EBUSY).
  unsigned pending = tail - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  unsigned flags = wait > 0 ? IORING_ENTER_GETEVENTS : 0;
  if (pending == 0 && wait == 0) return 0;
  for (;;) {
    int r = SysEnter(fd_, pending, wait, flags);
    if (r >= 0) return r;
    if (errno == EINTR) {
      if (wait > 0) return 0;  // a signal: let the caller reap and decide
      continue;
    }
    return -errno;
  }
}

int Uring::RegisterEventfd(int fd) {
  int v = fd;
  return SysRegister(fd_, IORING_REGISTER_EVENTFD, &v, 1) < 0 ? -errno : 0;
}

}  // namespace weightcache::io
