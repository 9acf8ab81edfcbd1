// Store microbenchmark: lookups/s from 1 and 2 threads (each lookup takes and
// drops a reference, as a send would), and the cost of taking and dropping a
// reference on a chunk already found. Prints rows as JSON for the loadtest
// runner (loadtest/store/micro.ts builds and runs it):
//
//   g++ -std=c++20 -O2 -pthread -Iaddon/src addon/src/store/{arena,store}.cc \
//       addon/bench/store_bench.cc -o store_bench && ./store_bench [seconds]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

using namespace weightcache::store;
using Clock = std::chrono::steady_clock;

namespace {

ChunkId Id(uint32_t object, uint32_t index) {
  ChunkId id;
  uint64_t x = (uint64_t{object} + 1) * 0x9E3779B97F4A7C15ull;
  for (auto& b : id.object) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    b = static_cast<uint8_t>(x >> 56);
  }
  id.index = index;
  return id;
}

struct Result {
  double per_second;  // wall clock, all threads together
  double ns_per_op;   // CPU time per operation (threads' own CPU clocks): fair on a busy machine
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// `threads` threads each run lookups of random held chunks for `seconds`.
Result Lookups(Store& s, int threads, double seconds, uint32_t keys, bool touch_bytes) {
  std::vector<std::thread> ts;
  std::vector<uint64_t> counts(threads);
  std::vector<double> cpu(threads);
  auto until = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(7 + t);
      std::vector<ChunkId> ids;
      for (uint32_t k = 0; k < keys; k++) ids.push_back(Id(k / 64, k % 64));
      uint64_t n = 0, sum = 0;
      double c0 = ThreadCpuSeconds();
      while (Clock::now() < until) {
        for (int i = 0; i < 1024; i++) {
          Ref r = s.Lookup(ids[rng() % keys]);
          if (touch_bytes) sum += r.data()[0];
          n++;
        }
      }
      cpu[t] = ThreadCpuSeconds() - c0;
      counts[t] = n + (sum & 1);
    });
  }
  for (auto& th : ts) th.join();
  uint64_t total = 0;
  double cpu_total = 0;
  for (int t = 0; t < threads; t++) total += counts[t], cpu_total += cpu[t];
  return {total / seconds, cpu_total * 1e9 / total};
}

Result RefGetPut(Store& s, int threads, double seconds) {
  Ref base = s.Lookup(Id(0, 0));
  std::vector<std::thread> ts;
  std::vector<uint64_t> counts(threads);
  std::vector<double> cpu(threads);
  auto until = Clock::now() + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      uint64_t n = 0;
      double c0 = ThreadCpuSeconds();
      while (Clock::now() < until) {
        for (int i = 0; i < 1024; i++) {
          Ref r = base.Clone();
          n++;
        }
      }
      cpu[t] = ThreadCpuSeconds() - c0;
      counts[t] = n;
    });
  }
  for (auto& th : ts) th.join();
  uint64_t total = 0;
  double cpu_total = 0;
  for (int t = 0; t < threads; t++) total += counts[t], cpu_total += cpu[t];
  return {total / seconds, cpu_total * 1e9 / total};
}

void Row(bool& first, const char* c, const char* server, const char* metric, const char* unit, double v) {
  std::printf("%s\n  {\"case\": \"%s\", \"server\": \"%s\", \"metric\": \"%s\", \"unit\": \"%s\", \"median\": %.6g}",
              first ? "" : ",", c, server, metric, unit, v);
  first = false;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  // 16 Ki entries: a 64 GiB DRAM tier of 4 MiB chunks (each 4 KiB here, to stay small).
  constexpr uint32_t kKeys = 16 * 1024;
  StoreOptions o;
  o.max_bytes = uint64_t{kKeys} * 4096;
  o.correlated_ms = 1000;
  std::string err;
  auto s = Store::Create(o, &err);
  if (!s) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::vector<uint8_t> page(4096, 1);
  for (uint32_t k = 0; k < kKeys; k++) s->Insert(Id(k / 64, k % 64), page.data(), page.size(), 0, "");
  std::printf("[");
  bool first = true;
  for (int threads : {1, 2}) {
    std::string c = "store · " + std::to_string(kKeys) + " chunks · " + std::to_string(threads) + " thread" +
                     (threads > 1 ? "s" : "");
    Result l = Lookups(*s, threads, seconds, kKeys, true);
    Row(first, c.c_str(), "weightcache", "lookups/s", "ops/s", l.per_second);
    Row(first, c.c_str(), "weightcache", "CPU per lookup", "ns", l.ns_per_op);
    Result r = RefGetPut(*s, threads, seconds);
    Row(first, c.c_str(), "weightcache", "ref get+put/s", "ops/s", r.per_second);
    Row(first, c.c_str(), "weightcache", "CPU per ref get+put", "ns", r.ns_per_op);
  }
  std::printf("\n]\n");
  return 0;
}
