// Native tests of the chunk store (addon/src/store/), built plainly, under
// ASan + UBSan and under TSan by scripts/native-checks.mjs (npm test runs it
// through test/native/cpp.test.ts):
//
//   node scripts/native-checks.mjs unit
//   STRESS_OPS=200000 addon/build-checks/unit-tsan/store_test   # a longer stress run
//
// The JS binding has its own tests (test/store/); these cover what JS cannot
// reach: several threads looking up, inserting and evicting at once while
// references are held, and the arena's page accounting.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/arena.h"
#include "store/store.h"
#include "store/range.h"
#include "check.h"

using namespace weightcache::store;

namespace {


std::vector<std::pair<const char*, std::function<void()>>>& Tests() {
  static std::vector<std::pair<const char*, std::function<void()>>> t;
  return t;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { Tests().emplace_back(name, std::move(fn)); }
};
#define TEST(name)                              \
  void name();                                  \
  Register reg_##name(#name, name);             \
  void name()

ChunkId Id(uint32_t object, uint32_t index) {
  ChunkId id;
  // Spread like a SHA-256 prefix would be.
  uint64_t x = (uint64_t{object} + 1) * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < id.object.size(); i++) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    id.object[i] = static_cast<uint8_t>(x >> 56);
  }
  id.index = index;
  return id;
}

// Deterministic bytes for (object, index): a reader can check what it got.
void Fill(uint8_t* p, uint64_t len, uint32_t object, uint32_t index) {
  uint32_t x = object * 2654435761u ^ (index + 1) * 40503u;
  for (uint64_t i = 0; i < len; i++) {
    x = x * 1664525u + 1013904223u;
    p[i] = static_cast<uint8_t>(x >> 24);
  }
}
bool Matches(const uint8_t* p, uint64_t len, uint32_t object, uint32_t index) {
  std::vector<uint8_t> want(len);
  Fill(want.data(), len, object, index);
  return std::memcmp(p, want.data(), len) == 0;
}

std::shared_ptr<Store> Make(uint64_t max_bytes, uint32_t correlated_ms = 0, bool keep_evicted = false,
                            uint64_t overflow = 64ull << 20) {
  StoreOptions o;
  o.max_bytes = max_bytes;
  o.correlated_ms = correlated_ms;
  o.keep_evicted = keep_evicted;
  o.overflow_bytes = overflow;
  std::string err;
  auto s = Store::Create(o, &err);
  if (!s) std::fprintf(stderr, "Store::Create: %s\n", err.c_str());
  return s;
}

Ref Put(Store& s, uint32_t object, uint32_t index, uint64_t len) {
  std::vector<uint8_t> buf(len);
  Fill(buf.data(), len, object, index);
  return s.Insert(Id(object, index), buf.data(), len, 0, "o" + std::to_string(object) + "/" + std::to_string(index));
}

uint64_t ResidentBlocks(const Arena& a) {
  struct stat st;
  fstat(a.fd(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace

// --- arena -------------------------------------------------------------------

TEST(arena_charges_whole_pages) {
  CHECK_EQ(Arena::ChargeOf(1), 4096u);
  CHECK_EQ(Arena::ChargeOf(352), 4096u);
  CHECK_EQ(Arena::ChargeOf(4096), 4096u);
  CHECK_EQ(Arena::ChargeOf(4097), 8192u);
  CHECK_EQ(Arena::ChargeOf(4u << 20), 4u << 20);
}

TEST(arena_allocates_coalesces_and_returns_pages) {
  std::string err;
  auto a = Arena::Create(1 << 20, &err);
  CHECK(a != nullptr);
  uint64_t x = a->Allocate(256 << 10);
  uint64_t y = a->Allocate(256 << 10);
  uint64_t z = a->Allocate(512 << 10);
  CHECK(x != Arena::kNone && y != Arena::kNone && z != Arena::kNone);
  CHECK_EQ(a->Allocate(4096), Arena::kNone);  // full
  std::memset(a->At(x), 1, 256 << 10);
  std::memset(a->At(y), 2, 256 << 10);
  CHECK(ResidentBlocks(*a) >= (512u << 10));
  a->Free(x, 256 << 10, 0);  // not warm: pages go back
  a->Free(y, 256 << 10, 0);
  CHECK(ResidentBlocks(*a) < (64u << 10));
  // x and y coalesced: a 512 KiB extent fits again.
  uint64_t w = a->Allocate(512 << 10);
  CHECK(w != Arena::kNone);
  CHECK_EQ(a->stats().free_bytes, 0u);
  a->Free(w, 512 << 10, 0);
  a->Free(z, 512 << 10, 0);
  CHECK_EQ(a->stats().free_bytes, 1u << 20);
  CHECK_EQ(a->stats().largest_free, 1u << 20);
}

TEST(arena_keeps_warm_extents_for_same_size_reuse_within_limit) {
  std::string err;
  auto a = Arena::Create(1 << 20, &err);
  uint64_t x = a->Allocate(64 << 10);
  std::memset(a->At(x), 7, 64 << 10);
  a->Free(x, 64 << 10, 128 << 10);  // within the warm limit: kept resident
  CHECK_EQ(a->stats().warm_bytes, 64u << 10);
  bool warm = false;
  uint64_t y = a->Allocate(64 << 10, &warm);
  CHECK(warm);
  CHECK_EQ(y, x);
  a->Free(y, 64 << 10, 128 << 10);
  a->TrimWarm(0);
  CHECK_EQ(a->stats().warm_bytes, 0u);
  CHECK(ResidentBlocks(*a) < (64u << 10));
}

// --- store, one thread ---------------------------------------------------------

TEST(lookup_range_slices_chunks_and_refuses_indexes_past_32_bits) {
  auto s = Make(1 << 20);
  Put(*s, 1, 0, 1000);
  Put(*s, 1, 1, 1000);
  Put(*s, 1, 2, 500);
  RangeView v;
  CHECK(LookupRange(*s, Id(1, 0).object, 2500, 1000, 990, 2009, &v));
  CHECK_EQ(v.pieces.size(), 3u);
  CHECK_EQ(v.pieces[0].len, 10u);
  CHECK_EQ(v.pieces[1].len, 1000u);
  CHECK_EQ(v.pieces[2].len, 10u);
  CHECK(Matches(v.pieces[1].data, 1000, 1, 1));
  v = RangeView();
  // Chunk 2^32 would be chunk 0 if the index were truncated: never served as such.
  uint64_t far = (uint64_t{1} << 32) * 1000;
  CHECK(!LookupRange(*s, Id(1, 0).object, far + 1000, 1000, far, far + 9, &v));
  CHECK(v.pieces.empty());
  CHECK_EQ(s->outstanding_refs(), 0);
}

TEST(store_round_trip_and_miss) {
  auto s = Make(1 << 20);
  {
    Ref r = Put(*s, 1, 0, 1000);
    CHECK(r);
    Ref got = s->Lookup(Id(1, 0));
    CHECK(got);
    CHECK_EQ(got.size(), 1000u);
    CHECK(Matches(got.data(), 1000, 1, 0));
    CHECK(!s->Lookup(Id(1, 1)));
    CHECK(!s->Lookup(Id(2, 0)));
    CHECK(s->Contains(Id(1, 0)));
    CHECK_EQ(s->outstanding_refs(), 2);
  }
  CHECK_EQ(s->outstanding_refs(), 0);
  auto st = s->stats();
  CHECK_EQ(st.entries, 1u);
  CHECK_EQ(st.data_bytes, 1000u);
  CHECK_EQ(st.charged_bytes, 4096u);
  CHECK_EQ(st.hits, 1u);
  CHECK_EQ(st.misses, 2u);
}

TEST(store_never_exceeds_budget_and_frees_evicted_memory_after_last_reader) {
  auto s = Make(64 << 10);
  Ref held = Put(*s, 1, 0, 16 << 10);
  for (uint32_t i = 2; i < 40; i++) {
    Put(*s, i, 0, 16 << 10);
    CHECK(s->stats().charged_bytes <= (64u << 10));
  }
  CHECK(!s->Contains(Id(1, 0)));
  // Evicted but still referenced: the bytes are intact and counted as retired.
  CHECK(Matches(held.data(), 16 << 10, 1, 0));
  CHECK_EQ(s->stats().retired_bytes, 16u << 10);
  held.reset();
  CHECK_EQ(s->stats().retired_bytes, 0u);
  CHECK_EQ(s->outstanding_refs(), 0);
}

TEST(store_refuses_chunks_larger_than_budget_and_keeps_what_it_has) {
  auto s = Make(64 << 10);
  Put(*s, 1, 0, 100);
  CHECK(!Put(*s, 2, 0, (64 << 10) + 1));
  CHECK(s->Contains(Id(1, 0)));
  CHECK_EQ(s->stats().refused, 1u);
}

TEST(store_overwrite_replaces_bytes_and_accounting) {
  auto s = Make(1 << 20);
  Ref old = Put(*s, 1, 0, 500);
  std::vector<uint8_t> other(700, 0xAB);
  s->Insert(Id(1, 0), other.data(), other.size(), 42, "x");
  Ref got = s->Lookup(Id(1, 0));
  CHECK_EQ(got.size(), 700u);
  CHECK_EQ(got.crc32c(), 42u);
  CHECK(Matches(old.data(), 500, 1, 0));  // a reader of the old bytes still has them
  CHECK_EQ(s->stats().entries, 1u);
  CHECK_EQ(s->stats().data_bytes, 700u);
  CHECK_EQ(s->stats().evictions, 0u);
}

TEST(store_erase_and_clear) {
  auto s = Make(1 << 20);
  Put(*s, 1, 0, 10);
  Put(*s, 1, 1, 10);
  CHECK(s->Erase(Id(1, 0)));
  CHECK(!s->Erase(Id(1, 0)));
  CHECK(!s->Contains(Id(1, 0)));
  s->Clear();
  CHECK_EQ(s->stats().entries, 0u);
  CHECK_EQ(s->stats().charged_bytes, 0u);
  CHECK_EQ(s->outstanding_refs(), 0);
}

TEST(store_pending_allocation_counts_and_is_freed_if_never_committed) {
  auto s = Make(64 << 10);
  {
    Ref p = s->Allocate(32 << 10);
    CHECK(p);
    CHECK(p.writable_data() != nullptr);
    CHECK_EQ(s->stats().pending_bytes, 32u << 10);
    // Found again by its address (the JS binding commits a Buffer it handed out).
    Ref again = s->PendingAt(p.data(), 32 << 10);
    CHECK(again);
    CHECK(!s->PendingAt(p.data(), 100));
  }
  CHECK_EQ(s->stats().pending_bytes, 0u);
  Ref p = s->Allocate(8 << 10);
  Fill(p.writable_data(), 8 << 10, 5, 5);
  CHECK(s->Commit(p, Id(5, 5), 9, "five"));
  CHECK(!s->Commit(p, Id(5, 6), 9, "twice"));
  CHECK(p.writable_data() == nullptr);  // read-only once published
  CHECK(Matches(s->Lookup(Id(5, 5)).data(), 8 << 10, 5, 5));
}

TEST(store_refuses_when_retired_memory_passes_the_overflow) {
  auto s = Make(64 << 10, 0, false, 16 << 10);
  std::vector<Ref> held;
  for (uint32_t i = 0; i < 4; i++) held.push_back(Put(*s, i, 0, 16 << 10));
  held.push_back(Put(*s, 10, 0, 16 << 10));  // evicts one held chunk: 16 KiB retired
  CHECK(held.back());
  CHECK_EQ(s->stats().retired_bytes, 16u << 10);
  CHECK(!Put(*s, 11, 0, 16 << 10));  // would be 32 KiB retired, over the 16 KiB overflow
  held.clear();
  CHECK(Put(*s, 12, 0, 16 << 10));
}

TEST(store_hands_evicted_chunks_to_demotion) {
  auto s = Make(32 << 10, 0, true);
  Put(*s, 1, 0, 16 << 10);
  Put(*s, 2, 0, 16 << 10);
  Put(*s, 3, 0, 16 << 10);
  auto ev = s->TakeEvicted();
  CHECK_EQ(ev.size(), 1u);
  CHECK(ev[0].label() == "o1/0");
  CHECK(Matches(ev[0].data(), 16 << 10, 1, 0));
  ev.clear();
  CHECK_EQ(s->outstanding_refs(), 0);
  CHECK_EQ(s->stats().retired_bytes, 0u);
}

TEST(store_keeps_a_reused_set_through_one_large_scan) {
  // 100 chunks of 64 KiB budget; a hot set of 20 chunks read repeatedly, then
  // one scan of 500 new chunks read once. S3-FIFO keeps the hot set.
  auto s = Make(100 * (64 << 10));
  for (int round = 0; round < 3; round++) {
    for (uint32_t i = 0; i < 20; i++) {
      if (!s->Lookup(Id(1, i))) Put(*s, 1, i, 64 << 10);
    }
  }
  for (uint32_t i = 0; i < 500; i++) Put(*s, 2, i, 64 << 10);
  int kept = 0;
  for (uint32_t i = 0; i < 20; i++) kept += s->Contains(Id(1, i)) ? 1 : 0;
  CHECK_EQ(kept, 20);
}

TEST(store_prefaults_whole_chunk_extents_within_the_budget) {
  StoreOptions o;
  o.max_bytes = 8 * (64 << 10);
  o.correlated_ms = 0;
  o.prefault_bytes = 64 << 10;
  o.prefault_count = 4;
  std::string err;
  auto s = Store::Create(o, &err);
  for (int i = 0; i < 200 && s->stats().warm_bytes < 4u * (64 << 10); i++) usleep(5000);
  CHECK_EQ(s->stats().warm_bytes, 4u * (64 << 10));
  CHECK(ResidentBlocks(s->arena()) >= 4u * (64 << 10));
  // Fills take the resident extents; the budget still holds with them.
  std::vector<Ref> held;
  for (uint32_t i = 0; i < 8; i++) held.push_back(Put(*s, i, 0, 64 << 10));
  for (int i = 0; i < 20; i++) usleep(5000);
  auto st = s->stats();
  CHECK_EQ(st.charged_bytes, 8u * (64 << 10));
  CHECK_EQ(st.warm_bytes, 0u);  // no room left for more
  CHECK(st.prefaulted >= 4u);
}

// --- store, several threads ----------------------------------------------------

TEST(store_stress_lookups_inserts_evictions_from_several_threads) {
  // A budget of ~48 chunks over a key space of 400: constant eviction. Every
  // thread looks up, inserts, erases and holds references for a while,
  // checking every byte it reads. At the end every reference is back.
  constexpr uint32_t kKeys = 400;
  constexpr int kThreads = 4;
  const int ops = std::getenv("STRESS_OPS") ? std::atoi(std::getenv("STRESS_OPS")) : 40000;
  auto s = Make(48 * (16 << 10), 0, true, 4ull << 20);
  std::atomic<uint64_t> bad{0}, hits{0}, inserted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::vector<std::pair<Ref, uint32_t>> held;
      for (int i = 0; i < ops; i++) {
        uint32_t k = rng() % kKeys;
        uint64_t len = 1 + (k * 977) % (16 << 10);  // sizes vary per key, fixed per key
        int op = rng() % 100;
        if (op < 70) {
          Ref r = s->Lookup(Id(k, 0));
          if (r) {
            hits++;
            if (r.size() != len || !Matches(r.data(), len, k, 0)) bad++;
            if (held.size() < 8 && rng() % 4 == 0) held.emplace_back(std::move(r), k);
          }
        } else if (op < 93) {
          Ref r = s->Allocate(len);
          if (r) {
            Fill(r.writable_data(), len, k, 0);
            s->Commit(r, Id(k, 0), k, "k");
            inserted++;
          }
        } else if (op < 96) {
          s->Erase(Id(k, 0));
        } else if (t == 0) {
          s->TakeEvicted();  // the demotion consumer
        }
        if (!held.empty() && rng() % 3 == 0) {
          auto& [r, key] = held.back();
          if (!Matches(r.data(), r.size(), key, 0)) bad++;
          held.pop_back();
        }
        auto st = s->stats();
        CHECK(st.charged_bytes + st.pending_bytes <= 48u * (16 << 10));
      }
      for (auto& [r, key] : held)
        if (!Matches(r.data(), r.size(), key, 0)) bad++;
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  s->TakeEvicted();
  CHECK_EQ(bad.load(), 0u);
  CHECK(hits.load() > 0);
  CHECK(inserted.load() > 0);
  CHECK_EQ(s->outstanding_refs(), 0);
  auto st = s->stats();
  CHECK_EQ(st.retired_bytes, 0u);
  CHECK_EQ(st.pending_bytes, 0u);
  CHECK(st.evictions > 0);
  std::fprintf(stderr, "  stress: %llu hits, %llu inserts, %llu evictions, %llu entries left\n",
               static_cast<unsigned long long>(hits.load()), static_cast<unsigned long long>(inserted.load()),
               static_cast<unsigned long long>(st.evictions), static_cast<unsigned long long>(st.entries));
  s->Clear();
  CHECK_EQ(s->stats().charged_bytes, 0u);
}

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  int ran = 0;
  for (auto& [name, fn] : Tests()) {
    if (only && std::strstr(name, only) == nullptr) continue;
    int before = g_failures;
    fn();
    ran++;
    std::fprintf(stderr, "%s %s\n", g_failures == before ? "ok  " : "FAIL", name);
  }
  std::fprintf(stderr, "%d tests, %d failed checks\n", ran, g_failures.load());
  return g_failures == 0 && ran > 0 ? 0 : 1;
}
