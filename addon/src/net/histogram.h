// A latency histogram that one I/O thread writes and any thread reads
// (relaxed atomics: a scrape sees each count whole, not a consistent snapshot
// of all of them). Its bucket bounds come from JavaScript, so answers made on
// the I/O threads land in the same buckets as those JavaScript times; the
// door sums every thread's at scrape time.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace weightcache::net {

class LatencyHistogram {
 public:
  static constexpr size_t kMaxBounds = 32;

  // Upper bounds in seconds, ascending (at most kMaxBounds; the rest ignored); before the thread starts.
  void SetBounds(const std::vector<double>& bounds_s) {
    bounds_ns_.clear();
    for (size_t i = 0; i < bounds_s.size() && i < kMaxBounds; i++) {
      bounds_ns_.push_back(static_cast<int64_t>(bounds_s[i] * 1e9));
    }
  }
  // The owner thread.
  void Observe(int64_t ns) {
    if (ns < 0) ns = 0;
    // The first bucket whose bound holds it (le: "less than or equal"); past every bound: +Inf.
    size_t i = std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) - bounds_ns_.begin();
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  // Any thread: adds this histogram's counts per bucket (bounds + 1: the last is +Inf), sum and count.
  void AddTo(std::vector<uint64_t>& counts, uint64_t& sum_ns, uint64_t& count) const {
    counts.resize(bounds_ns_.size() + 1);
    for (size_t i = 0; i <= bounds_ns_.size(); i++) counts[i] += counts_[i].load(std::memory_order_relaxed);
    sum_ns += sum_ns_.load(std::memory_order_relaxed);
    count += count_.load(std::memory_order_relaxed);
  }

 private:
  std::vector<int64_t> bounds_ns_;
  std::array<std::atomic<uint64_t>, kMaxBounds + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace weightcache::net
