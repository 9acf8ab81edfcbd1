// CRC32C microbenchmark: bytes per second of each implementation the CPU has
// (addon/src/crc32c.cc, compiled in) against memcpy of the same buffer, and
// of checking a 4 MiB chunk block by block, as a v2 chunk read does, for a
// few block sizes. Built and run by the loadtest runner (loadtest/crc32c.ts);
// prints one JSON object per measurement.
//
//   crc32c_bench <seconds per measurement> <buffer bytes,...> <block bytes,...>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crc32c.h"

using weightcache::Crc32cAvailable;
using weightcache::Crc32cImpl;
using weightcache::Crc32cName;
using weightcache::Crc32cWith;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<size_t> List(const char* s) {
  std::vector<size_t> out;
  for (const char* p = s; *p;) {
    out.push_back(std::strtoull(p, const_cast<char**>(&p), 10));
    if (*p == ',') p++;
  }
  return out;
}

volatile uint32_t sink;

// Bytes per second of fn over `bytes`, repeated for `seconds`. The buffer is
// reused, so sizes that fit a cache measure the code, 4 MiB and up memory.
template <class F>
double Rate(double seconds, size_t bytes, F&& fn) {
  fn();  // warm
  double t0 = Now(), t = t0;
  uint64_t done = 0;
  while (t - t0 < seconds) {
    for (int i = 0; i < 8; i++) {
      fn();
      done += bytes;
    }
    t = Now();
  }
  return static_cast<double>(done) / (t - t0);
}

void Print(const std::string& c, const std::string& server, double bps) {
  std::printf("{\"case\":\"%s\",\"server\":\"%s\",\"gbps\":%.4f}\n", c.c_str(), server.c_str(), bps / 1e9);
}

std::string Size(size_t n) {
  return n >= (1u << 20) ? std::to_string(n >> 20) + " MiB" : std::to_string(n >> 10) + " KiB";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: crc32c_bench <seconds> <buffer bytes,...> <block bytes,...>\n");
    return 2;
  }
  double seconds = std::atof(argv[1]);
  std::vector<uint8_t> src(64u << 20), dst(64u << 20);
  for (size_t i = 0; i < src.size(); i++) src[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  std::memcpy(dst.data(), src.data(), dst.size());  // fault both in
  for (size_t n : List(argv[2])) {
    if (n > src.size()) continue;
    std::string c = Size(n) + " buffer";
    for (int i = 0; i < weightcache::kCrc32cImplCount; i++) {
      auto impl = static_cast<Crc32cImpl>(i);
      if (!Crc32cAvailable(impl)) continue;
      Print(c, std::string("weightcache crc32c ") + Crc32cName(impl),
            Rate(seconds, n, [&] { sink = Crc32cWith(impl, 0, src.data(), n); }));
    }
    Print(c, "memcpy", Rate(seconds, n, [&] {
            std::memcpy(dst.data(), src.data(), n);
            sink = dst[n - 1];
          }));
  }
  // Verifying a 4 MiB chunk as v2 reads do: one CRC per block, each compared.
  const size_t chunk = 4u << 20;
  for (size_t b : List(argv[3])) {
    std::vector<uint32_t> table(chunk / b);
    for (size_t k = 0; k < table.size(); k++) table[k] = weightcache::Crc32c(0, src.data() + k * b, b);
    for (int i = 0; i < weightcache::kCrc32cImplCount; i++) {
      auto impl = static_cast<Crc32cImpl>(i);
      if (!Crc32cAvailable(impl) || impl == Crc32cImpl::kTable) continue;
      Print("4 MiB chunk checked by " + Size(b) + " blocks", std::string("weightcache crc32c ") + Crc32cName(impl),
            Rate(seconds, chunk, [&] {
              uint32_t bad = 0;
              for (size_t k = 0; k < table.size(); k++) bad += Crc32cWith(impl, 0, src.data() + k * b, b) != table[k];
              sink = bad;
            }));
    }
    Print("4 MiB chunk checked by " + Size(b) + " blocks", "memcpy", Rate(seconds, chunk, [&] {
            std::memcpy(dst.data(), src.data(), chunk);
            sink = dst[chunk - 1];
          }));
  }
  return 0;
}
