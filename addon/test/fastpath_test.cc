// Unit tests of the native door's fast path (addon/src/http/fastpath.h) and
// what it reads: SHA-256 and the token table (auth/), version bindings
// (store/bindings.h) read by many threads while one removes them, the Range
// and entity-tag rules against src/read/range.ts's and conditional.ts's
// cases, and whole requests answered from a real store (heads byte for byte,
// chunk references released). Run by npm test (test/native/cpp.test.ts)
// plainly, under ASan+UBSan, and the binding table under TSan.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "auth/sha256.h"
#include "auth/token_table.h"
#include "http/fastpath.h"
#include "http/parser.h"
#include "store/bindings.h"
#include "store/store.h"
#include "check.h"

using namespace weightcache;
using namespace weightcache::http;

namespace {


std::string Hex(const auth::Digest& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) s += k[b >> 4], s += k[b & 15];
  return s;
}

void TestSha256() {
  CHECK(Hex(auth::Sha256("", 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Hex(auth::Sha256("abc", 3)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 56 bytes: padding spills a block
  CHECK(Hex(auth::Sha256(two.data(), two.size())) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1'000'000, 'a');
  CHECK(Hex(auth::Sha256(million.data(), million.size())) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

void TestTokens() {
  CHECK(auth::BearerToken("Bearer abc") == "abc");
  CHECK(auth::BearerToken("bEaReR \t abc \t") == "abc");
  CHECK(auth::BearerToken("Bearer").empty());
  CHECK(auth::BearerToken("Bearerabc").empty());
  CHECK(auth::BearerToken("Bearer a b").empty());
  CHECK(auth::BearerToken("Basic abc").empty());
  CHECK(auth::BearerToken("Bearer ab\xc3\xa9").empty());
  auth::TokenTable t;
  CHECK(t.Allows("", "models"));  // auth off
  std::string a(32, 'a'), b(32, 'b');
  auth::TokenGrant all{auth::Sha256(a.data(), a.size()), false, true, {}};
  auth::TokenGrant scoped{auth::Sha256(b.data(), b.size()), false, false, {"models"}};
  t.Replace(true, {all, scoped});
  CHECK(t.Allows(a, "anything"));
  CHECK(t.Allows(b, "models"));
  CHECK(!t.Allows(b, "other"));
  CHECK(!t.Allows(std::string(32, 'c'), "models"));
  CHECK(!t.Allows("", "models"));
}

void TestRangesAndTags() {
  std::vector<ByteRange> r;
  CHECK(ParseRange("bytes=0-9", 100, 16, r) == RangeKind::kRanges && r.size() == 1 && r[0].start == 0 && r[0].end == 9);
  CHECK(ParseRange("bytes=-10", 100, 16, r) == RangeKind::kRanges && r[0].start == 90 && r[0].end == 99);
  CHECK(ParseRange("bytes=-1000", 100, 16, r) == RangeKind::kRanges && r[0].start == 0);
  CHECK(ParseRange("bytes=50-", 100, 16, r) == RangeKind::kRanges && r[0].end == 99);
  CHECK(ParseRange("bytes=50-1000000000000000000000", 100, 16, r) == RangeKind::kRanges && r[0].end == 99);
  CHECK(ParseRange(" Bytes = 0-9 , ", 100, 16, r) == RangeKind::kRanges && r.size() == 1);
  CHECK(ParseRange("bytes=100-", 100, 16, r) == RangeKind::kUnsatisfiable);
  CHECK(ParseRange("bytes=-0", 100, 16, r) == RangeKind::kUnsatisfiable);
  CHECK(ParseRange("bytes=5-1", 100, 16, r) == RangeKind::kNone);
  CHECK(ParseRange("bytes=abc", 100, 16, r) == RangeKind::kNone);
  CHECK(ParseRange("items=0-1", 100, 16, r) == RangeKind::kNone);
  CHECK(ParseRange("bytes=-", 100, 16, r) == RangeKind::kNone);
  CHECK(ParseRange("bytes=0-0,10-19,5-14", 100, 16, r) == RangeKind::kRanges && r.size() == 2 && r[1].start == 5 && r[1].end == 19);
  CHECK(ParseRange("bytes=0-9,10-19", 100, 16, r) == RangeKind::kRanges && r.size() == 1 && r[0].end == 19);
  CHECK(ParseRange("bytes=0-9,0-9,0-9", 100, 16, r) == RangeKind::kNone);  // a byte asked for three times
  CHECK(ParseRange("bytes=0-1,3-4,6-7", 100, 1, r) == RangeKind::kNone);    // more than 2 × maxRanges specs
  CHECK(ParseRange("bytes=0-1,3-4", 100, 1, r) == RangeKind::kNone);        // more than maxRanges after merging
  CHECK(ParseRange(std::string(8193, ' '), 100, 16, r) == RangeKind::kNone);
  CHECK(EtagListMatches("*", "v", false));
  CHECK(EtagListMatches("\"x\", \"v\"", "v", false));
  CHECK(!EtagListMatches("W/\"v\"", "v", false));
  CHECK(EtagListMatches("W/\"v\"", "v", true));
  CHECK(!EtagListMatches("\"x\", *", "v", true));
  CHECK(!EtagListMatches("v", "v", true));
  CHECK(HttpDate(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
}

void TestBindingsUnderConcurrency() {
  store::BindingTable t;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> found{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; i++) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        for (int k = 0; k < 64; k++) {
          auto b = t.Lookup("c/k" + std::to_string(k), store::MonotonicNs());
          if (b) found += b->size == static_cast<uint64_t>(k) ? 1 : 0;
        }
      }
    });
  }
  auto install = [&](int k) {
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "c/k" + std::to_string(k);
    b->size = static_cast<uint64_t>(k);
    b->deadline_ns = store::MonotonicNs() + 1'000'000'000;
    return t.Set(std::move(b));
  };
  // The readers are running (they found what is installed) before the removals start.
  for (int k = 0; k < 64; k++) install(k);
  for (int spin = 0; spin < 5000 && found.load() == 0; spin++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int round = 0; round < 200; round++) {
    for (int k = 0; k < 64; k++) CHECK(install(k));
    if (round % 2 == 0) {
      for (int k = 0; k < 64; k += 2) t.Remove("c/k" + std::to_string(k));
      // Once Remove returned, no lookup finds it.
      for (int k = 0; k < 64; k += 2) CHECK(!t.Lookup("c/k" + std::to_string(k), store::MonotonicNs()));
    } else {
      CHECK(t.RemovePrefix("c/") == 64);
      CHECK(t.size() == 0);
    }
  }
  stop = true;
  for (auto& th : readers) th.join();
  CHECK(found.load() > 0);
  auto expired = std::make_shared<store::VersionBinding>();
  expired->name = "c/old";
  expired->deadline_ns = store::MonotonicNs() - 1;
  t.Set(expired);
  CHECK(!t.Lookup("c/old", store::MonotonicNs()));
  // Renewal: only bindings a lookup used, and only those running out soon.
  auto soon = std::make_shared<store::VersionBinding>();
  soon->name = "c/soon";
  soon->deadline_ns = store::MonotonicNs() + 1'000'000'000;
  t.Set(soon);
  int64_t now = store::MonotonicNs();
  CHECK(t.UsedExpiring(now, 2'000'000'000, 10).empty());
  CHECK(t.Lookup("c/soon", now));
  CHECK(t.UsedExpiring(now, 2'000'000'000, 10) == std::vector<std::string>{"c/soon"});
  CHECK(t.UsedExpiring(now, 500'000'000, 10).empty());
}

// A request through the parser and the fast path, against `fp`.
bool Ask(FastPath& fp, const std::string& raw, FastAnswer& out) {
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return false;
  return TryFastPath(fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", out);
}

void TestAnswers() {
  store::StoreOptions so;
  so.max_bytes = 64ull << 20;
  std::string error;
  auto fp = std::make_shared<FastPath>();
  fp->store = store::Store::Create(so, &error);
  fp->bindings = std::make_shared<store::BindingTable>();
  fp->tokens = std::make_shared<auth::TokenTable>();
  CHECK(fp->store != nullptr);
  const uint64_t cs = 1 << 20, size = 2 * cs + 100;
  std::vector<uint8_t> data(size);
  for (size_t i = 0; i < size; i++) data[i] = static_cast<uint8_t>(i * 7);
  store::ChunkId id;
  id.object.fill(9);
  for (uint32_t i = 0; i < 3; i++) {
    id.index = i;
    uint64_t len = std::min<uint64_t>(cs, size - i * cs);
    CHECK(fp->store->Insert(id, data.data() + i * cs, len, 0xabcd0000u + i, ""));
  }
  auto b = std::make_shared<store::VersionBinding>();
  b->name = "models/w.bin";
  b->object = id.object;
  b->etag = "v1";
  b->size = size;
  b->chunk_size = cs;
  b->last_modified = "Thu, 02 Jan 2025 03:04:05 GMT";
  b->content_type = "application/octet-stream";
  b->deadline_ns = store::MonotonicNs() + 60'000'000'000;
  fp->bindings->Set(b);
  const std::string pre = "ETag: \"v1\"\r\nLast-Modified: Thu, 02 Jan 2025 03:04:05 GMT\r\nAccept-Ranges: bytes\r\nCache-Control: no-cache\r\n";
  const std::string tail = "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n";
  {
    FastAnswer a;
    CHECK(Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nRange: bytes=1048576-2097151\r\n\r\n", a));
    CHECK(a.head == "HTTP/1.1 206 Partial Content\r\n" + pre +
                        "Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\nX-Cache-Source: dram\r\n"
                        "Content-Range: bytes 1048576-2097151/2097252\r\nX-Chunk-Crc32c: abcd0001\r\n" + tail);
    CHECK(a.pieces.size() == 1 && std::memcmp(a.pieces[0].data, data.data() + cs, cs) == 0);
  }
  {
    FastAnswer a;
    CHECK(Ask(*fp, "GET /v1/objects/models/w.bin?version=\"v1\" HTTP/1.1\r\nHost: 127.0.0.1:80\r\nRange: bytes=1048570-1048589\r\nConnection: close\r\n\r\n", a));
    CHECK(a.close && a.pieces.size() == 2 && a.body_bytes == 20);
    CHECK(a.head.find("X-Chunk-Crc32c") == std::string::npos);
    CHECK(a.head.find("Connection: close\r\n\r\n") != std::string::npos);
  }
  {
    FastAnswer a;
    CHECK(Ask(*fp, "HEAD /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nIf-None-Match: W/\"v1\"\r\n\r\n", a));
    CHECK(a.head == "HTTP/1.1 304 Not Modified\r\n" + pre + tail && a.pieces.empty());
  }
  FastAnswer no;
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nIf-Modified-Since: x\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nRange: bytes=0-1,5-9\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin?version=v2 HTTP/1.1\r\nHost: c\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/%77.bin HTTP/1.1\r\nHost: c\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: 1.2.3.4.5\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nIf-Match: \"v0\"\r\n\r\n", no));
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.0\r\nHost: c\r\n\r\n", no));
  id.index = 2;
  fp->store->Erase(id);
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\n\r\n", no));  // a chunk not in DRAM
  CHECK(fp->store->outstanding_refs() == 0);  // what the declined request took is released
  std::string token(32, 't');
  fp->tokens->Replace(true, {{auth::Sha256(token.data(), token.size()), false, false, {"other"}, {}}});
  CHECK(!Ask(*fp, "GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer " + token + "\r\nRange: bytes=0-1\r\n\r\n", no));
  CHECK(fp->stats.unauthorised.load() == 1);
}

}  // namespace

// Lookups report the bindings they used for the stale-read check: once per binding per period, bounded.
void TestServedReports() {
  store::BindingTable t;
  auto b = std::make_shared<store::VersionBinding>();
  b->name = "c/k";
  b->etag = "v1";
  b->bound_ns = 7;
  b->deadline_ns = store::MonotonicNs() + 10'000'000'000;
  CHECK(t.Set(b));
  int64_t now = store::MonotonicNs();
  for (int i = 0; i < 100; i++) CHECK(t.Lookup("c/k", now + i));
  std::vector<store::ServedReport> got = t.TakeServed();
  CHECK(got.size() == 1);
  CHECK(got.size() == 1 && got[0].name == "c/k" && got[0].etag == "v1" && got[0].bound_ns == 7 && got[0].used_ns == now);
  CHECK(t.TakeServed().empty());
  CHECK(t.Lookup("c/k", now + store::kServedReportEveryNs));  // a period later: reported again
  CHECK(t.TakeServed().size() == 1);
  // Past kMaxServedReports waiting, reports are dropped and counted.
  for (size_t i = 0; i < store::kMaxServedReports + 10; i++) {
    auto x = std::make_shared<store::VersionBinding>();
    x->name = "d/" + std::to_string(i);
    x->deadline_ns = b->deadline_ns;
    CHECK(t.Set(x));
    CHECK(t.Lookup(x->name, now + 2 * store::kServedReportEveryNs));
  }
  CHECK(t.TakeServed().size() == store::kMaxServedReports);
  CHECK(t.served_dropped() == 10);
}

int main() {
  TestSha256();
  TestTokens();
  TestRangesAndTags();
  TestBindingsUnderConcurrency();
  TestServedReports();
  TestAnswers();
  return CheckResult("fastpath_test");
}
