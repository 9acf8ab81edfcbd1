#include "fuse/session.h"

#include "store/store.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "fuse/reply.h"

namespace weightcache::fuse {
namespace {

// A worker's read buffer: the kernel refuses reads smaller than
// max(FUSE_MIN_READ_BUFFER, headers + max_write). Nothing here is written to,
// so max_write stays small and so does the buffer.
constexpr uint32_t kMaxWrite = 64 * 1024;
constexpr size_t kReadBuffer = kMaxWrite + 4096;
constexpr uint32_t kMinMinor = 12;  // fuse_entry_out/fuse_attr_out in their current sizes
constexpr uint32_t kPageBytes = 4096;

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool NeedsControlPlane(uint32_t op) {
  switch (op) {
    case FUSE_LOOKUP:
    case FUSE_GETATTR:
    case FUSE_OPEN:
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READLINK:
      return true;
    default:
      return false;
  }
}

bool IsWrite(uint32_t op) {
  switch (op) {
    case FUSE_SETATTR:
    case FUSE_SYMLINK:
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_UNLINK:
    case FUSE_RMDIR:
    case FUSE_RENAME:
    case FUSE_LINK:
    case FUSE_WRITE:
    case FUSE_SETXATTR:
    case FUSE_REMOVEXATTR:
    case FUSE_CREATE:
    case FUSE_FALLOCATE:
    case FUSE_RENAME2:
    case FUSE_COPY_FILE_RANGE:
    case FUSE_TMPFILE:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::unique_ptr<Session> Session::Start(const SessionOptions& o, Post post, std::string* err) {
  std::unique_ptr<Session> s(new Session(o, std::move(post)));
  s->fd_ = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (s->fd_ < 0) {
    *err = std::string("open /dev/fuse: ") + std::strerror(errno);
    return nullptr;
  }
  std::string data = "fd=" + std::to_string(s->fd_) + ",rootmode=40000,user_id=" + std::to_string(o.uid) +
                     ",group_id=" + std::to_string(o.gid) + ",max_read=" + std::to_string(o.max_read) +
                     ",default_permissions";
  if (o.allow_other) data += ",allow_other";
  if (mount("weightcache", o.path.c_str(), "fuse.weightcache", MS_NOSUID | MS_NODEV | MS_RDONLY | MS_NOATIME,
            data.c_str()) != 0) {
    *err = "mount " + o.path + ": " + std::strerror(errno);
    close(s->fd_);
    s->fd_ = -1;
    return nullptr;
  }
  s->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd_ < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    s->Stop();
    return nullptr;
  }
  int n = std::clamp(o.threads, 1, 64);
  for (int i = 0; i < n; i++) s->workers_.emplace_back([p = s.get()] { p->Worker(); });
  s->reaper_ = std::thread([p = s.get()] { p->Reaper(); });
  return s;
}

Session::~Session() { Stop(); }

void Session::Stop() {
  if (stopping_.exchange(true)) return;
  // Lazy: a process with a file open keeps its descriptor until it closes it;
  // closing fd_ below then aborts the connection (its reads fail with ENOTCONN).
  if (fd_ >= 0) umount2(opts_.path.c_str(), MNT_DETACH);
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaper_cv_.notify_all();
  }
  if (reaper_.joinable()) reaper_.join();
  if (fd_ >= 0) close(fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  fd_ = stop_fd_ = -1;
}

void Session::Worker() {
  std::vector<uint8_t> buf(kReadBuffer);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (!stopping_.load(std::memory_order_relaxed)) {
    int pr = poll(fds, 2, -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    ssize_t n = read(fd_, buf.data(), buf.size());
    if (n < 0) {
      // EAGAIN: another worker took it. ENOENT: the request was interrupted before we read it.
      if (errno == EAGAIN || errno == EINTR || errno == ENOENT) continue;
      // ENODEV: unmounted (umount, or the kernel aborted the connection). Wake the other workers.
      uint64_t one = 1;
      (void)!write(stop_fd_, &one, sizeof one);
      break;
    }
    Handle(buf.data(), static_cast<size_t>(n));
  }
}

void Session::Handle(const uint8_t* buf, size_t len) {
  Request r;
  const char* why = Decode(buf, len, r);
  stats_.requests++;
  if (why) {
    stats_.protocol_errors++;
    // Answer what can be answered (a header with a unique), so the caller is not left waiting.
    if (len >= sizeof(fuse_in_header) && r.opcode != FUSE_FORGET && r.opcode != FUSE_BATCH_FORGET) {
      Write(r.unique, EIO, nullptr, 0);
    }
    return;
  }
  switch (r.opcode) {
    case FUSE_INIT:
      Init(r);
      return;
    case FUSE_DESTROY:
    case FUSE_RELEASEDIR:
    case FUSE_FLUSH:
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR:
      Write(r.unique, 0, nullptr, 0);
      return;
    case FUSE_STATFS: {
      fuse_statfs_out s{};
      s.st.bsize = s.st.frsize = kPageBytes;
      s.st.namelen = 255;
      iovec iov{&s, sizeof s};
      Write(r.unique, 0, &iov, 1);
      return;
    }
    case FUSE_OPENDIR: {
      // Directories above a snapshot change with the origin: no FOPEN_CACHE_DIR.
      fuse_open_out o{};
      iovec iov{&o, sizeof o};
      Write(r.unique, 0, &iov, 1);
      return;
    }
    case FUSE_INTERRUPT:
      // ENOSYS tells the kernel not to send interrupts again: every request here ends by a
      // reply or the reaper's timeout anyway.
      Write(r.unique, ENOSYS, nullptr, 0);
      return;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
      stats_.posted++;
      post_(std::move(r));  // no reply: the kernel only tells us
      return;
    case FUSE_RELEASE:
      Unbind(r.fh);
      Write(r.unique, 0, nullptr, 0);
      stats_.posted++;
      post_(std::move(r));  // JS drops the open file's pin; nothing to wait for
      return;
    default:
      break;
  }
  if (IsWrite(r.opcode)) {
    Write(r.unique, EROFS, nullptr, 0);
    return;
  }
  if (r.opcode == FUSE_OPEN && (r.flags & O_ACCMODE) != O_RDONLY) {
    Write(r.unique, EROFS, nullptr, 0);
    return;
  }
  if (r.opcode == FUSE_READ && FastRead(r)) return;
  if (!NeedsControlPlane(r.opcode)) {
    Write(r.unique, ENOSYS, nullptr, 0);  // GETXATTR, ACCESS, LSEEK, READDIRPLUS (not negotiated)...
    return;
  }
  bool accepted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepted = pending_.size() < opts_.max_pending;
    if (accepted) pending_.emplace(r.unique, NowMs() + opts_.timeout_ms);
  }
  if (!accepted) {
    stats_.refused++;
    Write(r.unique, EIO, nullptr, 0);
    return;
  }
  stats_.posted++;
  post_(std::move(r));
}

void Session::Init(const Request& r) {
  if (r.init_major != FUSE_KERNEL_VERSION || r.init_minor < kMinMinor) {
    stats_.protocol_errors++;
    Write(r.unique, EPROTO, nullptr, 0);
    return;
  }
  uint32_t minor = std::min<uint32_t>(r.init_minor, FUSE_KERNEL_MINOR_VERSION);
  minor_ = minor;
  fuse_init_out o{};
  o.major = FUSE_KERNEL_VERSION;
  o.minor = minor;
  o.max_readahead = std::min(r.init_max_readahead, opts_.max_readahead);
  // ASYNC_READ: readahead and several READs of one file at once. MAX_PAGES: READs of
  // max_read bytes instead of 128 KiB. PARALLEL_DIROPS: lookups in one directory in parallel.
  // Not AUTO_INVAL_DATA: a snapshot's bytes never change, the page cache keeps them.
  uint32_t want = FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS | FUSE_BIG_WRITES;
  o.flags = want & r.init_flags;
  o.max_background = opts_.max_background;
  o.congestion_threshold = static_cast<uint16_t>(std::max<uint32_t>(1, opts_.max_background * 3u / 4u));
  o.max_write = kMaxWrite;
  o.time_gran = 1000000;  // mtimes are whole milliseconds
  o.max_pages = static_cast<uint16_t>(std::clamp<uint32_t>(opts_.max_read / kPageBytes, 1, 256));
  // Kernels before 7.23 read the 24-byte reply.
  iovec iov{&o, minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof o};
  Write(r.unique, 0, &iov, 1);
}

void Session::Bind(uint64_t fh, const BoundFile& f) {
  std::unique_lock<std::shared_mutex> lock(bound_mu_);
  bound_[fh] = f;
}

void Session::Unbind(uint64_t fh) {
  std::unique_lock<std::shared_mutex> lock(bound_mu_);
  bound_.erase(fh);
}

// A READ of a bound file whose every chunk is in the store: the reply is
// written from the store's memory (the Refs keep the chunks alive until
// writev returned). Anything else — a chunk missing, a size that disagrees —
// returns false and the READ goes to JS, whose read path fills and counts it.
// Bytes in the store were verified when they entered it (DATAPLANE invariant 1:
// DRAM is memory this process controls), as for the JS read path's DRAM hits.
bool Session::FastRead(const Request& r) {
  if (!opts_.store) return false;
  BoundFile f;
  {
    std::shared_lock<std::shared_mutex> lock(bound_mu_);
    auto it = bound_.find(r.fh);
    if (it == bound_.end()) return false;
    f = it->second;
  }
  if (f.chunk == 0) return false;
  if (r.offset >= f.size || r.size == 0) {
    Write(r.unique, 0, nullptr, 0);  // at or past the end: no bytes
    stats_.fast_reads++;
    return true;
  }
  uint64_t end = std::min<uint64_t>(r.offset + r.size, f.size);
  uint64_t first = r.offset / f.chunk, last = (end - 1) / f.chunk;
  constexpr uint64_t kMaxChunks = 16;  // a READ is ≤ max_read (1 MiB): a few chunks at most
  if (last - first + 1 > kMaxChunks || last > UINT32_MAX) return false;
  store::Ref refs[kMaxChunks];
  iovec iov[kMaxChunks];
  int n = 0;
  for (uint64_t i = first; i <= last; i++, n++) {
    store::ChunkId id;
    id.object = f.object;
    id.index = static_cast<uint32_t>(i);
    refs[n] = opts_.store->Lookup(id);
    uint64_t len = std::min<uint64_t>(f.chunk, f.size - i * f.chunk);
    if (!refs[n] || refs[n].size() != len) return false;
    uint64_t from = i == first ? r.offset - i * f.chunk : 0;
    uint64_t to = i == last ? end - i * f.chunk : len;
    iov[n] = {const_cast<uint8_t*>(refs[n].data()) + from, static_cast<size_t>(to - from)};
  }
  Write(r.unique, 0, iov, n);
  stats_.fast_reads++;
  stats_.fast_bytes += end - r.offset;
  return true;
}

bool Session::Claim(uint64_t unique) {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.erase(unique) == 1;
}

size_t Session::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

bool Session::Reply(uint64_t unique, const iovec* iov, int iovcnt) {
  if (!Claim(unique)) {
    stats_.late_replies++;
    return false;
  }
  Write(unique, 0, iov, iovcnt);
  return true;
}

bool Session::ReplyError(uint64_t unique, int err) {
  if (!Claim(unique)) {
    stats_.late_replies++;
    return false;
  }
  Write(unique, err, nullptr, 0);
  return true;
}

void Session::Write(uint64_t unique, int err, const iovec* iov, int iovcnt) {
  if (fd_ < 0) return;
  iovec v[IOV_MAX > 1024 ? 1024 : IOV_MAX];
  int max = static_cast<int>(sizeof v / sizeof v[0]) - 1;
  if (iovcnt > max) iovcnt = 0, err = EIO;  // JS sends a few slices; never more than this
  fuse_out_header h{};
  h.unique = unique;
  h.error = err ? -err : 0;
  size_t total = sizeof h;
  v[0] = {&h, sizeof h};
  for (int i = 0; i < iovcnt && err == 0; i++) {
    v[i + 1] = iov[i];
    total += iov[i].iov_len;
  }
  h.len = static_cast<uint32_t>(total);
  ssize_t n = writev(fd_, v, err == 0 ? iovcnt + 1 : 1);
  if (n < 0 && errno != ENOENT) stats_.protocol_errors++;  // ENOENT: the request was interrupted
}

void Session::Reaper() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_.load()) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(100));
    uint64_t now = NowMs();
    std::vector<uint64_t> expired;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second <= now) {
        expired.push_back(it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) continue;
    lock.unlock();
    for (uint64_t u : expired) {
      stats_.timeouts++;
      Write(u, EIO, nullptr, 0);
    }
    lock.lock();
  }
}

int DetachMount(const std::string& path) { return umount2(path.c_str(), MNT_DETACH) == 0 ? 0 : errno; }

}  // namespace weightcache::fuse
