// libFuzzer target for the native door's fast path (addon/src/http/fastpath.h):
// the code that reads a client's target, Range, If-* and Authorization values
// and decides an answer from them. npm test builds it with clang
// (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time
// (test/native/fuzz.test.ts).
//
// Input: byte 0 picks the set-up (bit 0: auth on, bit 1: the last chunk is
// missing from the store); the rest is a request as a client sends it. Besides
// what the sanitizers catch, it traps when an answer's head does not end its
// header section, its Content-Length is not its body's length, a body slice
// lies outside its chunk, a range is outside the object, or a chunk reference
// outlives the answer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sha256.h"
#include "http/fastpath.h"
#include "http/parser.h"

using namespace weightcache;
using namespace weightcache::http;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;

struct World {
  std::shared_ptr<FastPath> fp = std::make_shared<FastPath>();
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  store::ChunkId id;

  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    fp->store = store::Store::Create(so, &error);
    fp->bindings = std::make_shared<store::BindingTable>();
    fp->tokens = std::make_shared<auth::TokenTable>();
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<uint8_t>(i);
    id.object.fill(3);
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/a.bin";
    b->object = id.object;
    b->etag = "v1";
    b->size = kSize;
    b->chunk_size = kChunk;
    b->last_modified = "Thu, 02 Jan 2025 03:04:05 GMT";
    b->content_type = "application/octet-stream";
    b->deadline_ns = INT64_MAX;
    fp->bindings->Set(b);
  }

  void Fill(bool last_missing) {
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      if (i == 2 && last_missing) {
        fp->store->Erase(id);
        continue;
      }
      uint64_t len = std::min<uint64_t>(kChunk, kSize - i * kChunk);
      if (!fp->store->Contains(id)) fp->store->Insert(id, data.data() + i * kChunk, len, 0, "");
    }
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 1) return 0;
  World& w = TheWorld();
  uint8_t mode = input[0];
  std::string_view raw(reinterpret_cast<const char*>(input + 1), size - 1);
  std::string token(32, 't');
  if (mode & 1) {
    w.fp->tokens->Replace(true, {{auth::Sha256(token.data(), token.size()), false, false, {"models"}, {}}});
  } else {
    w.fp->tokens->Replace(false, {});
  }
  w.Fill((mode & 2) != 0);
  // The Range rules on their own, against an object size taken from the input.
  std::vector<ByteRange> ranges;
  uint64_t osize = size > 8 ? input[1] * 1000ull + input[2] : 0;
  if (ParseRange(raw, osize, 1 + (mode >> 4), ranges) == RangeKind::kRanges) {
    for (size_t i = 0; i < ranges.size(); i++) {
      Check(ranges[i].start <= ranges[i].end && ranges[i].end < osize);
      if (i > 0) Check(ranges[i].start > ranges[i - 1].end + 1);
    }
  }
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return 0;
  {
    FastAnswer a;
    if (TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a)) {
      Check(a.head.size() >= 4 && a.head.compare(a.head.size() - 4, 4, "\r\n\r\n") == 0);
      Check(a.head.find("\r\n\r\n") == a.head.size() - 4);
      uint64_t body = 0;
      for (const store::Piece& piece : a.pieces) {
        const uint8_t* base = piece.ref.data();
        Check(!piece.from_disk && piece.data >= base && piece.data + piece.len <= base + piece.ref.size());
        body += piece.len;
      }
      Check(body == a.body_bytes);
      size_t cl = a.head.find("Content-Length: ");
      if (cl != std::string::npos) {
        uint64_t n = std::stoull(a.head.substr(cl + 16));
        Check(p.head().method == "HEAD" || n == body);
      } else {
        Check(a.head.rfind("HTTP/1.1 304 ", 0) == 0);
      }
    }
  }
  Check(w.fp->store->outstanding_refs() == 0);
  return 0;
}
