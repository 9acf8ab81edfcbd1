#include "fill/file_jobs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

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
  int fd = open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
    ssize_t n = pread(fd, r->dest + r->bytes, r->length - r->bytes, static_cast<off_t>(r->offset + r->bytes));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Stage::kRead, errno);
    }
    if (n == 0) break;  // end of file: shrank under us (the caller sees bytes < length)
    r->bytes += static_cast<size_t>(n);
  }
  // After the last byte: a write to this inode while we read changed its ctime.
  if (!Fstat(fd, &r->after)) return fail(Stage::kStat, errno);
  close(fd);  // read-only: nothing to lose if close reports an error
  r->stage = Stage::kDone;
  r->err = 0;
}

void RunAtomicWrite(AtomicWrite* w) {
  int fd = open(w->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
  size_t total = w->header_len + w->data_len;
  size_t done = 0;
  while (done < total) {
    iovec iov[2];
    int n = 0;
    if (done < w->header_len) {
      iov[n++] = {const_cast<uint8_t*>(w->header + done), w->header_len - done};
      if (w->data_len > 0) iov[n++] = {const_cast<uint8_t*>(w->data), w->data_len};
    } else {
      size_t at = done - w->header_len;
      iov[n++] = {const_cast<uint8_t*>(w->data + at), w->data_len - at};
    }
    ssize_t k = pwritev(fd, iov, n, static_cast<off_t>(done));
    if (k < 0) {
      if (errno == EINTR) continue;
      return fail(Stage::kWrite, errno, true);
    }
    if (k == 0) return fail(Stage::kWrite, EIO, true);
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
