#include "store/store.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace weightcache::store {
namespace {

uint32_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000);
}

size_t ThreadSlot() {
  static std::atomic<size_t> next{0};
  thread_local size_t slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

S3Fifo::Options PolicyOptions(const StoreOptions& o) {
  S3Fifo::Options p;
  p.capacity_bytes = o.max_bytes;
  p.correlated_ms = o.correlated_ms;
  return p;
}

}  // namespace

void SpreadCounter::Add(int64_t n) { slots_[ThreadSlot() % kSlots].v.fetch_add(n, std::memory_order_relaxed); }

int64_t SpreadCounter::Sum() const {
  int64_t sum = 0;
  for (const Slot& s : slots_) sum += s.v.load(std::memory_order_relaxed);
  return sum;
}

// --- Ref ---------------------------------------------------------------------

Ref::Ref(Store* s, Entry* e) : s_(s), e_(e) { s_->refs_.Add(1); }

const uint8_t* Ref::data() const { return s_->arena_->At(e_->offset); }

uint8_t* Ref::writable_data() const {
  return e_->state.load(std::memory_order_acquire) == Entry::kPending ? s_->arena_->At(e_->offset) : nullptr;
}

Ref Ref::Clone() const {
  if (!e_) return {};
  e_->refs.fetch_add(1, std::memory_order_relaxed);
  return Ref(s_, e_);
}

void Ref::reset() {
  if (!e_) return;
  Store* s = s_;
  Entry* e = e_;
  s_ = nullptr, e_ = nullptr;
  s->refs_.Add(-1);
  s->Release(e);
}

// --- Store -------------------------------------------------------------------

std::shared_ptr<Store> Store::Create(const StoreOptions& o, std::string* error) {
  if (o.max_bytes < Arena::kPage) {
    *error = "the DRAM budget must be at least one page (" + std::to_string(Arena::kPage) + " bytes), got " +
             std::to_string(o.max_bytes);
    return nullptr;
  }
  uint64_t reserve = o.reserve_bytes != 0 ? o.reserve_bytes : 2 * o.max_bytes + (64ull << 20);
  auto arena = Arena::Create(reserve, error);
  if (!arena) return nullptr;
  return std::shared_ptr<Store>(new Store(o, std::move(arena)));
}

Store::Store(const StoreOptions& o, std::unique_ptr<Arena> arena)
    : o_(o), arena_(std::move(arena)), policy_(PolicyOptions(o)) {
  if (o_.prefault_count > 0 && o_.prefault_bytes > 0 && Arena::ChargeOf(o_.prefault_bytes) <= o_.max_bytes) {
    pf_thread_ = std::thread([this] { PrefaultLoop(); });
  }
}

void Store::PrefaultLoop() {
  const uint64_t size = Arena::ChargeOf(o_.prefault_bytes);
  std::unique_lock<std::mutex> lock(pf_mu_);
  while (!pf_stop_) {
    bool made = false;
    // Within the budget only: warm pages are resident memory like any other.
    if (arena_->WarmCount(size) < o_.prefault_count && arena_->stats().warm_bytes + size <= WarmLimit()) {
      lock.unlock();
      uint64_t off = arena_->AllocateCold(size);
      if (off != Arena::kNone) {
        Arena::Populate(arena_->At(off), size);
        arena_->AddWarm(off, size);
        // Fills may have taken the room while this extent was populated: trim again, so
        // charged + retired + warm never stays above the budget (a fill that takes a cold
        // extent after this trims too).
        arena_->TrimWarm(WarmLimit());
        prefaulted_.fetch_add(1, std::memory_order_relaxed);
        made = true;
      }
      lock.lock();
    }
    if (!made) pf_cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

Store::~Store() {
  if (pf_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(pf_mu_);
      pf_stop_ = true;
    }
    pf_cv_.notify_one();
    pf_thread_.join();
  }
  // No Ref outlives the store (JS Buffers keep it alive), except those it holds itself.
  evicted_.clear();
  index_.Drain([](Entry* e) { delete e; });
  for (Entry* e : pending_) delete e;
}

uint64_t Store::Resident() const {
  return charged_.load(std::memory_order_relaxed) + pending_bytes_.load(std::memory_order_relaxed) +
         retired_.load(std::memory_order_relaxed);
}

uint64_t Store::WarmLimit() const {
  uint64_t resident = Resident();
  return resident >= o_.max_bytes ? 0 : o_.max_bytes - resident;
}

Ref Store::Lookup(const ChunkId& id) {
  uint64_t hash = HashOf(id);
  Entry* found = nullptr;
  index_.Find(id, hash, [&](Entry* e) {
    // Under the shard lock: eviction removes under the same lock, so this
    // entry cannot be freed between finding it and holding it.
    e->refs.fetch_add(1, std::memory_order_relaxed);
    found = e;
  });
  if (!found) {
    misses_.Add(1);
    return {};
  }
  hits_.Add(1);
  if (o_.correlated_ms != 0) S3Fifo::Touch(found, NowMs(), o_.correlated_ms);
  else S3Fifo::Touch(found, 0, 0);
  return Ref(this, found);
}

bool Store::Contains(const ChunkId& id) const {
  return index_.Find(id, HashOf(id), [](Entry*) {});
}

bool Store::EvictOne() {
  PolicyNode* n = policy_.Evict();
  if (!n) return false;
  Entry* e = static_cast<Entry*>(n);
  index_.Remove(e->id, e->hash, e);
  Retire(e, true);
  return true;
}

void Store::Retire(Entry* e, bool evicted) {
  charged_.fetch_sub(e->charge, std::memory_order_relaxed);
  data_.fetch_sub(e->length, std::memory_order_relaxed);
  retired_.fetch_add(e->charge, std::memory_order_relaxed);
  e->state.store(Entry::kRetired, std::memory_order_release);
  if (e->viewed.exchange(2, std::memory_order_acq_rel) == 1) retired_viewed_.push_back(e->serial);
  if (evicted) evictions_.fetch_add(1, std::memory_order_relaxed);
  if (evicted && o_.keep_evicted) {
    if (evicted_.size() < o_.max_evicted) {
      evicted_.push_back(Ref(this, e));  // the index's reference, handed to the demotion list
      return;
    }
    demotions_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  Release(e);
}

Ref Store::Allocate(uint64_t len) {
  const uint64_t charge = Arena::ChargeOf(len);
  std::lock_guard<std::mutex> lock(mu_);
  if (len == 0 || charge > o_.max_bytes) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  auto charged = [&] { return charged_.load(std::memory_order_relaxed) + pending_bytes_.load(std::memory_order_relaxed); };
  while (charged() + charge > o_.max_bytes && EvictOne()) {
  }
  // Retired chunks are real memory until their last reader lets go: past the
  // overflow allowance, refuse rather than grow (the caller serves the chunk
  // from ordinary memory, uncached).
  if (charged() + charge > o_.max_bytes || Resident() + charge > o_.max_bytes + o_.overflow_bytes) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  bool warm = false;
  uint64_t off = arena_->Allocate(charge, &warm);
  // A fragmented arena: evict until an extent that large is free.
  while (off == Arena::kNone && EvictOne()) off = arena_->Allocate(charge, &warm);
  if (off == Arena::kNone) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  auto* e = new Entry();
  e->charge = charge;
  e->offset = off;
  e->length = len;
  pending_.push_back(e);
  pending_bytes_.fetch_add(charge, std::memory_order_relaxed);
  // Warm pages count as resident: keep charged + retired + warm within the budget.
  if (!warm) arena_->TrimWarm(WarmLimit());
  else if (pf_thread_.joinable()) pf_cv_.notify_one();  // make the next one
  return Ref(this, e);
}

Ref Store::PendingAt(const uint8_t* p, uint64_t len) {
  if (!arena_->Contains(p)) return {};
  uint64_t off = arena_->OffsetOf(p);
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry* e : pending_) {
    if (e->offset != off || e->length != len) continue;
    // Its last reference may be going away on another thread right now (Free
    // then waits for mu_ to unlist it): only a live entry may gain one.
    uint32_t n = e->refs.load(std::memory_order_relaxed);
    while (n != 0 && !e->refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) {
    }
    return n == 0 ? Ref() : Ref(this, e);
  }
  return {};
}

bool Store::Commit(const Ref& ref, const ChunkId& id, uint32_t crc, std::string label) {
  Entry* e = ref.e_;
  if (!e || ref.s_ != this) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(pending_.begin(), pending_.end(), e);
  if (it == pending_.end()) return false;
  pending_.erase(it);
  e->id = id;
  e->serial = next_serial_++;
  e->hash = HashOf(id);
  e->ghost_key = e->hash;
  e->crc = crc;
  e->label = std::move(label);
  e->refs.fetch_add(1, std::memory_order_relaxed);  // the index's reference
  pending_bytes_.fetch_sub(e->charge, std::memory_order_relaxed);
  charged_.fetch_add(e->charge, std::memory_order_relaxed);
  data_.fetch_add(e->length, std::memory_order_relaxed);
  // Release: a reader that finds the entry sees its bytes and fields.
  e->state.store(Entry::kIndexed, std::memory_order_release);
  policy_.Admit(e, o_.correlated_ms != 0 ? NowMs() : 0);
  if (Entry* old = index_.Put(id, e->hash, e)) {
    policy_.Remove(old);
    Retire(old, false);
  }
  inserts_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Ref Store::Insert(const ChunkId& id, const uint8_t* data, uint64_t len, uint32_t crc, std::string label) {
  Ref r = Allocate(len);
  if (!r) return r;
  std::memcpy(r.writable_data(), data, len);
  copied_bytes_.fetch_add(len, std::memory_order_relaxed);
  Commit(r, id, crc, std::move(label));
  return r;
}

bool Store::Erase(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = index_.Remove(id, HashOf(id), nullptr);
  if (!e) return false;
  policy_.Remove(e);
  Retire(e, false);
  return true;
}

void Store::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Entry*> all;
  index_.Drain([&](Entry* e) { all.push_back(e); });
  for (Entry* e : all) {
    policy_.Remove(e);
    Retire(e, false);
  }
  evicted_.clear();
}

std::vector<Ref> Store::TakeEvicted() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Ref> out;
  out.swap(evicted_);
  return out;
}

bool Store::MarkViewed(const Ref& ref) {
  uint8_t expected = 0;
  return ref.e_->viewed.compare_exchange_strong(expected, 1, std::memory_order_acq_rel) || expected == 1;
}

std::vector<uint64_t> Store::TakeRetiredViewed() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  out.swap(retired_viewed_);
  return out;
}

void Store::Release(Entry* e) {
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) Free(e);
}

void Store::Free(Entry* e) {
  // Last reference: nobody can reach the entry any more (it left the index,
  // or was never in it).
  switch (e->state.load(std::memory_order_acquire)) {
    case Entry::kPending: {
      // An allocation dropped before it was committed (a fill that failed).
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::find(pending_.begin(), pending_.end(), e);
      if (it != pending_.end()) pending_.erase(it);
      pending_bytes_.fetch_sub(e->charge, std::memory_order_relaxed);
      break;
    }
    case Entry::kRetired:
      retired_.fetch_sub(e->charge, std::memory_order_relaxed);
      break;
    default:
      break;  // unreachable: an indexed entry holds the index's reference
  }
  arena_->Free(e->offset, e->charge, WarmLimit());
  delete e;
}

StoreStats Store::stats() const {
  StoreStats s;
  s.capacity_bytes = o_.max_bytes;
  s.entries = index_.size();
  s.retired_bytes = retired_.load(std::memory_order_relaxed);
  Arena::Stats a = arena_->stats();
  s.warm_bytes = a.warm_bytes;
  s.reserved_bytes = a.reserved;
  s.hits = static_cast<uint64_t>(hits_.Sum());
  s.misses = static_cast<uint64_t>(misses_.Sum());
  s.inserts = inserts_.load(std::memory_order_relaxed);
  s.copied_bytes = copied_bytes_.load(std::memory_order_relaxed);
  s.evictions = evictions_.load(std::memory_order_relaxed);
  s.refused = refused_.load(std::memory_order_relaxed);
  s.prefaulted = prefaulted_.load(std::memory_order_relaxed);
  s.demotions_dropped = demotions_dropped_.load(std::memory_order_relaxed);
  s.outstanding_refs = refs_.Sum();
  {
    // Charged, data and pending bytes change together under mu_: read them together.
    std::lock_guard<std::mutex> lock(mu_);
    s.charged_bytes = charged_.load(std::memory_order_relaxed);
    s.data_bytes = data_.load(std::memory_order_relaxed);
    s.pending_bytes = pending_bytes_.load(std::memory_order_relaxed);
    s.small_bytes = policy_.small_bytes();
    s.main_bytes = policy_.main_bytes();
  }
  return s;
}

}  // namespace weightcache::store
