// An exclusive lock on a chunk directory, held for the life of the process
// (or until released), so two weightcache processes can never share one:
// each would delete the other's temp files at start and evict the other's
// chunks without knowing. flock(2) on `<dir>/weightcache.lock`: the kernel
// drops it when the holder exits, kill -9 included, so a crash never leaves
// a stale lock. The holder writes its pid into the file for the message the
// next process prints.
#pragma once
#include <string>

namespace weightcache::nvme {

struct DirLock {
  int fd = -1;        // >= 0: held
  int err = 0;        // errno of the failure; EWOULDBLOCK: another holder
  long holder = 0;    // that holder's pid, when it wrote one
  std::string error;  // the message, naming the directory
};

// Never blocks: another holder is an immediate failure.
DirLock LockDir(const std::string& dir);
void UnlockDir(int fd);

constexpr const char* kLockFileName = "weightcache.lock";

}  // namespace weightcache::nvme
