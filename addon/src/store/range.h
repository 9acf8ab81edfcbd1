// The chunks of one object that cover a byte range, as a door sends them:
// one Piece per chunk, the slice of that chunk the range covers and what
// keeps its bytes alive until the answer is written (a DRAM chunk reference,
// so eviction cannot free the bytes under the send, or the verified read
// buffer of an NVMe read). Used by every native door that answers from the
// store (the HTTP and RESP fast paths): the one read-path step below them.
//
// A chunk in DRAM is sliced at once. A chunk only on NVMe (store/nvme_index.h)
// is read by the calling thread's DiskReader (store/disk_reads.h): only the
// blocks the range covers, each checked against its CRC32C before any of its
// bytes is handed out. ReadRange then answers kPending and the DiskReader
// hands the completed view to the thread's callback from its Poll, on the
// same thread; a read that fails (a damaged block, a file gone or truncated)
// completes as kMiss with no bytes at all, and the door leaves the request
// to JavaScript (which drops and refetches the chunk).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "nvme/chunk_reader.h"
#include "store/chunk_id.h"
#include "store/store.h"

namespace weightcache::store {

class DiskReader;

// A verified NVMe read buffer, counted (bytes) in `counter` while it lives.
class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(nvme::AlignedBuffer b, int64_t charge, std::atomic<int64_t>* counter, std::atomic<int64_t>* thread)
      : b_(std::move(b)), charge_(charge), counter_(counter), thread_(thread) {}
  ReadBuffer(ReadBuffer&& o) noexcept { *this = std::move(o); }
  ReadBuffer& operator=(ReadBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::move(o.b_);
      charge_ = o.charge_, counter_ = o.counter_, thread_ = o.thread_;
      o.charge_ = 0, o.counter_ = nullptr, o.thread_ = nullptr;
    }
    return *this;
  }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { reset(); }
  explicit operator bool() const { return counter_ != nullptr; }
  void reset();

 private:
  nvme::AlignedBuffer b_;
  int64_t charge_ = 0;
  std::atomic<int64_t>* counter_ = nullptr;  // every thread's buffers (NvmeReadStats::buffer_bytes)
  std::atomic<int64_t>* thread_ = nullptr;   // the reading thread's (its budget)
};

// One chunk's slice of the range and what keeps its bytes alive. Move-only.
struct Piece {
  const uint8_t* data = nullptr;  // null only for a located NVMe piece that was not read (HEAD)
  size_t len = 0;
  Ref ref;            // from DRAM
  ReadBuffer buffer;  // from NVMe
  uint64_t chunk_length = 0;  // the whole chunk: its length and CRC32C
  uint32_t chunk_crc = 0;
  bool from_disk = false;

  bool whole_chunk() const { return len == chunk_length; }
  explicit operator bool() const { return static_cast<bool>(ref) || static_cast<bool>(buffer); }
  void reset() {
    ref.reset();
    buffer.reset();
    data = nullptr;
    len = 0;
  }
};

struct RangeView {
  std::vector<Piece> pieces;
  // Known at once, also while the pieces are being read (kPending): what an answer's head says.
  bool first_from_disk = false;  // the first chunk's tier (the answer's source)
  bool whole_chunk = false;      // the range is exactly one whole chunk...
  uint32_t whole_crc = 0;        // ...with this CRC32C
};

struct RangeRequest {
  std::array<uint8_t, kObjectIdBytes> object{};
  uint64_t size = 0;        // the object's
  uint64_t chunk_size = 0;
  uint64_t start = 0;       // bytes [start, end], inclusive, end < size
  uint64_t end = 0;
  bool locate_only = false; // NVMe pieces are found, not read (a HEAD answer needs no bytes)
};

enum class RangeStatus {
  kReady,    // every piece has its bytes
  kPending,  // NVMe reads started: the DiskReader's callback gets the view (token) later
  kMiss,     // a covered chunk is in neither tier (or a read failed): JavaScript answers
  kBusy,     // the thread's bounds on NVMe reads are reached: JavaScript answers
};

// Bytes [rq.start, rq.end] from DRAM and, with a `disk` reader, NVMe. On
// kReady `out` holds the pieces; on kPending the view goes to the reader's
// callback with `token`; otherwise `out` is empty (references dropped).
RangeStatus ReadRange(Store& store, DiskReader* disk, const RangeRequest& rq, RangeView* out, uint64_t token);

// DRAM only: true when every covered chunk is in DRAM (then `out` holds them).
bool LookupRange(Store& store, const std::array<uint8_t, kObjectIdBytes>& object, uint64_t size,
                 uint64_t chunk_size, uint64_t start, uint64_t end, RangeView* out);

}  // namespace weightcache::store
