// Arena: the memory every DRAM chunk lives in. One memfd, mapped once,
// carved into page-aligned extents, one per chunk.
//
// Why a memfd and not malloc: the same pages can later be mapped read-only by
// local processes (pass the fd over a unix socket), and registered once for
// RDMA or GPU DMA. Why page-granular extents: each chunk's pages are its
// own, so freeing a chunk returns exactly its pages to the kernel
// (fallocate PUNCH_HOLE) and a read-only mapping of a chunk shows no other
// chunk's bytes. A chunk costs its length rounded up to 4 KiB: a 352-byte
// config.json costs 4 KiB, not a 4 MiB slot.
//
// Why the address space is larger than the budget: extents of varying sizes
// fragment it, and a fragmented arena would refuse a chunk the budget has
// room for. The memfd is sparse (pages exist only once written), so the
// reservation costs address space, not memory; the budget is enforced by the
// store on charged bytes, and resident memory is the charged bytes plus at
// most the "warm" extents below.
//
// Warm extents: a freed extent is usually about to be reused by a chunk of
// the same size (most chunks are exactly cache.chunkSize). Keeping its pages
// resident saves a page fault per 4 KiB on the next fill (~1000 per 4 MiB
// chunk); the store caps warm bytes so charged + warm stays within budget.
//
// Thread safety: every method takes one mutex; allocation is not on the
// lookup path (lookups never touch the arena).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weightcache::store {

class Arena {
 public:
  static constexpr uint64_t kPage = 4096;
  static constexpr uint64_t kNone = ~uint64_t{0};

  // Reserves `reserve_bytes` (rounded up to a page) of address space backed by
  // one memfd. Null with `error` set when the kernel refuses.
  static std::unique_ptr<Arena> Create(uint64_t reserve_bytes, std::string* error);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // The bytes a chunk of `len` bytes occupies: whole pages, at least one.
  static uint64_t ChargeOf(uint64_t len) { return len == 0 ? kPage : (len + kPage - 1) & ~(kPage - 1); }

  // The offset of an extent of `charge` bytes (a multiple of kPage), or kNone
  // when no free extent is that large. `warm` is set when the extent's pages
  // are already resident.
  uint64_t Allocate(uint64_t charge, bool* warm = nullptr);
  // Returns an extent. It stays warm (resident, for reuse) while warm bytes
  // stay within `warm_limit`; otherwise its pages go back to the kernel.
  void Free(uint64_t offset, uint64_t charge, uint64_t warm_limit);
  // Returns warm extents' pages to the kernel until warm bytes ≤ `warm_limit`.
  void TrimWarm(uint64_t warm_limit);

  // Prefaulting (the store's background thread): an extent from the free map
  // only (kNone if none), made resident off the allocating thread, then
  // offered to the next Allocate of that size as warm.
  uint64_t AllocateCold(uint64_t charge);
  void AddWarm(uint64_t offset, uint64_t charge);
  size_t WarmCount(uint64_t charge);
  // Makes [p, p + len) resident and writable without a page fault per page
  // later: MADV_POPULATE_WRITE where the kernel has it (5.14+), else a write
  // per page.
  static void Populate(uint8_t* p, uint64_t len);

  uint8_t* At(uint64_t offset) const { return base_ + offset; }
  bool Contains(const uint8_t* p) const { return p >= base_ && p < base_ + reserved_; }
  uint64_t OffsetOf(const uint8_t* p) const { return static_cast<uint64_t>(p - base_); }
  int fd() const { return fd_; }
  uint64_t reserved() const { return reserved_; }

  struct Stats {
    uint64_t reserved = 0;
    uint64_t warm_bytes = 0;
    uint64_t free_bytes = 0;        // in the free map (pages returned to the kernel)
    uint64_t largest_free = 0;
    uint64_t punch_failures = 0;    // fallocate and madvise both refused: pages stayed resident
  };
  Stats stats();

 private:
  Arena(int fd, uint8_t* base, uint64_t reserved);
  uint64_t TakeFree(uint64_t charge);              // best fit from the free map (mu_ held)
  void Release(uint64_t offset, uint64_t charge);  // punch + add to the free map (mu_ held)
  void AddFree(uint64_t offset, uint64_t len);     // coalescing (mu_ held)

  const int fd_;
  uint8_t* const base_;
  const uint64_t reserved_;

  std::mutex mu_;
  std::map<uint64_t, uint64_t> free_by_offset_;           // offset → length
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (length, offset): best fit
  std::unordered_map<uint64_t, std::vector<uint64_t>> warm_;  // charge → offsets
  uint64_t warm_bytes_ = 0;
  uint64_t free_bytes_ = 0;
  uint64_t punch_failures_ = 0;
};

}  // namespace weightcache::store
