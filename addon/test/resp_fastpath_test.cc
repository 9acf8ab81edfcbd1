// Unit tests of the native RESP door's fast path (addon/src/resp/fastpath.h):
// the integer and range rules against src/resp/commands/types.ts parseInteger
// and getrange.ts redisRange (Redis's), which commands and keys it answers
// and which it leaves to JavaScript, the reply bytes of each, grants, and
// chunk references released on every path. Run by npm test
// (test/native/cpp.test.ts) plainly and under ASan+UBSan.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "resp/fastpath.h"
#include "store/bindings.h"
#include "store/store.h"
#include "check.h"

using namespace weightcache;
using namespace weightcache::resp;

namespace {


constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;

void TestIntegers() {
  int64_t v = 7;
  CHECK(ParseRespInteger("0", v) && v == 0);
  CHECK(ParseRespInteger("-0", v) && v == 0);
  CHECK(ParseRespInteger("-12", v) && v == -12);
  CHECK(ParseRespInteger("999999999999999999", v) && v == 999999999999999999);
  CHECK(!ParseRespInteger("1000000000000000000", v));  // 19 digits
  CHECK(!ParseRespInteger("01", v));
  CHECK(!ParseRespInteger("+1", v));
  CHECK(!ParseRespInteger("", v));
  CHECK(!ParseRespInteger("-", v));
  CHECK(!ParseRespInteger(" 1", v));
  CHECK(!ParseRespInteger("1x", v));
}

void TestRedisRange() {
  int64_t a = 0, b = 0;
  CHECK(RedisRange(10, 0, -1, a, b) && a == 0 && b == 9);
  CHECK(RedisRange(10, -3, -1, a, b) && a == 7 && b == 9);
  CHECK(RedisRange(10, -100, 3, a, b) && a == 0 && b == 3);
  CHECK(RedisRange(10, 5, 100, a, b) && a == 5 && b == 9);
  CHECK(!RedisRange(10, 5, 4, a, b));
  CHECK(!RedisRange(10, -1, -2, a, b));
  CHECK(!RedisRange(10, 10, 20, a, b));
  CHECK(!RedisRange(0, 0, -1, a, b));
  CHECK(RedisRange(10, -100, -50, a, b) && a == 0 && b == 0);  // Redis: both clamp to 0, one byte
}

struct World {
  RespFastPath fp;
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  store::ChunkId id;
  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    fp.store = store::Store::Create(so, &error);
    fp.bindings = std::make_shared<store::BindingTable>();
    fp.max_get_bytes = 2 * kChunk;
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<uint8_t>(i * 7);
    id.object.fill(5);
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/a.bin";
    b->object = id.object;
    b->etag = "v1";
    b->size = kSize;
    b->chunk_size = kChunk;
    b->deadline_ns = INT64_MAX;
    fp.bindings->Set(b);
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      fp.store->Insert(id, data.data() + i * kChunk, std::min<uint64_t>(kChunk, kSize - i * kChunk), 0, "");
    }
  }
};

std::string Reply(const RespAnswer& a) {
  std::string s = a.head;
  for (const auto& p : a.pieces) s.append(reinterpret_cast<const char*>(p.data), p.len);
  if (a.bulk) s += "\r\n";
  for (const RespAnswer& e : a.elements) s += Reply(e);
  return s;
}

std::string Bulk(const std::vector<uint8_t>& d, size_t from, size_t to) {
  return "$" + std::to_string(to - from + 1) + "\r\n" + std::string(d.begin() + from, d.begin() + to + 1) + "\r\n";
}

void TestAnswers() {
  World w;
  RespGrant all;
  all.all = true;
  auto ask = [&](std::vector<std::string> args, const RespGrant* g, std::string* out) {
    RespAnswer a;
    bool ok = TryRespFast(w.fp, args, g, a);
    if (ok && out) *out = Reply(a);
    return ok;
  };
  std::string r;
  CHECK(ask({"GETRANGE", "models/a.bin", "0", "-1"}, &all, &r) == false);  // 12188 bytes > max_get_bytes
  CHECK(ask({"getrange", "models/a.bin", "10", "5000"}, &all, &r) && r == Bulk(w.data, 10, 5000));
  CHECK(ask({"GetRange", "models/a.bin", "-100", "-1"}, &all, &r) && r == Bulk(w.data, kSize - 100, kSize - 1));
  CHECK(ask({"GETRANGE", "models/a.bin", "5", "4"}, &all, &r) && r == "$0\r\n\r\n");
  CHECK(ask({"GETRANGE", "models/a.bin", "99999", "100000"}, &all, &r) && r == "$0\r\n\r\n");
  CHECK(!ask({"GETRANGE", "models/a.bin", "x", "1"}, &all, &r));  // JavaScript's error
  CHECK(!ask({"GETRANGE", "models/a.bin", "9007199254740993", "1"}, &all, &r));
  CHECK(!ask({"GETRANGE", "models/a.bin", "1"}, &all, &r));
  CHECK(!ask({"GET", "models/a.bin"}, &all, &r));  // over max_get_bytes: JavaScript's error
  CHECK(ask({"STRLEN", "models/a.bin"}, &all, &r) && r == ":" + std::to_string(kSize) + "\r\n");
  CHECK(ask({"EXISTS", "models/a.bin"}, &all, &r) && r == ":1\r\n");
  CHECK(ask({"EXISTS", "models/a.bin", "models/a.bin"}, &all, &r) && r == ":2\r\n");  // counted twice
  CHECK(!ask({"EXISTS", "models/a.bin", "models/b.bin"}, &all, &r));  // b unbound: JavaScript counts
  CHECK(!ask({"STRLEN", "models/b.bin"}, &all, &r));           // no binding
  CHECK(!ask({"STRLEN", "{v1}models/a.bin"}, &all, &r));       // pinned
  CHECK(!ask({"STRLEN", "models/a.bin"}, nullptr, &r));        // not authenticated
  RespGrant other;
  other.containers = {"datasets", "modelsx"};
  CHECK(!ask({"STRLEN", "models/a.bin"}, &other, &r));
  other.containers.push_back("models");
  CHECK(ask({"STRLEN", "models/a.bin"}, &other, &r));
  CHECK(!ask({"PING"}, &all, &r));
  CHECK(!IsFastCommand({"PING"}) && IsFastCommand({"gEt", "x"}) && !IsFastCommand({"getx", "x"}));
  // A small object's GET.
  w.fp.max_get_bytes = kSize;
  CHECK(ask({"GET", "models/a.bin"}, &all, &r) && r == Bulk(w.data, 0, kSize - 1));
  // MGET: every key a hit, the whole reply within max_get_bytes; else JavaScript's.
  CHECK(!ask({"MGET", "models/a.bin", "models/a.bin"}, &all, &r));  // 2 × kSize > max_get_bytes
  w.fp.max_get_bytes = 2 * kSize;
  CHECK(ask({"mget", "models/a.bin", "models/a.bin"}, &all, &r) &&
        r == "*2\r\n" + Bulk(w.data, 0, kSize - 1) + Bulk(w.data, 0, kSize - 1));
  CHECK(ask({"MGET", "models/a.bin"}, &all, &r) && r == "*1\r\n" + Bulk(w.data, 0, kSize - 1));
  uint64_t unbound = w.fp.stats.no_binding.load();
  CHECK(!ask({"MGET", "models/a.bin", "models/b.bin"}, &all, &r));  // b is nil there
  CHECK(w.fp.stats.no_binding.load() == unbound + 1);
  CHECK(!ask({"MGET", "models/a.bin", "{v1}models/a.bin"}, &all, &r));
  CHECK(ask({"MGET", "models/a.bin"}, &other, &r));  // `other` holds models by now
  RespGrant none;
  none.containers = {"datasets"};
  CHECK(!ask({"MGET", "models/a.bin"}, &none, &r));
  CHECK(!ask({"MGET"}, &all, &r));  // arity: JavaScript's error
  CHECK(w.fp.store->outstanding_refs() == 0);
  // A chunk missing: JavaScript reads it, and no reference is kept.
  w.id.index = 1;
  w.fp.store->Erase(w.id);
  CHECK(!ask({"GETRANGE", "models/a.bin", "0", "-1"}, &all, &r));
  CHECK(ask({"GETRANGE", "models/a.bin", "0", "100"}, &all, &r) && r == Bulk(w.data, 0, 100));
  CHECK(w.fp.stats.misses.load() == 1);
  CHECK(w.fp.store->outstanding_refs() == 0);
  // An expired binding is not used.
  auto b = std::make_shared<store::VersionBinding>();
  b->name = "models/old.bin";
  b->size = 1;
  b->chunk_size = kChunk;
  b->deadline_ns = store::MonotonicNs() - 1;
  w.fp.bindings->Set(b);
  CHECK(!ask({"STRLEN", "models/old.bin"}, &all, &r));
}

}  // namespace

int main() {
  TestIntegers();
  TestRedisRange();
  TestAnswers();
  return CheckResult("resp_fastpath_test");
}
