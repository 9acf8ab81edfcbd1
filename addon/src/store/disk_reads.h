// The NVMe reads of one native I/O thread: an io::Loop (io_uring, or its
// thread-pool fallback) whose completions wake the thread's event loop
// through event_fd(), a ChunkReader over the shared open files of the NVMe
// index, and the bounds on what the thread has in flight. ReadRange
// (store/range.h) starts the reads of a range here; when the last one
// completes, Poll() hands the view to the thread's callback.
//
// Bounds, per thread: at most kMaxDiskRanges ranges being read and
// kMaxDiskBufferBytes of read buffers alive (being read into, or holding
// verified bytes until the door has written them); past either, ReadRange
// answers kBusy and the request goes to JavaScript. The io::Loop keeps at
// most kDiskQueueDepth reads in the kernel.
//
// Threading: everything on the owner thread, except that a ReadBuffer may be
// dropped on any thread (its counters are atomic).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "io/loop.h"
#include "nvme/chunk_reader.h"
#include "store/nvme_index.h"
#include "store/range.h"

namespace weightcache::store {

inline constexpr unsigned kMaxDiskRanges = 256;
inline constexpr int64_t kMaxDiskBufferBytes = 64ll << 20;
inline constexpr unsigned kDiskQueueDepth = 64;
// Idle read buffers a thread keeps for reuse (a fresh mapping costs page faults).
inline constexpr size_t kDiskPoolBytes = 32u << 20;

class DiskReader {
 public:
  // Called on the owner thread from Poll: kReady with the view, or kMiss (no pieces).
  using Callback = void (*)(void* user, uint64_t token, RangeStatus status, RangeView&& view);

  // Null with `why` when no event fd can be had.
  static std::unique_ptr<DiskReader> Create(std::shared_ptr<NvmeIndex> index, Callback cb, void* user,
                                            std::string* why);
  // Completes the reads in flight (the kernel may be writing into their
  // buffers) and drops their ranges without calling back.
  ~DiskReader();
  DiskReader(const DiskReader&) = delete;
  DiskReader& operator=(const DiskReader&) = delete;

  int event_fd() const { return loop_->event_fd(); }
  void Poll();   // the event fd was readable: run completions
  void Flush();  // start queued reads (once per wakeup, after the events)

  NvmeIndex& index() { return *index_; }
  int64_t buffer_bytes() const { return charged_.load(std::memory_order_relaxed); }
  unsigned ranges() const { return ranges_; }
  const char* backend() const { return loop_->backend(); }

 private:
  friend RangeStatus ReadRange(Store&, DiskReader*, const RangeRequest&, RangeView*, uint64_t);
  struct Pending;
  struct Read : nvme::ChunkRead {
    Pending* range = nullptr;
    size_t piece = 0;
    int64_t charge = 0;
    // A whole chunk is read straight into DRAM store memory and committed
    // there once verified (as JavaScript promotes a whole-chunk NVMe hit).
    Store* store = nullptr;
    Ref fill;
    ChunkId id;
    std::string label;
  };
  struct Pending {
    uint64_t token = 0;
    RangeView view;
    unsigned outstanding = 0;
    bool failed = false;
  };

  DiskReader(std::shared_ptr<NvmeIndex> index, std::unique_ptr<io::Loop> loop, Callback cb, void* user);
  // Whether `bytes` more buffers and one more range fit the bounds.
  bool Fits(int64_t bytes) const { return ranges_ < kMaxDiskRanges && charged_.load() + bytes <= kMaxDiskBufferBytes; }
  // Starts the reads of `p`'s disk pieces (reads[i] for piece piece_of[i]).
  void Start(Pending* p, std::vector<Read*>& reads);
  static void OnRead(nvme::ChunkRead* r);
  void Finish(Pending* p);

  std::shared_ptr<NvmeIndex> index_;
  std::unique_ptr<io::Loop> loop_;
  std::shared_ptr<BufferPool> pool_;
  std::unique_ptr<nvme::ChunkReader> reader_;
  Callback cb_;
  void* user_;
  unsigned ranges_ = 0;
  std::atomic<int64_t> charged_{0};
  std::vector<Pending*> done_;  // completed while being started: handed on at the next Poll
  bool closing_ = false;
};

}  // namespace weightcache::store
