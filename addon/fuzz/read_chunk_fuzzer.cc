// libFuzzer target for the transport's native chunk service
// (addon/src/transport/chunk_serve.h): what a peer's READ_CHUNK meta makes the
// I/O thread answer from the store. npm test builds it with clang
// (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time
// (test/native/fuzz.test.ts).
//
// Input: the meta block as a peer sends it. Besides what the sanitizers catch,
// it traps when an answer's slice lies outside its chunk, its length is not
// what the meta asked, a whole-chunk answer does not carry the stored CRC32C,
// a request is served that the plain layout does not describe, or a chunk
// reference outlives the answer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/bindings.h"
#include "store/store.h"
#include "transport/chunk_serve.h"

using namespace weightcache;
using namespace weightcache::transport;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;

struct World {
  ChunkSource src;
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    src.store = store::Store::Create(so, &error);
    src.bindings = std::make_shared<store::BindingTable>();
    src.origin_id = "o";
    src.max_frame_bytes = 2 * kChunk;
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "c/k";
    b->object.fill(3);
    b->etag = "e";
    b->size = kSize;
    b->chunk_size = kChunk;
    b->deadline_ns = INT64_MAX;
    src.bindings->Set(b);
    store::ChunkId id;
    id.object = b->object;
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      uint64_t len = std::min<uint64_t>(kChunk, kSize - i * kChunk);
      src.store->Insert(id, data.data() + i * kChunk, len, 77 + i, "");
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  {
    ChunkReply r;
    ServeResult got = ServeReadChunk(w->src, data, size, store::MonotonicNs(), nullptr, 0, &r);
    ReadChunkMeta m;
    bool parsed = ParseReadChunk(data, size, &m);
    if (got == ServeResult::kServed) {
      Check(parsed && r.ref);
      Check(m.origin_id == "o" && m.container == "c" && m.key == "k" && m.etag == "e");
      Check(m.size == kSize && m.chunk_size == kChunk && m.index < 3 && m.length == r.length && r.length > 0);
      const uint8_t* base = r.ref.data();
      Check(r.data >= base && r.data + r.length <= base + r.ref.size());
      Check(static_cast<uint64_t>(r.data - base) == m.offset);
      bool whole = m.offset == 0 && r.length == r.ref.size();
      Check(whole == !r.compute_crc);
      if (whole) Check(r.crc == 77 + m.index);
    } else {
      Check(!r.ref && r.data == nullptr);
      if (got == ServeResult::kPassMeta) Check(!parsed);
    }
  }
  Check(w->src.store->outstanding_refs() == 0);
  return 0;
}
