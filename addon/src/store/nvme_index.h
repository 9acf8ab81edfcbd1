// The native view of the NVMe tier's chunk files: which chunk (object id,
// index) has a valid v2 file, where, and what its header must say. The
// JavaScript NVMe tier (src/tier/nvme.ts) is its only writer: it publishes a
// file once it is written and renamed into place (or found valid at start)
// and removes it before the file is evicted, deleted, dropped as damaged or
// replaced, so a native reader never starts a read of a file the tier has
// given up. A read already started when the entry goes finishes on the file
// it opened (files are written once and renamed into place, never changed)
// or fails (gone, truncated, damaged) and leaves the request to JavaScript.
//
// The object id is the hash of the versioned name (chunk_id.h), so an entry
// can only ever serve the version whose binding (bindings.h) the caller holds.
//
// Also here, shared by every reader of the index: the open files with their
// verified headers (so a hot chunk costs one read and no open) and the read
// counters. Threading: every method may be called from any thread.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nvme/chunk_reader.h"
#include "store/chunk_id.h"

namespace weightcache::store {

// Most entries the index holds (a 4 TB tier of 4 MiB chunks is ~1 M); past
// it Put refuses and those chunks are read by JavaScript.
inline constexpr size_t kMaxNvmeEntries = 4'000'000;
// Chunk files kept open (with their verified headers) across every I/O thread.
inline constexpr size_t kNvmeOpenFiles = 1024;

struct NvmeEntry {
  NvmeEntry() = default;
  NvmeEntry(const NvmeEntry& o) : path(o.path), expect(o.expect), label(o.label) {}
  NvmeEntry(NvmeEntry&& o) noexcept : path(std::move(o.path)), expect(o.expect), label(std::move(o.label)) {}
  std::string path;
  nvme::Expect expect;  // data offset, length and CRC32C the header must hold
  // The chunk's canonical key: the label a whole chunk read into DRAM is
  // committed under (JavaScript demotes evicted chunks by it).
  std::string label;
  // Read by a native door since JavaScript last asked (TakeUsed): the tier's LRU order learns of it.
  mutable std::atomic<bool> used{false};
};

// Most used entries noted between two TakeUsed calls; past it uses are not noted (the order is a hint).
inline constexpr size_t kMaxNvmeUsedNoted = 65'536;

// What the native readers did, summed over every I/O thread.
struct NvmeReadStats {
  std::atomic<uint64_t> ranges{0};         // ranges answered with bytes read from chunk files
  std::atomic<uint64_t> promoted{0};       // whole chunks read into DRAM store memory (and kept there)
  std::atomic<uint64_t> to_js_corrupt{0};  // a block failed its CRC32C (or a damaged header): left to JavaScript
  std::atomic<uint64_t> to_js_missing{0};  // the file was gone or unreadable: left to JavaScript
  std::atomic<uint64_t> to_js_busy{0};     // the thread's read bounds were reached: left to JavaScript
  std::atomic<int64_t> buffer_bytes{0};    // read buffers alive (reading, or waiting to be written)
  std::atomic<int64_t> reads_in_flight{0}; // chunk reads submitted, not completed
};

class NvmeIndex {
 public:
  NvmeIndex() : files_(kNvmeOpenFiles) {}
  NvmeIndex(const NvmeIndex&) = delete;
  NvmeIndex& operator=(const NvmeIndex&) = delete;

  // Adds or replaces the entry of `id`; false when the index is full.
  bool Put(const ChunkId& id, NvmeEntry e);
  // Drops the entry of `id` (and closes its file if kept open); false if absent.
  bool Remove(const ChunkId& id);
  void Clear();
  // The entry of `id`, or null.
  std::shared_ptr<const NvmeEntry> Find(const ChunkId& id) const;
  // A native read used `e`: noted once until the next TakeUsed.
  void NoteUsed(const std::shared_ptr<const NvmeEntry>& e);
  // The labels (chunk keys) of the entries read natively since the last call, each once.
  std::vector<std::string> TakeUsed();
  size_t size() const { return size_.load(std::memory_order_relaxed); }

  nvme::OpenChunks& files() { return files_; }
  nvme::ReaderStats& reader_stats() { return reader_stats_; }
  NvmeReadStats& stats() { return stats_; }

 private:
  static constexpr size_t kShards = 32;
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<ChunkId, std::shared_ptr<const NvmeEntry>, ChunkIdHash> map;
  };
  Shard& ShardOf(const ChunkId& id) { return shards_[HashOf(id) >> 59]; }
  const Shard& ShardOf(const ChunkId& id) const { return shards_[HashOf(id) >> 59]; }

  std::array<Shard, kShards> shards_;
  std::atomic<size_t> size_{0};
  std::mutex used_mu_;
  std::vector<std::shared_ptr<const NvmeEntry>> used_;  // under used_mu_
  nvme::OpenChunks files_;
  nvme::ReaderStats reader_stats_;
  NvmeReadStats stats_;
};

}  // namespace weightcache::store
