// Unit tests of the transport's native chunk service (addon/src/transport/chunk_serve.h):
// READ_CHUNK metas parsed exactly as src/transport/messages.ts decodeReadChunk lays them
// out, which requests are answered from the store and which go to JavaScript, the slice
// and CRC32C of each answer, and chunk references released on every path; a chunk only on
// NVMe read through a DiskReader (sub-range into a read buffer, whole chunk into DRAM store
// memory with its file's CRC32C), a damaged block never handing out a byte. Run by npm test
// (test/native/cpp.test.ts) plainly and under ASan+UBSan.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "crc32c.h"
#include "nvme/chunk_format.h"
#include "store/bindings.h"
#include "store/disk_reads.h"
#include "store/nvme_index.h"
#include "store/store.h"
#include "transport/chunk_serve.h"
#include "check.h"
#include "chunk_files.h"

using namespace weightcache;
using namespace weightcache::transport;

namespace {


constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;

struct Meta {
  std::string origin = "fs:/o", container = "models", key = "a/b.bin", etag = "e1";
  uint64_t size = kSize;
  uint32_t chunk = kChunk, index = 0;
  uint64_t offset = 0;
  uint32_t length = kChunk, flags = 0;
  std::vector<uint8_t> tail;  // bytes after the flags

  static void Str(std::vector<uint8_t>& o, const std::string& s) {
    o.push_back(static_cast<uint8_t>(s.size() & 0xff));
    o.push_back(static_cast<uint8_t>(s.size() >> 8));
    o.insert(o.end(), s.begin(), s.end());
  }
  static void Int(std::vector<uint8_t>& o, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> o;
    Str(o, origin), Str(o, container), Str(o, key), Str(o, etag);
    Int(o, size, 8), Int(o, chunk, 4), Int(o, index, 4), Int(o, offset, 8), Int(o, length, 4), Int(o, flags, 4);
    o.insert(o.end(), tail.begin(), tail.end());
    return o;
  }
};

struct World {
  ChunkSource src;
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  store::ChunkId id;
  World() {
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 7 + 3);
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    src.store = store::Store::Create(so, &error);
    src.bindings = std::make_shared<store::BindingTable>();
    src.origin_id = "fs:/o";
    src.max_frame_bytes = 16 << 20;
    id.object.fill(5);
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/a/b.bin";
    b->object = id.object;
    b->etag = "e1";
    b->size = kSize;
    b->chunk_size = kChunk;
    b->deadline_ns = INT64_MAX;
    src.bindings->Set(b);
    for (uint32_t i = 0; i < 2; i++) {  // chunk 2 is not in the store
      id.index = i;
      src.store->Insert(id, data.data() + i * kChunk, kChunk, 1000 + i, "");
    }
  }
  ServeResult Serve(const Meta& m, ChunkReply* r) {
    std::vector<uint8_t> b = m.Bytes();
    return ServeReadChunk(src, b.data(), b.size(), store::MonotonicNs(), nullptr, 0, r);
  }
};

void TestParse() {
  Meta m;
  std::vector<uint8_t> b = m.Bytes();
  ReadChunkMeta out;
  CHECK(ParseReadChunk(b.data(), b.size(), &out));
  CHECK(out.origin_id == "fs:/o" && out.container == "models" && out.key == "a/b.bin" && out.etag == "e1");
  CHECK(out.size == kSize && out.chunk_size == kChunk && out.index == 0 && out.length == kChunk);
  // Every strict prefix is short; one byte more is trailing.
  for (size_t n = 0; n < b.size(); n++) CHECK(!ParseReadChunk(b.data(), n, &out));
  Meta t = m;
  t.tail = {0};
  b = t.Bytes();
  CHECK(!ParseReadChunk(b.data(), b.size(), &out));
  // LOCAL_ONLY parses; STAND_IN (with its report) and unknown bits are JavaScript's.
  Meta l = m;
  l.flags = kReadLocalOnly;
  b = l.Bytes();
  CHECK(ParseReadChunk(b.data(), b.size(), &out) && out.flags == kReadLocalOnly);
  for (uint32_t f : {2u, 3u, 4u, 0x80000000u}) {
    Meta s = m;
    s.flags = f;
    s.tail = {1, 3, 0, 'a', ':', '1'};
    b = s.Bytes();
    CHECK(!ParseReadChunk(b.data(), b.size(), &out));
  }
  // u64 fields over 2^53 - 1 are refused as JavaScript's MetaReader does.
  Meta big = m;
  big.size = kMaxMetaU64 + 1;
  b = big.Bytes();
  CHECK(!ParseReadChunk(b.data(), b.size(), &out));
  big.size = kSize;
  big.offset = ~uint64_t{0};
  b = big.Bytes();
  CHECK(!ParseReadChunk(b.data(), b.size(), &out));
}

void TestServe() {
  World w;
  {
    ChunkReply r;
    Meta m;
    CHECK(w.Serve(m, &r) == ServeResult::kServed);
    CHECK(r.length == kChunk && r.data && std::memcmp(r.data, w.data.data(), kChunk) == 0);
    CHECK(!r.compute_crc && r.crc == 1000);  // the stored checksum of a whole chunk
    CHECK(w.src.store->outstanding_refs() == 1);
  }
  CHECK(w.src.store->outstanding_refs() == 0);
  {
    ChunkReply r;
    Meta m;
    m.index = 1, m.offset = 100, m.length = 900, m.flags = kReadLocalOnly;
    CHECK(w.Serve(m, &r) == ServeResult::kServed);
    CHECK(r.length == 900 && std::memcmp(r.data, w.data.data() + kChunk + 100, 900) == 0);
    CHECK(r.compute_crc);  // a sub-range: checksummed on the I/O thread
  }
  auto pass = [&](Meta m, ServeResult want) {
    ChunkReply r;
    ServeResult got = w.Serve(m, &r);
    CHECK(got == want);
    CHECK(!r.ref && r.data == nullptr);
  };
  Meta m;
  m.index = 2, m.length = static_cast<uint32_t>(kSize - 2 * kChunk);
  pass(m, ServeResult::kPassMiss);  // the last chunk is not in the store
  m = Meta{};
  m.etag = "e2";
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.origin = "fs:/other";
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.size = kSize + 1;
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.chunk = kChunk * 2;
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.container = "models/a", m.key = "b.bin";  // the same joined name, another split
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.key = "a/c.bin";
  pass(m, ServeResult::kPassUnbound);
  m = Meta{};
  m.index = 3;
  pass(m, ServeResult::kPassRange);
  m = Meta{};
  m.offset = 1, m.length = kChunk;
  pass(m, ServeResult::kPassRange);
  m = Meta{};
  m.length = 0;
  pass(m, ServeResult::kPassRange);
  m = Meta{};
  m.offset = kChunk + 1, m.length = 1;
  pass(m, ServeResult::kPassRange);
  m = Meta{};
  m.index = 2, m.length = static_cast<uint32_t>(kSize - 2 * kChunk + 1);
  pass(m, ServeResult::kPassRange);
  m = Meta{};
  m.flags = 2;
  pass(m, ServeResult::kPassMeta);
  {
    World small;
    small.src.max_frame_bytes = 100;
    ChunkReply r;
    Meta q;
    CHECK(small.Serve(q, &r) == ServeResult::kPassRange);
  }
  // A binding past its deadline, or removed, serves nothing.
  w.src.bindings->Remove("models/a/b.bin");
  pass(Meta{}, ServeResult::kPassUnbound);
  CHECK(w.src.store->outstanding_refs() == 0);
}

void TestHeldAcrossErase() {
  World w;
  ChunkReply r;
  CHECK(w.Serve(Meta{}, &r) == ServeResult::kServed);
  // Invalidated or evicted while the answer is queued: the bytes stay until the reference goes.
  store::ChunkId id = w.id;
  id.index = 0;
  CHECK(w.src.store->Erase(id));
  CHECK(std::memcmp(r.data, w.data.data(), kChunk) == 0);
  CHECK(w.src.store->outstanding_refs() == 1);
  r.ref.reset();
  CHECK(w.src.store->outstanding_refs() == 0);
  ChunkReply again;
  CHECK(w.Serve(Meta{}, &again) == ServeResult::kPassMiss);
}

}  // namespace

// Chunk 2 (not in DRAM) as a v2 chunk file the NVMe index lists, read by one DiskReader driven
// the way the transport's I/O loop drives it.
struct NvmeWorld : World {
  std::string dir, path;
  std::shared_ptr<store::NvmeIndex> index = std::make_shared<store::NvmeIndex>();
  std::unique_ptr<store::DiskReader> disk;
  bool done = false;
  uint64_t token = 0;
  store::RangeStatus status = store::RangeStatus::kMiss;
  store::RangeView view;
  uint64_t extent = kSize - 2 * kChunk;

  static void OnDone(void* user, uint64_t token, store::RangeStatus status, store::RangeView&& view) {
    auto* w = static_cast<NvmeWorld*>(user);
    w->done = true, w->token = token, w->status = status, w->view = std::move(view);
  }
  NvmeWorld() {
    char tmpl[] = "/tmp/wc-chunk-serve-XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/2";
    src.store->AttachNvme(index);
    store::ChunkId c = id;
    c.index = 2;
    test::WriteChunkFile(*index, path, "chunk-2", c, data.data() + 2 * kChunk, extent);
    std::string err;
    disk = store::DiskReader::Create(index, OnDone, this, &err);
    CHECK(disk != nullptr);
  }
  ~NvmeWorld() {
    view = store::RangeView();
    disk.reset();
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  ServeResult Serve(const Meta& m, uint64_t t, ChunkReply* r) {
    std::vector<uint8_t> b = m.Bytes();
    done = false;
    return ServeReadChunk(src, b.data(), b.size(), store::MonotonicNs(), disk.get(), t, r);
  }
  void Wait() {
    for (int i = 0; i < 2000 && !done; i++) {
      disk->Flush();
      pollfd p{disk->event_fd(), POLLIN, 0};
      poll(&p, 1, 10);
      disk->Poll();
    }
    CHECK(done);
  }
  void Damage(uint64_t offset) { test::DamageChunkFile(path, offset); }
};

void TestNvme() {
  {
    NvmeWorld w;
    const uint8_t* chunk = w.data.data() + 2 * kChunk;
    // A sub-range: only its blocks read and verified, into a read buffer; its CRC32C computed on send.
    Meta m;
    m.index = 2, m.offset = 1500, m.length = 1000;
    ChunkReply r;
    CHECK(w.Serve(m, 11, &r) == ServeResult::kPending);
    CHECK(r.length == 1000 && r.compute_crc && !r.ref && !r.buffer && r.data == nullptr);
    w.Wait();
    CHECK(w.token == 11 && w.status == store::RangeStatus::kReady && w.view.pieces.size() == 1);
    CHECK(TakePiece(std::move(w.view.pieces[0]), &r));
    CHECK(r.buffer && !r.ref && std::memcmp(r.data, chunk + 1500, 1000) == 0);
    CHECK(w.index->stats().buffer_bytes.load() > 0);
    r = ChunkReply();
    CHECK(w.index->stats().buffer_bytes.load() == 0);
    // The whole chunk: the CRC32C its file's header holds, known at once; read into DRAM store memory.
    m = Meta{};
    m.index = 2, m.length = static_cast<uint32_t>(w.extent);
    CHECK(w.Serve(m, 12, &r) == ServeResult::kPending);
    CHECK(!r.compute_crc && r.crc == Crc32c(0, chunk, w.extent));
    w.Wait();
    CHECK(w.status == store::RangeStatus::kReady);
    CHECK(TakePiece(std::move(w.view.pieces[0]), &r));
    CHECK(r.ref && !r.buffer && std::memcmp(r.data, chunk, w.extent) == 0);
    r = ChunkReply();
    // Promoted: the next request is a DRAM hit, answered at once.
    CHECK(w.Serve(m, 13, &r) == ServeResult::kServed);
    CHECK(r.ref && std::memcmp(r.data, chunk, w.extent) == 0 && r.crc == Crc32c(0, chunk, w.extent));
    r = ChunkReply();
    CHECK(w.src.store->outstanding_refs() == 0);
  }
  {
    // Without a reader (none could be had, or the bound on waiting answers), it is JavaScript's.
    NvmeWorld w;
    Meta m;
    m.index = 2, m.length = static_cast<uint32_t>(w.extent);
    std::vector<uint8_t> b = m.Bytes();
    ChunkReply r;
    CHECK(ServeReadChunk(w.src, b.data(), b.size(), store::MonotonicNs(), nullptr, 0, &r) == ServeResult::kPassMiss);
    CHECK(r.nvme_listed);  // on NVMe: the I/O thread counts it busy
    CHECK(w.index->stats().reads_in_flight.load() == 0);
  }
  {
    // A damaged block: the read completes with no bytes (kMiss), counted; nothing is held.
    NvmeWorld w;
    w.Damage(2000);
    Meta m;
    m.index = 2, m.length = static_cast<uint32_t>(w.extent);
    ChunkReply r;
    CHECK(w.Serve(m, 21, &r) == ServeResult::kPending);
    w.Wait();
    CHECK(w.status == store::RangeStatus::kMiss && w.view.pieces.empty());
    CHECK(w.index->stats().to_js_corrupt.load() == 1);
    // A sub-range in the damaged block: no bytes either.
    m.offset = 1900, m.length = 500;
    CHECK(w.Serve(m, 22, &r) == ServeResult::kPending);
    w.Wait();
    CHECK(w.status == store::RangeStatus::kMiss && w.view.pieces.empty());
    CHECK(w.src.store->outstanding_refs() == 0 && w.index->stats().buffer_bytes.load() == 0);
  }
}

int main() {
  TestParse();
  TestServe();
  TestHeldAcrossErase();
  TestNvme();
  return CheckResult("chunk_serve_test");
}
