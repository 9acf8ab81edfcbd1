// Index: ChunkId → entry, read by many threads at once without a global lock.
//
// 64 shards, each a hash map behind its own reader-writer lock, chosen by the
// top bits of the id's hash. A lookup takes one shard's lock shared, so
// lookups from different threads only meet when they hit the same shard,
// and even then only share it; inserts and removals take one shard's lock
// exclusively, for a single map operation.
//
// The caller acquires what it needs from the entry (a reference) inside the
// Find callback, while the shard lock is held: that is what makes "found"
// and "still alive" the same fact, since removal takes the same lock.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "store/chunk_id.h"

namespace weightcache::store {

template <class Entry>
class ShardedIndex {
 public:
  static constexpr int kShardBits = 6;
  static constexpr size_t kShards = size_t{1} << kShardBits;

  // Calls fn(entry) under the shard's shared lock; false when `id` is absent.
  template <class F>
  bool Find(const ChunkId& id, uint64_t hash, F&& fn) const {
    const Shard& s = ShardOf(hash);
    std::shared_lock lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) return false;
    fn(it->second);
    return true;
  }

  // Maps id → e; returns the entry it replaced, or null.
  Entry* Put(const ChunkId& id, uint64_t hash, Entry* e) {
    Shard& s = ShardOf(hash);
    std::unique_lock lock(s.mu);
    auto [it, inserted] = s.map.try_emplace(id, e);
    if (inserted) {
      s.size.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    Entry* old = it->second;
    it->second = e;
    return old;
  }

  // Removes `id` if it maps to `expected` (any entry when null); returns what was removed.
  Entry* Remove(const ChunkId& id, uint64_t hash, Entry* expected) {
    Shard& s = ShardOf(hash);
    std::unique_lock lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end() || (expected && it->second != expected)) return nullptr;
    Entry* e = it->second;
    s.map.erase(it);
    s.size.fetch_sub(1, std::memory_order_relaxed);
    return e;
  }

  // Calls fn(entry) for every entry and empties the index (shutdown, clear).
  template <class F>
  void Drain(F&& fn) {
    for (Shard& s : shards_) {
      std::unique_lock lock(s.mu);
      for (auto& [id, e] : s.map) fn(e);
      s.map.clear();
      s.size.store(0, std::memory_order_relaxed);
    }
  }

  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) n += s.size.load(std::memory_order_relaxed);
    return n;
  }

 private:
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<ChunkId, Entry*, ChunkIdHash> map;
    std::atomic<size_t> size{0};
  };

  Shard& ShardOf(uint64_t hash) { return shards_[hash >> (64 - kShardBits)]; }
  const Shard& ShardOf(uint64_t hash) const { return shards_[hash >> (64 - kShardBits)]; }

  std::array<Shard, kShards> shards_;
};

}  // namespace weightcache::store
