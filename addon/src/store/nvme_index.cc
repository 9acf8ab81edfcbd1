#include "store/nvme_index.h"

#include <vector>

namespace weightcache::store {


bool NvmeIndex::Put(const ChunkId& id, NvmeEntry e) {
  auto entry = std::make_shared<const NvmeEntry>(std::move(e));
  std::shared_ptr<const NvmeEntry> old;  // its file is closed outside the lock
  Shard& s = ShardOf(id);
  {
    std::unique_lock lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) {
      if (size_.load(std::memory_order_relaxed) >= kMaxNvmeEntries) return false;
      s.map.emplace(id, entry);
      size_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    old = std::move(it->second);
    it->second = entry;
  }
  // A replaced file under the same path must not be read through the old one's descriptor.
  files_.Erase(old->path);
  return true;
}

bool NvmeIndex::Remove(const ChunkId& id) {
  std::shared_ptr<const NvmeEntry> old;
  Shard& s = ShardOf(id);
  {
    std::unique_lock lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) return false;
    old = std::move(it->second);
    s.map.erase(it);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  // A file kept open keeps its blocks allocated after the tier unlinks it.
  files_.Erase(old->path);
  return true;
}

void NvmeIndex::Clear() {
  for (Shard& s : shards_) {
    std::unordered_map<ChunkId, std::shared_ptr<const NvmeEntry>, ChunkIdHash> gone;
    {
      std::unique_lock lock(s.mu);
      gone.swap(s.map);
    }
    size_.fetch_sub(gone.size(), std::memory_order_relaxed);
  }
  files_.Clear();
}

std::shared_ptr<const NvmeEntry> NvmeIndex::Find(const ChunkId& id) const {
  const Shard& s = ShardOf(id);
  std::shared_lock lock(s.mu);
  auto it = s.map.find(id);
  return it == s.map.end() ? nullptr : it->second;
}

void NvmeIndex::NoteUsed(const std::shared_ptr<const NvmeEntry>& e) {
  if (e->used.load(std::memory_order_relaxed)) return;  // noted already: the common case, no lock
  std::lock_guard<std::mutex> lock(used_mu_);
  if (used_.size() >= kMaxNvmeUsedNoted || e->used.exchange(true)) return;
  used_.push_back(e);
}

std::vector<std::string> NvmeIndex::TakeUsed() {
  std::vector<std::shared_ptr<const NvmeEntry>> taken;
  {
    std::lock_guard<std::mutex> lock(used_mu_);
    taken.swap(used_);
    for (const auto& e : taken) e->used.store(false, std::memory_order_relaxed);
  }
  std::vector<std::string> labels;
  labels.reserve(taken.size());
  for (const auto& e : taken) labels.push_back(e->label);
  return labels;
}

}  // namespace weightcache::store
