// File work of the fill path on threads of its own, never on libuv's pool.
//
// A cold read waits on two kinds of file work: reading a chunk from an fs
// origin and writing the filled chunk through to NVMe. On libuv's 4-thread
// pool each was a chain of hops (realpath, open, fstat, read, fstat, close;
// open, writev, close, rename), shared with everything else the process does,
// so a burst of write-through queued ahead of the reads a client waits for.
// Here each is one job, run whole by one thread of a pool that does nothing
// else: origin reads and NVMe writes get a pool each, so writes never hold a
// thread a read needs.
//
// Nothing here knows JavaScript: fill_js.cc hands jobs in and results out.
#pragma once
#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace weightcache::fill {

// What a version of an fs origin file is made of (src/origin/fs.ts builds
// its etag from these; a rewrite or replace changes at least one).
struct FileStat {
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// Where a job stopped. kDone: every step ran (a read may still have been
// short: `bytes` < length means the file shrank under it).
constexpr size_t kDirectAlign = 4096;

enum class Stage : uint8_t { kDone, kResolve, kOutside, kOpen, kStat, kRead, kWrite, kSync, kClose, kRename };
const char* StageName(Stage s);

// One chunk of an fs origin file: realpath (it must stay under `root`),
// open, fstat, pread until `length` bytes or end of file, fstat, close.
// The caller compares `before` and `after` with the version it asked for:
// equal means no byte read belongs to another version (an in-place write
// changes the ctime of the inode read; a replace leaves this inode alone).
struct VersionedRead {
  std::string root;  // the origin root, resolved (no trailing slash)
  std::string path;  // root/container/key, before symlinks are resolved
  uint64_t offset = 0;
  size_t length = 0;
  uint8_t* dest = nullptr;  // at least `length` bytes, alive until the job is done
  // Read the aligned part with O_DIRECT (no page cache: the disk writes
  // straight into `dest`, no copy) where offset and dest are 4 KiB aligned
  // and the filesystem allows it; the rest, and every other case, buffered.
  bool direct = false;
  // Results.
  Stage stage = Stage::kDone;
  int err = 0;  // errno of the failed step
  size_t bytes = 0;
  size_t direct_bytes = 0;  // of which read with O_DIRECT
  FileStat before, after;
};
void RunVersionedRead(VersionedRead* r);

// One chunk file written atomically: open `tmp` (O_EXCL), writev header +
// data (short writes finished), fsync when asked, close, rename to `path`.
// On any failure `tmp` is removed: `path` is either whole or untouched.
struct AtomicWrite {
  std::string path;
  std::string tmp;
  const uint8_t* header = nullptr;
  size_t header_len = 0;
  const uint8_t* data = nullptr;
  size_t data_len = 0;
  bool fsync = false;
  // Write with O_DIRECT where the filesystem allows it and header and data
  // are 4 KiB multiples in 4 KiB aligned memory (header is copied to aligned
  // memory here); a data tail that is not is written buffered.
  bool direct = false;
  // Results.
  Stage stage = Stage::kDone;
  int err = 0;
  size_t direct_bytes = 0;  // written with O_DIRECT
};
void RunAtomicWrite(AtomicWrite* w);

// A fixed set of threads running jobs in order. At most `max_queued` jobs
// wait (Post refuses more: the caller reports it busy rather than queueing
// without bound). `on_done` runs on the worker thread after each job; it
// must be quick and thread-safe (fill_js.cc pushes to a list and wakes the
// JS thread).
class JobPool {
 public:
  using Job = std::function<void()>;
  JobPool(unsigned threads, size_t max_queued, std::function<void()> on_done);
  ~JobPool();  // Stop()
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  // False when max_queued jobs already wait, or after Stop.
  bool Post(Job job);
  // Runs the jobs already posted, then joins the threads.
  void Stop();
  size_t queued() const;
  unsigned running() const;
  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }
  size_t max_queued() const { return max_queued_; }

 private:
  void Work();
  const size_t max_queued_;
  std::function<void()> on_done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  unsigned running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace weightcache::fill
