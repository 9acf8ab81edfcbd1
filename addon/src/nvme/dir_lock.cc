#include "nvme/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace weightcache::nvme {

DirLock LockDir(const std::string& dir) {
  DirLock l;
  std::string path = dir + "/" + kLockFileName;
  // Held read-only: a file open for writing would stop the volume from being
  // remounted read-only while the node runs (the tier degrades and keeps
  // serving through that). flock does not need write access.
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    l.err = errno;
    l.error = "cannot open the lock file " + path + ": " + std::strerror(errno);
    return l;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    l.err = errno;
    if (errno == EWOULDBLOCK) {
      char buf[32] = {};
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      if (n > 0) l.holder = std::strtol(buf, nullptr, 10);
      l.error = "the chunk directory " + dir + " is in use by another weightcache process" +
                (l.holder > 0 ? " (pid " + std::to_string(l.holder) + ")" : std::string()) +
                "; every process needs its own cache.nvme.dir";
    } else {
      l.error = "cannot lock " + path + ": " + std::strerror(errno);
    }
    close(fd);
    return l;
  }
  // Ours now: record who holds it (best effort; the lock is the flock, not the
  // text). A second descriptor: closing it does not drop a flock, which
  // belongs to the first one's open file.
  int wfd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
  if (wfd >= 0) {
    std::string pid = std::to_string(getpid()) + "\n";
    ssize_t w = write(wfd, pid.data(), pid.size());
    (void)w;
    close(wfd);
  }
  l.fd = fd;
  return l;
}

void UnlockDir(int fd) {
  if (fd < 0) return;
  // Truncating first would race with a next holder's write; closing drops the flock.
  close(fd);
}

}  // namespace weightcache::nvme
