// Store: the DRAM chunk store every door reads from. Chunk bytes live in the
// arena (arena.h), found through the sharded index (index.h), evicted by
// S3-FIFO (eviction.h).
//
// Invariants (each tested in addon/test/store_test.cc and test/store/):
// - Memory is freed only when no one uses it. Every entry carries a reference
//   count: the index holds one while the entry is indexed, and every Ref (a
//   JS Buffer, a send in progress, a demotion) holds one. Eviction only
//   removes the entry from the index and drops the index's reference; the
//   bytes go back to the arena when the last Ref is dropped, on whatever
//   thread that happens.
// - A lookup takes no global lock: one shard's lock, shared, and an atomic
//   increment on the entry. The writer mutex (inserts, evictions) is never
//   taken by a lookup.
// - Charged bytes (indexed + being filled) never exceed max_bytes after an
//   allocation returns. Evicted chunks still referenced ("retired") are
//   counted apart, and resident memory (charged + retired) stays within
//   max_bytes + overflow_bytes: past that, an allocation is refused (the
//   caller fills into ordinary memory and the chunk is not kept in DRAM).
// - The bytes of an indexed entry never change: they were written before the
//   entry was committed and are read-only from then on.
// - outstanding_refs() counts every live Ref: zero once every reader is done.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/arena.h"
#include "store/chunk_id.h"
#include "store/eviction.h"
#include "store/index.h"

namespace weightcache::store {

class Store;

struct Entry : PolicyNode {
  enum State : uint8_t { kPending = 0, kIndexed = 1, kRetired = 2 };
  ChunkId id;
  uint64_t hash = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t crc = 0;
  uint64_t serial = 0;  // unique per commit, never reused (unlike the address)
  std::atomic<uint32_t> refs{1};
  std::atomic<uint8_t> state{kPending};
  // 0: no handle outside; 1: a consumer keeps a handle (MarkViewed) and must
  // be told when the entry leaves the index; 2: left the index.
  std::atomic<uint8_t> viewed{0};
  // Set at commit by the caller (JS: the chunk's canonical key), handed back
  // with the entry when it is evicted so it can be demoted to NVMe.
  std::string label;
};

// One reference to an entry. Move-only; dropping it may free the chunk.
class Ref {
 public:
  Ref() = default;
  Ref(Ref&& o) noexcept : s_(o.s_), e_(o.e_) { o.s_ = nullptr, o.e_ = nullptr; }
  Ref& operator=(Ref&& o) noexcept {
    if (this != &o) {
      reset();
      s_ = o.s_, e_ = o.e_;
      o.s_ = nullptr, o.e_ = nullptr;
    }
    return *this;
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  ~Ref() { reset(); }

  explicit operator bool() const { return e_ != nullptr; }
  const uint8_t* data() const;
  // Only while the entry is being filled (from Allocate, before Commit).
  uint8_t* writable_data() const;
  uint64_t size() const { return e_->length; }
  uint64_t serial() const { return e_->serial; }
  uint32_t crc32c() const { return e_->crc; }
  const ChunkId& id() const { return e_->id; }
  const std::string& label() const { return e_->label; }
  // A second reference to the same entry.
  Ref Clone() const;
  void reset();

 private:
  friend class Store;
  Ref(Store* s, Entry* e);  // adopts one reference already counted in e->refs
  Store* s_ = nullptr;
  Entry* e_ = nullptr;
};

struct StoreOptions {
  // Budget: bytes charged by indexed chunks and chunks being filled.
  uint64_t max_bytes = 0;
  // Retired (evicted but still referenced) bytes allowed beyond the budget.
  uint64_t overflow_bytes = 64ull << 20;
  // Touches of one chunk closer together than this count as one use.
  uint32_t correlated_ms = 1000;
  // Keep evicted chunks (with a reference) until TakeEvicted, for demotion.
  bool keep_evicted = false;
  // At most this many evicted chunks wait for TakeEvicted; later ones are dropped.
  size_t max_evicted = 1024;
  // Address space for the arena; 0: 2 × max_bytes + 64 MiB (see arena.h).
  uint64_t reserve_bytes = 0;
  // A background thread keeps this many free extents of prefault_bytes (the
  // chunk size) resident, within the budget, so a fill of a whole chunk
  // takes no page fault on the filling thread (0: no thread). A fault costs
  // ~1 µs per 4 KiB page, more in a VM: ~5 ms per 4 MiB chunk here, on the
  // JS thread when an HTTP origin's body is copied in.
  uint64_t prefault_bytes = 0;
  size_t prefault_count = 0;
};

struct StoreStats {
  uint64_t capacity_bytes = 0;
  uint64_t entries = 0;
  uint64_t charged_bytes = 0;  // indexed chunks, in whole pages
  uint64_t data_bytes = 0;     // indexed chunks, their lengths
  uint64_t pending_bytes = 0;  // being filled
  uint64_t retired_bytes = 0;  // evicted or replaced, still referenced
  uint64_t warm_bytes = 0;     // free pages kept resident for reuse
  uint64_t reserved_bytes = 0; // arena address space
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t inserts = 0;
  uint64_t copied_bytes = 0;   // bytes Insert copied in (a commit of a pending allocation copies none)
  uint64_t evictions = 0;
  uint64_t refused = 0;        // allocations refused (too large, or no memory to give)
  uint64_t prefaulted = 0;     // extents made resident by the prefault thread
  uint64_t demotions_dropped = 0;
  int64_t outstanding_refs = 0;
  uint64_t small_bytes = 0;    // the policy's probation FIFO
  uint64_t main_bytes = 0;
};

// A counter written from many threads: one cache line per slot, summed when read.
class SpreadCounter {
 public:
  void Add(int64_t n);
  int64_t Sum() const;

 private:
  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<int64_t> v{0};
  };
  Slot slots_[kSlots];
};

class NvmeIndex;  // store/nvme_index.h

class Store {
 public:
  // Null with `error` set when the options are unusable or the arena cannot be had.
  static std::shared_ptr<Store> Create(const StoreOptions& o, std::string* error);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A hit: a reference to the chunk, counted as a use. Empty on a miss.
  Ref Lookup(const ChunkId& id);
  // Whether the chunk is held, without counting a use.
  bool Contains(const ChunkId& id) const;

  // Memory for a chunk of `len` bytes about to be filled, within the budget
  // (evicting as needed). Empty when `len` exceeds the budget or memory is
  // held by retired chunks past overflow_bytes.
  Ref Allocate(uint64_t len);
  // Publishes a filled allocation under `id`, replacing any entry with that
  // id. `ref` stays a reference to it. False when `ref` is not an unpublished
  // allocation of this store.
  bool Commit(const Ref& ref, const ChunkId& id, uint32_t crc, std::string label);
  // Allocate + copy + Commit. Empty when Allocate refuses.
  Ref Insert(const ChunkId& id, const uint8_t* data, uint64_t len, uint32_t crc, std::string label);
  // The unpublished allocation whose memory starts at `p` with `len` bytes, if any.
  Ref PendingAt(const uint8_t* p, uint64_t len);

  bool Erase(const ChunkId& id);
  // Drops every entry (no demotion); memory still referenced is freed when released.
  void Clear();
  // Chunks evicted since the last call (keep_evicted), each with a reference.
  std::vector<Ref> TakeEvicted();

  // For a consumer that caches one handle per entry (the JS binding keeps one
  // Buffer per chunk, so a hit costs no new Buffer): marks the entry as
  // viewed. False when it already left the index (then don't cache it).
  // Serials of viewed entries that leave the index queue up for
  // TakeRetiredViewed, so the consumer drops its handle and the memory can go.
  bool MarkViewed(const Ref& ref);
  // Whether the entry is already marked viewed (its handle is cached).
  static bool IsViewed(const Ref& ref) { return ref.e_->viewed.load(std::memory_order_acquire) == 1; }
  std::vector<uint64_t> TakeRetiredViewed();

  StoreStats stats() const;
  int64_t outstanding_refs() const { return refs_.Sum(); }
  uint64_t retired_bytes() const { return retired_.load(std::memory_order_relaxed); }
  const StoreOptions& options() const { return o_; }
  const Arena& arena() const { return *arena_; }

  // The NVMe tier's chunk files as the native readers see them (nvme_index.h):
  // attached once, before any door uses the store; null without an NVMe tier view.
  void AttachNvme(std::shared_ptr<NvmeIndex> index) { nvme_ = std::move(index); }
  const std::shared_ptr<NvmeIndex>& nvme() const { return nvme_; }

 private:
  friend class Ref;
  Store(const StoreOptions& o, std::unique_ptr<Arena> arena);

  void Release(Entry* e);  // drops one reference; frees at zero
  void Free(Entry* e);
  void Retire(Entry* e, bool evicted);  // mu_ held; e just left the index
  bool EvictOne();                      // mu_ held
  void PrefaultLoop();
  uint64_t Resident() const;            // charged + pending + retired
  uint64_t WarmLimit() const;

  const StoreOptions o_;
  std::unique_ptr<Arena> arena_;
  ShardedIndex<Entry> index_;

  // Writer side: inserts, evictions, the policy, the pending list.
  mutable std::mutex mu_;
  S3Fifo policy_;
  std::vector<Entry*> pending_;  // allocations not yet committed (few: fills in flight)
  std::vector<Ref> evicted_;
  std::vector<uint64_t> retired_viewed_;
  uint64_t next_serial_ = 1;

  std::atomic<uint64_t> charged_{0};
  std::atomic<uint64_t> data_{0};
  std::atomic<uint64_t> pending_bytes_{0};
  std::atomic<uint64_t> retired_{0};
  std::atomic<uint64_t> inserts_{0};
  std::atomic<uint64_t> copied_bytes_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> demotions_dropped_{0};
  std::atomic<uint64_t> prefaulted_{0};
  // The prefault thread: woken when a warm extent is taken, stopped by ~Store.
  std::mutex pf_mu_;
  std::condition_variable pf_cv_;
  bool pf_stop_ = false;
  std::thread pf_thread_;
  SpreadCounter hits_;
  SpreadCounter misses_;
  SpreadCounter refs_;
  std::shared_ptr<NvmeIndex> nvme_;
};

}  // namespace weightcache::store
