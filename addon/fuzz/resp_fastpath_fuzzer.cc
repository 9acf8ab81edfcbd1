// libFuzzer target for the native RESP door's fast path (addon/src/resp/fastpath.h):
// what a client's command name, keys and GETRANGE indexes make it answer.
// npm test builds it with clang (-fsanitize=fuzzer,address,undefined) and runs
// it for a bounded time (test/native/fuzz.test.ts).
//
// Input: byte 0 picks the set-up (bit 0: a grant of another container only,
// bit 1: the last chunk is missing); the rest is the command's arguments,
// separated by '\n'. Besides what the sanitizers catch, it traps when a bulk
// reply's length is not its bytes', a slice lies outside its chunk or the
// object, an MGET array's count or sizes are not its elements', or a chunk
// reference outlives the reply.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resp/fastpath.h"

using namespace weightcache;
using namespace weightcache::resp;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;
constexpr uint64_t kSmall = 1000;  // models/s.bin: one chunk, so MGETs of it fit max_get_bytes

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
    id.object.fill(9);
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/a.bin";
    b->object = id.object;
    b->size = kSize;
    b->chunk_size = kChunk;
    b->deadline_ns = INT64_MAX;
    fp.bindings->Set(b);
    auto s = std::make_shared<store::VersionBinding>();
    s->name = "models/s.bin";
    s->object.fill(7);
    s->size = kSmall;
    s->chunk_size = kChunk;
    s->deadline_ns = INT64_MAX;
    fp.bindings->Set(s);
    store::ChunkId small;
    small.object = s->object;
    small.index = 0;
    fp.store->Insert(small, data.data(), kSmall, 0, "");
  }
  void Fill(bool last_missing) {
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      if (i == 2 && last_missing) {
        fp.store->Erase(id);
        continue;
      }
      if (!fp.store->Contains(id)) {
        fp.store->Insert(id, data.data() + i * kChunk, std::min<uint64_t>(kChunk, kSize - i * kChunk), 0, "");
      }
    }
  }
};

// A reply is well formed: a bulk's head names its length and its slices lie inside the chunks
// they reference; an integer has no body; an array (top level only) holds bulk elements.
void CheckAnswer(const RespAnswer& a, bool top) {
  Check(!a.head.empty());
  if (!a.elements.empty() || a.head[0] == '*') {
    Check(top && a.pieces.empty() && a.head == "*" + std::to_string(a.elements.size()) + "\r\n");
    uint64_t total = 0;
    for (const RespAnswer& e : a.elements) {
      Check(e.bulk);
      CheckAnswer(e, false);
      total += e.body_bytes;
    }
    Check(total == a.body_bytes);
  } else if (a.bulk) {
    Check(a.head == "$" + std::to_string(a.body_bytes) + "\r\n");
    uint64_t sum = 0;
    for (const store::Piece& piece : a.pieces) {
      const uint8_t* base = piece.ref.data();
      Check(!piece.from_disk && piece.data >= base && piece.data + piece.len <= base + piece.ref.size());
      sum += piece.len;
    }
    Check(sum == a.body_bytes && a.body_bytes <= kSize);
  } else {
    Check(a.pieces.empty() && a.elements.empty() && a.head[0] == ':');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  if (size < 1) return 0;
  w->Fill((data[0] & 2) != 0);
  RespGrant grant;
  if (data[0] & 1) grant.containers = {"datasets"};
  else grant.all = true;
  std::vector<std::string> args(1);
  for (size_t i = 1; i < size; i++) {
    if (data[i] == '\n') args.emplace_back();
    else args.back().push_back(static_cast<char>(data[i]));
  }
  {
    RespAnswer a;
    if (TryRespFast(w->fp, args, &grant, a)) CheckAnswer(a, true);
  }
  Check(w->fp.store->outstanding_refs() == 0);
  return 0;
}
