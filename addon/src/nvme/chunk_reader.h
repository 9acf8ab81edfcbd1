// Verified reads of chunk files (format v2, chunk_format.h) on an io::Loop.
// A read of bytes [offset, offset + length) of a chunk reads only the blocks
// that cover them (plus the header, once per open file) and checks each
// block's CRC32C before any byte is handed out. Open files are kept, with
// their verified headers, in an OpenChunks cache, so a hot chunk costs one
// read per request and no open.
//
// Threading: a ChunkReader belongs to its loop's thread; OpenChunks and
// ReaderStats may be shared by the readers of several threads.
#pragma once
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "buffer_pool.h"
#include "io/loop.h"
#include "nvme/chunk_format.h"

namespace weightcache::nvme {

// Page-aligned memory (O_DIRECT needs it) from a BufferPool, returned to it
// when dropped: a fresh 4 MiB allocation per read costs page faults and
// zeroing in the kernel (measured: more CPU than the CRC check), a pooled one
// is already mapped.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // `size` bytes (the pool rounds up to a power of two >= 4 KiB); data() is
  // null if allocation failed.
  AlignedBuffer(std::shared_ptr<BufferPool> pool, size_t size);
  ~AlignedBuffer() { Reset(); }
  AlignedBuffer(AlignedBuffer&& o) noexcept : pool_(std::move(o.pool_)), p_(o.p_), size_(o.size_) {
    o.p_ = nullptr;
    o.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data() const { return p_; }
  size_t size() const { return size_; }
  const std::shared_ptr<BufferPool>& pool() const { return pool_; }
  // Hands the memory to the caller, who returns it with pool()->Release(p, size).
  uint8_t* Release() {
    uint8_t* p = p_;
    p_ = nullptr;
    size_ = 0;
    return p;
  }
  void Reset();

 private:
  std::shared_ptr<BufferPool> pool_;
  uint8_t* p_ = nullptr;
  size_t size_ = 0;
};

struct ReaderStats {
  std::atomic<uint64_t> bytes_read{0};    // bytes read from chunk files: headers and data blocks
  std::atomic<uint64_t> bytes_served{0};  // verified bytes handed to callers
  std::atomic<uint64_t> reads_ok{0};
  std::atomic<uint64_t> header_reads{0};  // files opened and their headers read (cache misses)
  std::atomic<uint64_t> corrupt{0};       // reads refused: damaged or mismatched file
  std::atomic<uint64_t> errors{0};        // reads failed with an errno (ENOENT included)
  std::atomic<uint64_t> bytes_copied{0};  // bytes copied into caller memory that was not read into directly
};

// An open chunk file and its verified header. Immutable; the file closes
// when the last reference (cache entry or read in flight) goes.
struct OpenChunk {
  OpenChunk(int fd_, AlignedBuffer header_bytes, const Header& h_) : fd(fd_), bytes(std::move(header_bytes)), h(h_) {}
  ~OpenChunk();
  int fd;
  AlignedBuffer bytes;  // `h` points into these
  Header h;
};

// Open chunk files by path, at most `capacity`, least recently used closed first.
class OpenChunks {
 public:
  explicit OpenChunks(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  std::shared_ptr<const OpenChunk> Find(const std::string& path);
  void Insert(const std::string& path, std::shared_ptr<const OpenChunk> chunk);
  // Drops `path`; with `only`, only if the cached entry is that one.
  void Erase(const std::string& path, const OpenChunk* only = nullptr);
  void Clear();
  size_t size();

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const OpenChunk>>;
  std::mutex mu_;
  size_t capacity_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> by_path_;
};

// What the caller's index says the file holds; the header must agree.
struct Expect {
  uint32_t data_offset = 0;  // 0: unknown (read a guess, then the rest)
  uint64_t data_length = 0;
  uint32_t data_crc = 0;
  // With by_id, the header must name this chunk (object id, index) and the
  // read's `key` is not compared (a native reader knows the chunk by its id).
  bool by_id = false;
  uint8_t object_id[kObjectIdBytes] = {};
  uint32_t index = 0;
};

enum class ReadStatus {
  kOk,
  kMissing,    // the file is not there (ENOENT)
  kCorrupt,    // the file is damaged or is not the expected chunk: drop it
  kIoError,    // an errno from the device or the system (err)
  kCancelled,  // the loop was drained (shutdown)
};

struct ChunkRead {
  // Request.
  std::string path;
  std::string key;  // the canonical chunk name the header must hold (unless expect.by_id)
  Expect expect;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t* dest = nullptr;  // optional caller memory for `length` bytes (else a new buffer)
  void (*done)(ChunkRead*) = nullptr;
  void* user = nullptr;

  // Result, when done runs.
  ReadStatus status = ReadStatus::kOk;
  int err = 0;
  std::string reason;
  const uint8_t* data = nullptr;  // `length` verified bytes, in `buffer` or `dest`
  AlignedBuffer buffer;
  uint32_t chunk_crc = 0;  // the whole chunk's CRC32C, from the verified header

  // The reader's state.
  class ChunkReader* reader = nullptr;
  bool leading = false;  // opening the file for itself and the reads waiting on it
  io::Op op;
  std::shared_ptr<const OpenChunk> chunk;
  int fd = -1;  // opened, not yet owned by an OpenChunk
  AlignedBuffer header;
  int64_t file_size = -1;
  uint8_t* target = nullptr;
  uint64_t start = 0;  // data offset of the first block read
  uint64_t want = 0;   // bytes of data to read
  uint64_t got = 0;
  uint64_t room = 0;  // bytes `target` holds
};

class ChunkReader {
 public:
  ChunkReader(io::Loop& loop, OpenChunks& files, ReaderStats& stats, std::shared_ptr<BufferPool> pool,
              bool direct)
      : loop_(loop), files_(files), stats_(stats), pool_(std::move(pool)), direct_(direct) {}
  // On the loop's thread; r->done runs on it too, from the loop's Poll.
  void Read(ChunkRead* r);
  // False once the filesystem refused O_DIRECT (EINVAL): reads go through the page cache.
  bool direct() const { return direct_; }

 private:
  void Open(ChunkRead* r);
  void ReadHeader(ChunkRead* r, uint32_t bytes);
  void ReadData(ChunkRead* r);
  void SubmitData(ChunkRead* r);
  void Finish(ChunkRead* r, ReadStatus status, int err, std::string reason);
  // The file `leader` opened is ready (chunk set) or failed (status): the reads waiting on it go on.
  void ReleaseWaiters(ChunkRead* leader);
  static bool Matches(const OpenChunk& c, const ChunkRead& r);
  static bool NamesChunk(const Header& h, const ChunkRead& r);
  static void OnOpened(io::Op* op);
  static void OnHeader(io::Op* op);
  static void OnData(io::Op* op);

  io::Loop& loop_;
  OpenChunks& files_;
  ReaderStats& stats_;
  std::shared_ptr<BufferPool> pool_;  // read buffers; shared with the Buffers handed to JS
  bool direct_;
  // Files being opened, with the reads that arrived meanwhile: a burst of
  // reads of a cold chunk opens it and reads its header once.
  std::unordered_map<std::string, std::vector<ChunkRead*>> opening_;
};

}  // namespace weightcache::nvme
