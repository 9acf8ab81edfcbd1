// One FUSE mount: the /dev/fuse descriptor, mount(2)/umount2(2), the worker
// threads that read requests, and the table of requests waiting for the
// control plane (JavaScript). No libfuse: the kernel protocol is small and
// read-only makes most of it EROFS.
//
//   kernel ──read──► worker thread ──(INIT, STATFS, OPENDIR, FLUSH, errors:
//                        │            answered here, at once)
//                        ├─ READ of a bound file whose chunks are all in the store: writev here
//                        └─ LOOKUP, GETATTR, OPEN, READ, READDIR, READLINK ──► post() ──► JS
//   JS ──Reply*(unique, …)──► writev(/dev/fuse)        (any thread)
//   reaper thread: a request JS has not answered within timeout_ms gets EIO,
//   and the late answer is dropped, so a stalled JS side never hangs a reader
//   of the mount forever, and a worker never waits for JS at all.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fuse/request.h"
#include "store/chunk_id.h"

namespace weightcache::store {
class Store;
}

namespace weightcache::fuse {

struct SessionOptions {
  std::string path;
  int threads = 4;
  uint32_t max_read = 1u << 20;        // bytes per READ (max_pages × page size)
  uint32_t max_readahead = 1u << 20;   // kernel readahead window
  uint16_t max_background = 64;        // async READs (readahead) the kernel keeps in flight
  uint32_t timeout_ms = 30000;         // a request JS has not answered by then: EIO
  uint32_t max_pending = 4096;         // requests waiting for JS at once; more: EIO at once
  bool allow_other = true;             // other users (other pods' uids) may read
  uint32_t uid = 0, gid = 0;           // owner of every node
  // READs of bound files whose chunks are all here are answered by the workers
  // (Session::Bind); null: every READ goes to JS. Shared, not owned.
  std::shared_ptr<store::Store> store;
};

struct SessionStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> posted{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> late_replies{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> fast_reads{0};  // READs answered here from the chunk store, without JS
  std::atomic<uint64_t> fast_bytes{0};
};

// An open file whose READs a worker may answer itself from the chunk store:
// chunk i of it is (object, i) there, of min(chunk, size − i·chunk) bytes.
struct BoundFile {
  std::array<uint8_t, store::kObjectIdBytes> object{};
  uint64_t size = 0;
  uint32_t chunk = 0;
};

class Session {
 public:
  // Requests that need the control plane; `forget`/`release` ones expect no reply.
  using Post = std::function<void(Request&&)>;

  // Opens /dev/fuse, mounts, starts the workers. nullptr with *err set on failure.
  static std::unique_ptr<Session> Start(const SessionOptions& o, Post post, std::string* err);
  ~Session();

  // Replies to a posted request. False when it is no longer pending (timed out, or interrupted).
  bool Reply(uint64_t unique, const struct iovec* iov, int iovcnt);
  bool ReplyError(uint64_t unique, int err);
  // Unmounts (lazily: open files keep the connection until closed or the process ends), stops workers.
  void Stop();

  // READs of handle `fh` whose chunks are all in options.store are answered by the
  // worker (writev from the store's memory); the rest go to JS as before. Bound at
  // OPEN by JS, unbound at RELEASE (here) or Unbind.
  void Bind(uint64_t fh, const BoundFile& f);
  void Unbind(uint64_t fh);

  const SessionStats& stats() const { return stats_; }
  size_t pending() const;
  uint32_t minor() const { return minor_.load(); }
  uint32_t max_read() const { return opts_.max_read; }

 private:
  Session(const SessionOptions& o, Post post) : opts_(o), post_(std::move(post)) {}
  void Worker();
  void Reaper();
  void Handle(const uint8_t* buf, size_t len);
  void Init(const Request& r);
  void Write(uint64_t unique, int err, const struct iovec* iov, int iovcnt);
  bool Claim(uint64_t unique);
  bool FastRead(const Request& r);

  SessionOptions opts_;
  Post post_;
  int fd_ = -1;
  int stop_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<uint32_t> minor_{0};
  std::vector<std::thread> workers_;
  std::thread reaper_;
  mutable std::mutex mu_;
  std::condition_variable reaper_cv_;
  std::unordered_map<uint64_t, uint64_t> pending_;  // unique → deadline (ms, monotonic)
  SessionStats stats_;
  std::shared_mutex bound_mu_;
  std::unordered_map<uint64_t, BoundFile> bound_;  // fh → file, while open (≤ mount.maxOpenFiles)
};

// Lazily detaches whatever is mounted at `path` (a stale mount of a crashed process). 0 or errno.
int DetachMount(const std::string& path);

}  // namespace weightcache::fuse
