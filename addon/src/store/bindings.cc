#include "store/bindings.h"

#include <time.h>

#include <mutex>

namespace weightcache::store {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

size_t BindingTable::PruneExpired(Shard& s, int64_t now_ns) {
  size_t n = 0;
  for (auto it = s.map.begin(); it != s.map.end();) {
    if (it->second->deadline_ns <= now_ns) {
      it = s.map.erase(it);
      n++;
    } else {
      ++it;
    }
  }
  size_.fetch_sub(n, std::memory_order_relaxed);
  return n;
}

bool BindingTable::Set(std::shared_ptr<const VersionBinding> b) {
  Shard& s = ShardOf(b->name);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(std::string_view(b->name));
  if (it != s.map.end()) {
    it->second = std::move(b);
    return true;
  }
  if (size_.load(std::memory_order_relaxed) >= kMaxBindings && PruneExpired(s, MonotonicNs()) == 0) return false;
  std::string name = b->name;
  s.map.emplace(std::move(name), std::move(b));
  size_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::shared_ptr<const VersionBinding> BindingTable::Lookup(std::string_view name, int64_t now_ns) const {
  const Shard& s = ShardOf(name);
  std::shared_lock lock(s.mu);
  auto it = s.map.find(name);
  if (it == s.map.end() || it->second->deadline_ns <= now_ns) return nullptr;
  // Written once per binding: later lookups only read the flag (no shared cache line written per hit).
  if (!it->second->used.load(std::memory_order_relaxed)) it->second->used.store(true, std::memory_order_relaxed);
  // Sampled for the stale-read check: one report per binding per period, taken by one lookup (the CAS).
  const VersionBinding& b = *it->second;
  int64_t last = b.reported_ns.load(std::memory_order_relaxed);
  if (now_ns - last >= kServedReportEveryNs &&
      b.reported_ns.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) {
    NoteServed(b, now_ns);
  }
  return it->second;
}

void BindingTable::NoteServed(const VersionBinding& b, int64_t now_ns) const {
  std::lock_guard lock(served_mu_);
  if (served_.size() >= kMaxServedReports) {
    served_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  served_.push_back(ServedReport{b.name, b.etag, b.bound_ns, now_ns});
}

std::vector<ServedReport> BindingTable::TakeServed() {
  std::vector<ServedReport> out;
  std::lock_guard lock(served_mu_);
  out.swap(served_);
  return out;
}

std::vector<std::string> BindingTable::UsedExpiring(int64_t now_ns, int64_t within_ns, size_t max) const {
  std::vector<std::string> out;
  for (const Shard& s : shards_) {
    std::shared_lock lock(s.mu);
    for (const auto& [name, b] : s.map) {
      if (out.size() >= max) return out;
      if (b->used.load(std::memory_order_relaxed) && b->deadline_ns > now_ns && b->deadline_ns - now_ns <= within_ns) {
        out.push_back(name);
      }
    }
  }
  return out;
}

bool BindingTable::Remove(std::string_view name) {
  Shard& s = ShardOf(name);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(name);
  if (it == s.map.end()) return false;
  s.map.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

size_t BindingTable::RemovePrefix(std::string_view prefix) {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::unique_lock lock(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (std::string_view(it->first).substr(0, prefix.size()) == prefix) {
        it = s.map.erase(it);
        n++;
      } else {
        ++it;
      }
    }
  }
  size_.fetch_sub(n, std::memory_order_relaxed);
  return n;
}

}  // namespace weightcache::store
