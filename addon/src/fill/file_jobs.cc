#include "fill/file_jobs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace weightcache::fill {
namespace {

FileStat StatOf(const struct stat& st) {
  FileStat s;
  s.ino = static_cast<uint64_t>(st.st_ino);
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
  return s;
}

bool Fstat(int fd, FileStat* out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  *out = StatOf(st);
  return true;
}

}  // namespace

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kDone: return "done";
    case Stage::kResolve: return "realpath";
    case Stage::kOutside: return "outside";
    case Stage::kOpen: return "open";
    case Stage::kStat: return "fstat";
    case Stage::kRead: return "read";
    case Stage::kWrite: return "write";
    case Stage::kSync: return "fsync";
    case Stage::kClose: return "close";
    case Stage::kRename: return "rename";
  }
  return "unknown";
}

void RunVersionedRead(VersionedRead* r) {
  r->bytes = 0;
  char* real = realpath(r->path.c_str(), nullptr);
  if (!real) {
    r->stage = Stage::kResolve;
    r->err = errno;
    return;
  }
  // The file, symlinks followed, must lie inside the root: a link leading
  // out of it is refused before anything is opened.
  std::string resolved(real);
  free(real);
  if (resolved.size() <= r->root.size() + 1 || resolved.compare(0, r->root.size(), r->root) != 0 ||
      resolved[r->root.size()] != '/') {
    r->stage = Stage::kOutside;
    r->err = 0;
    return;
  }
  // O_NOFOLLOW: a symlink swapped in after realpath is refused (ELOOP), not followed.
  bool direct = r->direct && r->offset % kDirectAlign == 0 &&
                reinterpret_cast<uintptr_t>(r->dest) % kDirectAlign == 0 && r->length >= kDirectAlign;
  int fd = open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (direct ? O_DIRECT : 0));
  if (fd < 0 && direct && errno == EINVAL) {  // a filesystem without O_DIRECT (tmpfs, some FUSE)
    direct = false;
    fd = open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) {
    r->stage = Stage::kOpen;
    r->err = errno;
    return;
  }
  auto fail = [&](Stage s, int e) {
    r->stage = s;
    r->err = e;
    close(fd);
  };
  if (!Fstat(fd, &r->before)) return fail(Stage::kStat, errno);
  while (r->bytes < r->length) {
    size_t want = r->length - r->bytes;
    if (direct) {
      want &= ~(kDirectAlign - 1);
      if (want == 0 || r->bytes % kDirectAlign != 0) {
        direct = false;  // the unaligned tail goes through the page cache
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0) return fail(Stage::kRead, errno);
        continue;
      }
    }
    ssize_t n = pread(fd, r->dest + r->bytes, want, static_cast<off_t>(r->offset + r->bytes));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct) {  // alignment this device refuses: read buffered instead
        direct = false;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0) return fail(Stage::kRead, errno);
        continue;
      }
      return fail(Stage::kRead, errno);
    }
    if (n == 0) break;  // end of file: shrank under us (the caller sees bytes < length)
    if (direct) r->direct_bytes += static_cast<size_t>(n);
    r->bytes += static_cast<size_t>(n);
  }
  // After the last byte: a write to this inode while we read changed its ctime.
  if (!Fstat(fd, &r->after)) return fail(Stage::kStat, errno);
  close(fd);  // read-only: nothing to lose if close reports an error
  r->stage = Stage::kDone;
  r->err = 0;
}

void RunAtomicWrite(AtomicWrite* w) {
  // O_DIRECT: the device reads the chunk straight from its memory (no copy
  // into the page cache, which a cache node's DRAM budget does not count).
  bool direct = w->direct && w->header_len % kDirectAlign == 0 && w->data_len >= kDirectAlign &&
                reinterpret_cast<uintptr_t>(w->data) % kDirectAlign == 0;
  int fd = open(w->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0 && direct && errno == EINVAL) {
    direct = false;
    fd = open(w->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    w->stage = Stage::kOpen;
    w->err = errno;
    return;
  }
  auto fail = [&](Stage s, int e, bool opened) {
    w->stage = s;
    w->err = e;
    if (opened) close(fd);
    unlink(w->tmp.c_str());  // no partial file left behind (ENOSPC mid-write)
  };
  // O_DIRECT needs the header in aligned memory: one small copy.
  const uint8_t* header = w->header;
  std::unique_ptr<uint8_t, decltype(&free)> aligned(nullptr, &free);
  if (direct && reinterpret_cast<uintptr_t>(header) % kDirectAlign != 0) {
    void* p = nullptr;
    if (posix_memalign(&p, kDirectAlign, w->header_len) != 0) {
      direct = false;
    } else {
      memcpy(p, w->header, w->header_len);
      aligned.reset(static_cast<uint8_t*>(p));
      header = aligned.get();
    }
  }
  if (!direct) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_DIRECT)) fcntl(fd, F_SETFL, fl & ~O_DIRECT);
  }
  size_t total = w->header_len + w->data_len;
  size_t done = 0;
  while (done < total) {
    iovec iov[2];
    int n = 0;
    size_t end = total;
    if (direct) {
      end = done + ((total - done) & ~(kDirectAlign - 1));
      if (end == done || done % kDirectAlign != 0) {
        direct = false;  // the unaligned tail goes through the page cache
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0) return fail(Stage::kWrite, errno, true);
        continue;
      }
    }
    if (done < w->header_len) {
      iov[n++] = {const_cast<uint8_t*>(header + done), w->header_len - done};
      if (end > w->header_len) iov[n++] = {const_cast<uint8_t*>(w->data), end - w->header_len};
    } else {
      size_t at = done - w->header_len;
      iov[n++] = {const_cast<uint8_t*>(w->data + at), end - done};
    }
    ssize_t k = pwritev(fd, iov, n, static_cast<off_t>(done));
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct) {  // alignment this device refuses: write buffered instead
        direct = false;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0) return fail(Stage::kWrite, errno, true);
        continue;
      }
      return fail(Stage::kWrite, errno, true);
    }
    if (k == 0) return fail(Stage::kWrite, EIO, true);
    if (direct) w->direct_bytes += static_cast<size_t>(k);
    done += static_cast<size_t>(k);
  }
  if (w->fsync && fsync(fd) != 0) return fail(Stage::kSync, errno, true);
  // A failed close may be the first report of a failed write (NFS, quota).
  if (close(fd) != 0) return fail(Stage::kClose, errno, false);
  if (rename(w->tmp.c_str(), w->path.c_str()) != 0) return fail(Stage::kRename, errno, false);
  w->stage = Stage::kDone;
  w->err = 0;
}

JobPool::JobPool(unsigned threads, size_t max_queued, std::function<void()> on_done)
    : max_queued_(max_queued), on_done_(std::move(on_done)) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; i++) threads_.emplace_back([this] { Work(); });
}

JobPool::~JobPool() { Stop(); }

bool JobPool::Post(Job job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void JobPool::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

size_t JobPool::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return jobs_.size();
}

unsigned JobPool::running() const {
  std::lock_guard<std::mutex> l(mu_);
  return running_;
}

void JobPool::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything posted has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      running_++;
    }
    job();
    {
      std::lock_guard<std::mutex> l(mu_);
      running_--;
    }
    if (on_done_) on_done_();
  }
}

}  // namespace weightcache::fill
