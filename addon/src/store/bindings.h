// Version bindings for the native fast path: name ("container/key") → the
// version a lease (or a lone node's or home's own binding) says the name means,
// with everything an answer's head needs and a deadline on CLOCK_MONOTONIC.
//
// JavaScript installs a binding when a lease resolves and removes it when the
// lease is revoked, the name is invalidated or forgotten (docs/coherence.md,
// "The native binding"); the deadline retires it on its own when the lease
// runs out. The HTTP I/O threads read it for every fast-path request.
//
// Concurrency: 64 shards, each a hash map behind its own reader-writer lock,
// chosen by a hash of the name. A lookup takes one shard's lock shared and
// copies a shared_ptr (one atomic increment): lookups never wait for each
// other, and no lookup takes a global lock. Remove and RemovePrefix take the
// shard locks exclusively, so once they return no lookup can find what they
// removed: that is what lets a holder acknowledge a revoke right after.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/chunk_id.h"

namespace weightcache::store {

// Most bindings one process holds (a node's lease table and its leases from
// other homes together); past it, Set refuses (the name is served by JavaScript).
inline constexpr size_t kMaxBindings = 200'000;

struct VersionBinding {
  std::string name;                                // container/key
  std::array<uint8_t, kObjectIdBytes> object{};    // chunks are ChunkId{object, i}
  std::string etag;                                // unquoted
  uint64_t size = 0;
  uint64_t chunk_size = 0;
  std::string last_modified;                       // an HTTP date, as the answer's Last-Modified
  std::string content_type;
  std::string content_md5;                         // base64, as the origin keeps it; empty: none
  int64_t deadline_ns = 0;                         // CLOCK_MONOTONIC: not used from then on
  // Set by the first lookup that found it: JavaScript renews used bindings before they run out.
  mutable std::atomic<bool> used{false};
  int64_t bound_ns = 0;                            // CLOCK_MONOTONIC: when JavaScript measured its validity
  mutable std::atomic<int64_t> reported_ns{0};     // the last lookup reported to JavaScript (ServedReport)
};

// A fast path answered from a binding: its name and version, and when (CLOCK_MONOTONIC).
// JavaScript's stale-read check (src/coherence/) runs on these as on its own resolutions,
// so a binding that outlived an invalidation or a revoke is counted even though only the
// I/O threads read it.
struct ServedReport {
  std::string name, etag;
  int64_t bound_ns = 0;
  int64_t used_ns = 0;
};
// Each binding is reported at most once per this long while lookups find it (one relaxed
// load per lookup otherwise): a stale binding in use is seen within about this long.
inline constexpr int64_t kServedReportEveryNs = 100'000'000;
// Reports waiting for JavaScript; past it new ones are dropped (counted in served_dropped()).
inline constexpr size_t kMaxServedReports = 4096;

int64_t MonotonicNs();

class BindingTable {
 public:
  // Installs or replaces `b`. False when the table is full.
  bool Set(std::shared_ptr<const VersionBinding> b);
  // The binding of `name` if installed and its deadline is after `now_ns`.
  std::shared_ptr<const VersionBinding> Lookup(std::string_view name, int64_t now_ns) const;
  bool Remove(std::string_view name);
  // Removes every binding whose name starts with `prefix` ('' for all); returns how many.
  size_t RemovePrefix(std::string_view prefix);
  // Names of bindings a lookup has used that run out within `within_ns` of `now_ns` (at most `max`):
  // JavaScript renews their leases, so names served only on the fast path do not lapse to JavaScript.
  std::vector<std::string> UsedExpiring(int64_t now_ns, int64_t within_ns, size_t max) const;
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  // The reports of bindings lookups used (at most one per binding per kServedReportEveryNs), oldest first.
  std::vector<ServedReport> TakeServed();
  uint64_t served_dropped() const { return served_dropped_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 64;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::shared_ptr<const VersionBinding>, Hash, std::equal_to<>> map;
  };
  Shard& ShardOf(std::string_view name) { return shards_[Hash{}(name) % kShards]; }
  const Shard& ShardOf(std::string_view name) const { return shards_[Hash{}(name) % kShards]; }
  size_t PruneExpired(Shard& s, int64_t now_ns);  // s.mu held exclusively

  void NoteServed(const VersionBinding& b, int64_t now_ns) const;

  std::array<Shard, kShards> shards_;
  std::atomic<size_t> size_{0};
  mutable std::mutex served_mu_;
  mutable std::vector<ServedReport> served_;
  mutable std::atomic<uint64_t> served_dropped_{0};
};

}  // namespace weightcache::store
