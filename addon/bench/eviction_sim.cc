// Replays a chunk access trace (loadtest/store/eviction-trace.ts writes it)
// through several eviction policies at several DRAM sizes and prints byte
// hit ratios as JSON rows for the loadtest runner. S3-FIFO is the store's
// own class (addon/src/store/eviction.h); LRU (what lru-cache did), CLOCK and
// segmented LRU are written here against the same intrusive node, so the
// comparison is like for like. Run by loadtest/store/eviction.ts:
//
//   g++ -std=c++20 -O2 -Iaddon/src addon/bench/eviction_sim.cc -o sim
//   ./sim trace.txt 16GiB 32GiB 64GiB
//
// Trace lines: "<t_ms> <chunk key> <bytes> <touches>": a reader touching one
// chunk `touches` times in a burst (4 MiB ranges: 1; 64 KiB ranges: 64),
// spread over the next few milliseconds.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/eviction.h"

using weightcache::store::NodeList;
using weightcache::store::PolicyNode;
using weightcache::store::S3Fifo;

namespace {

struct Access {
  uint32_t t_ms;
  uint64_t key;
  uint64_t bytes;
  uint32_t touches;
};

struct SimEntry : PolicyNode {
  uint64_t key = 0;
  bool ref = false;     // CLOCK
  bool protected_ = false;  // SLRU
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual const char* name() const = 0;
  virtual void Admit(SimEntry* e, uint32_t now) = 0;
  virtual void Hit(SimEntry* e, uint32_t now) = 0;
  virtual SimEntry* Evict() = 0;
};

class Lru : public Policy {
 public:
  const char* name() const override { return "LRU (lru-cache, before)"; }
  void Admit(SimEntry* e, uint32_t) override { l_.PushHead(e); }
  void Hit(SimEntry* e, uint32_t) override {
    l_.Remove(e);
    l_.PushHead(e);
  }
  SimEntry* Evict() override {
    auto* t = static_cast<SimEntry*>(l_.tail());
    if (t) l_.Remove(t);
    return t;
  }

 private:
  NodeList l_;
};

class Clock : public Policy {
 public:
  const char* name() const override { return "CLOCK"; }
  void Admit(SimEntry* e, uint32_t) override {
    e->ref = false;
    l_.PushHead(e);
  }
  void Hit(SimEntry* e, uint32_t) override { e->ref = true; }
  SimEntry* Evict() override {
    for (;;) {
      auto* t = static_cast<SimEntry*>(l_.tail());
      if (!t) return nullptr;
      l_.Remove(t);
      if (!t->ref) return t;
      t->ref = false;
      l_.PushHead(t);
    }
  }

 private:
  NodeList l_;
};

// Segmented LRU: 20% probation, 80% protected (by bytes).
class Slru : public Policy {
 public:
  explicit Slru(uint64_t capacity) : protected_cap_(capacity * 8 / 10) {}
  const char* name() const override { return "segmented LRU (20/80)"; }
  void Admit(SimEntry* e, uint32_t) override {
    e->protected_ = false;
    probation_.PushHead(e);
  }
  void Hit(SimEntry* e, uint32_t) override {
    if (e->protected_) {
      protected_.Remove(e);
      protected_.PushHead(e);
      return;
    }
    probation_.Remove(e);
    e->protected_ = true;
    protected_.PushHead(e);
    while (protected_.bytes() > protected_cap_) {
      auto* t = static_cast<SimEntry*>(protected_.tail());
      protected_.Remove(t);
      t->protected_ = false;
      probation_.PushHead(t);
    }
  }
  SimEntry* Evict() override {
    NodeList& from = probation_.empty() ? protected_ : probation_;
    auto* t = static_cast<SimEntry*>(from.tail());
    if (t) from.Remove(t);
    return t;
  }

 private:
  uint64_t protected_cap_;
  NodeList probation_, protected_;
};

class S3 : public Policy {
 public:
  S3(uint64_t capacity, uint32_t correlated_ms, std::string label) : label_(std::move(label)) {
    S3Fifo::Options o;
    o.capacity_bytes = capacity;
    o.correlated_ms = correlated_ms;
    p_ = std::make_unique<S3Fifo>(o);
    correlated_ms_ = correlated_ms;
  }
  const char* name() const override { return label_.c_str(); }
  void Admit(SimEntry* e, uint32_t now) override { p_->Admit(e, now); }
  void Hit(SimEntry* e, uint32_t now) override { S3Fifo::Touch(e, now, correlated_ms_); }
  SimEntry* Evict() override { return static_cast<SimEntry*>(p_->Evict()); }

 private:
  std::string label_;
  std::unique_ptr<S3Fifo> p_;
  uint32_t correlated_ms_ = 0;
};

struct Result {
  uint64_t bytes = 0, hit_bytes = 0, bursts = 0, hit_bursts = 0;
};

Result Replay(const std::vector<Access>& trace, Policy& p, uint64_t capacity) {
  std::unordered_map<uint64_t, SimEntry*> map;
  std::vector<std::unique_ptr<SimEntry>> pool;
  uint64_t used = 0;
  Result r;
  for (const Access& a : trace) {
    uint64_t per_touch = a.bytes / a.touches;
    for (uint32_t i = 0; i < a.touches; i++) {
      // Touches of one burst are spread over a few milliseconds.
      uint32_t now = a.t_ms + i / 16;
      uint64_t bytes = i + 1 == a.touches ? a.bytes - per_touch * i : per_touch;
      r.bytes += bytes;
      auto it = map.find(a.key);
      if (it != map.end()) {
        r.hit_bytes += bytes;
        if (i == 0) r.hit_bursts++;
        p.Hit(it->second, now);
        continue;
      }
      if (a.bytes > capacity) continue;
      while (used + a.bytes > capacity) {
        SimEntry* v = p.Evict();
        if (!v) break;
        used -= v->charge;
        map.erase(v->key);
      }
      auto e = std::make_unique<SimEntry>();
      e->key = a.key;
      e->charge = a.bytes;
      e->ghost_key = a.key * 0x9E3779B97F4A7C15ull;
      used += a.bytes;
      p.Admit(e.get(), now);
      map.emplace(a.key, e.get());
      pool.push_back(std::move(e));
    }
    r.bursts++;
  }
  return r;
}

uint64_t ParseSize(const char* s) {
  char* end;
  double v = std::strtod(s, &end);
  if (!std::strcmp(end, "GiB")) return static_cast<uint64_t>(v * (1ull << 30));
  if (!std::strcmp(end, "MiB")) return static_cast<uint64_t>(v * (1ull << 20));
  return static_cast<uint64_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TRACE SIZE... (e.g. 16GiB)\n", argv[0]);
    return 2;
  }
  FILE* f = std::fopen(argv[1], "r");
  if (!f) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<Access> trace;
  Access a;
  while (std::fscanf(f, "%" SCNu32 " %" SCNu64 " %" SCNu64 " %" SCNu32, &a.t_ms, &a.key, &a.bytes, &a.touches) == 4) {
    if (a.touches == 0) a.touches = 1;
    trace.push_back(a);
  }
  std::fclose(f);
  std::printf("[");
  bool first = true;
  for (int i = 2; i < argc; i++) {
    uint64_t cap = ParseSize(argv[i]);
    std::vector<std::unique_ptr<Policy>> policies;
    policies.push_back(std::make_unique<Lru>());
    policies.push_back(std::make_unique<Clock>());
    policies.push_back(std::make_unique<Slru>(cap));
    policies.push_back(std::make_unique<S3>(cap, 0, "S3-FIFO"));
    policies.push_back(std::make_unique<S3>(cap, 1000, "weightcache store (S3-FIFO, 1 s correlation)"));
    for (auto& p : policies) {
      Result r = Replay(trace, *p, cap);
      std::printf("%s\n  {\"case\": \"DRAM %s\", \"server\": \"%s\", \"metric\": \"byte hit ratio\", \"unit\": \"ratio\", \"median\": %.4f}",
                  first ? "" : ",", argv[i], p->name(), static_cast<double>(r.hit_bytes) / r.bytes);
      first = false;
      std::printf(",\n  {\"case\": \"DRAM %s\", \"server\": \"%s\", \"metric\": \"chunk hit ratio\", \"unit\": \"ratio\", \"median\": %.4f}",
                  argv[i], p->name(), static_cast<double>(r.hit_bursts) / r.bursts);
    }
  }
  std::printf("\n]\n");
  return 0;
}
