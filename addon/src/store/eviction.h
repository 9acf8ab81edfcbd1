// Eviction policy: S3-FIFO (Yang et al., "FIFO queues are all you need for
// cache eviction", SOSP 2023), chosen by measurement over LRU, CLOCK and
// segmented LRU on a trace of several models loading (docs/tiers.md, and
// addon/bench/eviction_sim.cc, which runs this same class beside the others).
//
// Why it fits a chunk cache read from many threads:
// - A hit only bumps an atomic 2-bit counter in the entry (Touch): no list
//   to move, no lock. Lookups stay lock-free of the policy; only inserts and
//   evictions take the store's writer mutex.
// - Scan resistance: new chunks enter a small FIFO (10% of the bytes). One
//   large model read once flows through it and out (to the ghost list)
//   without touching the main FIFO, where the chunks read again live.
// - The ghost list remembers recently evicted ids: a chunk read again soon
//   after it left goes straight to the main FIFO.
//
// Correlated references: a loader reading 64 KiB ranges touches one 4 MiB
// chunk 64 times in a few milliseconds. Those are one use, not 64; counting
// them would promote every chunk of a one-off scan. A touch within
// `correlated_ms` of the last counted one is ignored (2Q's "correlated
// reference period").
//
// Not thread-safe except Touch: the store calls Admit/Remove/Evict under its
// writer mutex.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>

namespace weightcache::store {

// The policy's part of an entry (intrusive: no allocation per admit).
struct PolicyNode {
  enum Queue : uint8_t { kNone = 0, kSmall = 1, kMain = 2 };
  PolicyNode* prev = nullptr;
  PolicyNode* next = nullptr;
  uint64_t charge = 0;     // bytes the entry costs
  uint64_t ghost_key = 0;  // a hash of its id, for the ghost list
  uint8_t queue = kNone;
  std::atomic<uint8_t> freq{0};
  std::atomic<uint32_t> last_touch_ms{0};
};

// An intrusive FIFO of nodes: push at the head, take from the tail.
class NodeList {
 public:
  void PushHead(PolicyNode* n) {
    n->prev = nullptr;
    n->next = head_;
    if (head_) head_->prev = n;
    head_ = n;
    if (!tail_) tail_ = n;
    bytes_ += n->charge;
    count_++;
  }
  void Remove(PolicyNode* n) {
    (n->prev ? n->prev->next : head_) = n->next;
    (n->next ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    bytes_ -= n->charge;
    count_--;
  }
  PolicyNode* tail() const { return tail_; }
  PolicyNode* head() const { return head_; }
  bool empty() const { return head_ == nullptr; }
  uint64_t bytes() const { return bytes_; }
  uint64_t count() const { return count_; }

 private:
  PolicyNode* head_ = nullptr;
  PolicyNode* tail_ = nullptr;
  uint64_t bytes_ = 0;
  uint64_t count_ = 0;
};

class S3Fifo {
 public:
  struct Options {
    uint64_t capacity_bytes = 0;
    // Share of the bytes for the small (probation) FIFO.
    double small_ratio = 0.10;
    // Uses while in the small FIFO that earn a place in the main one.
    uint8_t promote_at = 1;
    // Touches closer together than this count once (0: every touch counts).
    uint32_t correlated_ms = 1000;
    // Bytes of evicted chunks the ghost list remembers, as a share of capacity.
    double ghost_ratio = 0.90;
  };

  explicit S3Fifo(const Options& o) : o_(o) {}

  static constexpr const char* kName = "s3-fifo";

  void Admit(PolicyNode* n, uint32_t now_ms) {
    n->freq.store(0, std::memory_order_relaxed);
    n->last_touch_ms.store(now_ms, std::memory_order_relaxed);
    if (ghost_.count(n->ghost_key) != 0) {
      // Read again soon after it was evicted: it belongs with the reused chunks.
      // (The ghost entry ages out in FIFO order like the others.)
      n->queue = PolicyNode::kMain;
      main_.PushHead(n);
    } else {
      n->queue = PolicyNode::kSmall;
      small_.PushHead(n);
    }
  }

  // Lock-free: called by readers on any thread. Lost increments under a race
  // only make the policy slightly less precise.
  static void Touch(PolicyNode* n, uint32_t now_ms, uint32_t correlated_ms) {
    if (correlated_ms != 0) {
      uint32_t last = n->last_touch_ms.load(std::memory_order_relaxed);
      if (now_ms - last < correlated_ms) return;
      n->last_touch_ms.store(now_ms, std::memory_order_relaxed);
    }
    uint8_t f = n->freq.load(std::memory_order_relaxed);
    if (f < 3) n->freq.store(static_cast<uint8_t>(f + 1), std::memory_order_relaxed);
  }

  void Remove(PolicyNode* n) {
    if (n->queue == PolicyNode::kSmall) small_.Remove(n);
    else if (n->queue == PolicyNode::kMain) main_.Remove(n);
    n->queue = PolicyNode::kNone;
  }

  // Unlinks and returns the next victim; null when nothing is held.
  PolicyNode* Evict() {
    for (;;) {
      bool from_small = !small_.empty() &&
                        (main_.empty() || small_.bytes() > static_cast<uint64_t>(o_.capacity_bytes * o_.small_ratio));
      if (from_small) {
        PolicyNode* t = small_.tail();
        small_.Remove(t);
        if (t->freq.load(std::memory_order_relaxed) >= o_.promote_at) {
          t->freq.store(0, std::memory_order_relaxed);
          t->queue = PolicyNode::kMain;
          main_.PushHead(t);
          continue;
        }
        Remember(t);
        t->queue = PolicyNode::kNone;
        return t;
      }
      if (main_.empty()) return nullptr;
      PolicyNode* t = main_.tail();
      main_.Remove(t);
      uint8_t f = t->freq.load(std::memory_order_relaxed);
      if (f > 0) {
        // CLOCK-like second chance inside the main FIFO.
        t->freq.store(static_cast<uint8_t>(f - 1), std::memory_order_relaxed);
        main_.PushHead(t);
        continue;
      }
      t->queue = PolicyNode::kNone;
      return t;
    }
  }

  uint64_t small_bytes() const { return small_.bytes(); }
  uint64_t main_bytes() const { return main_.bytes(); }
  uint64_t ghost_entries() const { return ghost_fifo_.size(); }
  uint32_t correlated_ms() const { return o_.correlated_ms; }

 private:
  void Remember(PolicyNode* t) {
    ghost_fifo_.emplace_back(t->ghost_key, t->charge);
    ghost_[t->ghost_key]++;
    ghost_bytes_ += t->charge;
    const auto limit = static_cast<uint64_t>(o_.capacity_bytes * o_.ghost_ratio);
    while (ghost_bytes_ > limit && !ghost_fifo_.empty()) {
      auto [key, charge] = ghost_fifo_.front();
      ghost_fifo_.pop_front();
      ghost_bytes_ -= charge;
      auto g = ghost_.find(key);
      if (g != ghost_.end() && --g->second == 0) ghost_.erase(g);
    }
  }

  Options o_;
  NodeList small_;
  NodeList main_;
  // The ghost list: evicted keys in eviction order, and how many times each is in it.
  std::deque<std::pair<uint64_t, uint64_t>> ghost_fifo_;
  std::unordered_map<uint64_t, uint32_t> ghost_;
  uint64_t ghost_bytes_ = 0;
};

}  // namespace weightcache::store
