// Unit tests of the store-level range read both native fast paths use
// (addon/src/store/range.h) when chunks are only on NVMe: real v2 chunk
// files in a temporary directory, the NvmeIndex that names them, and one
// thread's DiskReader driven the way a door's event loop drives it (poll its
// event fd, Poll, Flush). Checked: the bytes of partial and multi-chunk
// ranges, whole chunks read into DRAM store memory and committed there, a
// damaged block or a truncated, deleted or unindexed file never handing out a
// byte (kMiss, counted), the thread's bounds (kBusy), read buffers and store
// references back to 0 once the views are dropped, and a reader destroyed
// with reads in flight calling nobody back. Run by npm test
// (test/native/cpp.test.ts) plainly and under ASan+UBSan.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nvme/chunk_format.h"
#include "store/disk_reads.h"
#include "store/nvme_index.h"
#include "store/range.h"
#include "store/store.h"
#include "check.h"
#include "chunk_files.h"

using namespace weightcache;
using namespace weightcache::store;

namespace {


constexpr uint64_t kChunk = 256 * 1024;
constexpr uint64_t kSize = 3 * kChunk + 10'000;  // 4 chunks, the last one short
constexpr uint32_t kChunks = 4;

struct Result {
  bool done = false;
  uint64_t token = 0;
  RangeStatus status = RangeStatus::kMiss;
  RangeView view;
};

void OnDone(void* user, uint64_t token, RangeStatus status, RangeView&& view) {
  auto* r = static_cast<Result*>(user);
  r->done = true;
  r->token = token;
  r->status = status;
  r->view = std::move(view);
}

struct World {
  std::string dir;
  std::vector<uint8_t> data;
  std::array<uint8_t, kObjectIdBytes> object{};
  std::shared_ptr<Store> store;
  std::shared_ptr<NvmeIndex> index = std::make_shared<NvmeIndex>();
  Result result;
  std::unique_ptr<DiskReader> disk;
  std::vector<std::string> paths;

  World() {
    char tmpl[] = "/tmp/wc-disk-reads-XXXXXX";
    dir = mkdtemp(tmpl);
    data.resize(kSize);
    uint32_t x = 12345;
    for (auto& b : data) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 24);
    for (size_t i = 0; i < object.size(); i++) object[i] = static_cast<uint8_t>(0xa0 + i);
    StoreOptions so;
    so.max_bytes = 16 << 20;
    std::string err;
    store = Store::Create(so, &err);
    store->AttachNvme(index);
    for (uint32_t i = 0; i < kChunks; i++) Write(i);
    disk = DiskReader::Create(index, OnDone, &result, &err);
  }
  ~World() {
    disk.reset();
    for (const std::string& p : paths) unlink(p.c_str());
    rmdir(dir.c_str());
  }

  uint64_t Extent(uint32_t i) const { return std::min<uint64_t>(kChunk, kSize - i * kChunk); }

  void Write(uint32_t i) {
    std::string path = dir + "/" + std::to_string(i);
    ChunkId id;
    id.object = object;
    id.index = i;
    test::WriteChunkFile(*index, path, "chunk-" + std::to_string(i), id, data.data() + i * kChunk, Extent(i));
    paths.push_back(path);
  }

  // Flips a byte of chunk i's data at `offset` on disk.
  void Damage(uint32_t i, uint64_t offset) { test::DamageChunkFile(dir + "/" + std::to_string(i), offset); }

  RangeStatus Start(uint64_t start, uint64_t end, RangeView* out, uint64_t token = 7) {
    RangeRequest rq;
    rq.object = object;
    rq.size = kSize;
    rq.chunk_size = kChunk;
    rq.start = start;
    rq.end = end;
    result = Result();
    return ReadRange(*store, disk.get(), rq, out, token);
  }

  // Drives the reader as a door's loop does until the range is handed back.
  void Wait() {
    for (int i = 0; i < 2000 && !result.done; i++) {
      disk->Flush();
      pollfd p{disk->event_fd(), POLLIN, 0};
      poll(&p, 1, 10);
      disk->Poll();
    }
    CHECK(result.done);
  }

  std::string Bytes(const RangeView& v) const {
    std::string s;
    for (const Piece& p : v.pieces) s.append(reinterpret_cast<const char*>(p.data), p.len);
    return s;
  }
  std::string Want(uint64_t start, uint64_t end) const {
    return std::string(reinterpret_cast<const char*>(data.data() + start), end - start + 1);
  }
};

void TestReads() {
  World w;
  CHECK(w.disk != nullptr);
  RangeView v;
  // Across chunks 0 and 1, neither whole: read from disk into buffers.
  CHECK(w.Start(kChunk - 5000, kChunk + 7000, &v, 42) == RangeStatus::kPending);
  CHECK(v.pieces.empty() && v.first_from_disk && !v.whole_chunk);
  w.Wait();
  CHECK(w.result.token == 42 && w.result.status == RangeStatus::kReady);
  CHECK(w.Bytes(w.result.view) == w.Want(kChunk - 5000, kChunk + 7000));
  CHECK(w.result.view.pieces.size() == 2 && w.result.view.pieces[0].from_disk);
  CHECK(w.index->stats().buffer_bytes.load() > 0);
  // Bytes read are the covered 4 KiB blocks (plus each file's header once), not the chunks.
  uint64_t read = w.index->reader_stats().bytes_read.load();
  CHECK(read <= 2 * 4096 + 12'000 + 3 * 4096);
  w.result.view = RangeView();
  CHECK(w.index->stats().buffer_bytes.load() == 0 && w.disk->buffer_bytes() == 0);
  // The tier hears of the chunks read natively (its LRU order), each once per TakeUsed.
  std::vector<std::string> used = w.index->TakeUsed();
  CHECK(used.size() == 2 && used[0] == "chunk-0" && used[1] == "chunk-1");
  CHECK(w.index->TakeUsed().empty());

  // A whole chunk (the short last one): read into DRAM store memory and committed there.
  CHECK(w.Start(3 * kChunk, kSize - 1, &v) == RangeStatus::kPending);
  CHECK(v.whole_chunk);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kReady && w.Bytes(w.result.view) == w.Want(3 * kChunk, kSize - 1));
  ChunkId id;
  id.object = w.object;
  id.index = 3;
  CHECK(w.store->Contains(id) && w.index->stats().promoted.load() == 1);
  CHECK(w.result.view.pieces[0].ref && w.result.view.pieces[0].from_disk);
  w.result.view = RangeView();
  // Now a DRAM hit: no disk read at all.
  CHECK(w.Start(3 * kChunk + 10, 3 * kChunk + 20, &v) == RangeStatus::kReady);
  CHECK(!v.first_from_disk && w.Bytes(v) == w.Want(3 * kChunk + 10, 3 * kChunk + 20));
  v = RangeView();

  // Without a disk reader (DRAM only), an NVMe chunk is a miss.
  CHECK(!LookupRange(*w.store, w.object, kSize, kChunk, 0, 10, &v) && v.pieces.empty());
}

void TestFailures() {
  World w;
  RangeView v;
  // A damaged block is never handed out: the whole range is a miss, counted.
  w.Damage(1, 70'000);
  CHECK(w.Start(kChunk + 60'000, kChunk + 80'000, &v) == RangeStatus::kPending);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kMiss && w.result.view.pieces.empty());
  CHECK(w.index->stats().to_js_corrupt.load() == 1);
  // Other blocks of the same chunk still verify.
  CHECK(w.Start(kChunk + 100'000, kChunk + 110'000, &v) == RangeStatus::kPending);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kReady &&
        w.Bytes(w.result.view) == w.Want(kChunk + 100'000, kChunk + 110'000));
  w.result.view = RangeView();
  // A damaged block in a whole-chunk read: the store memory it was read into is given back.
  w.Damage(2, 5);
  CHECK(w.Start(2 * kChunk, 3 * kChunk - 1, &v) == RangeStatus::kPending);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kMiss && w.index->stats().to_js_corrupt.load() == 2);
  ChunkId id;
  id.object = w.object;
  id.index = 2;
  CHECK(!w.store->Contains(id) && w.store->stats().pending_bytes == 0);
  // A truncated file: short reads are a miss.
  CHECK(truncate((w.dir + "/0").c_str(), 4096 + 1000) == 0);
  CHECK(w.Start(200'000, 201'000, &v) == RangeStatus::kPending);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kMiss);
  // A deleted file never opened: missing.
  CHECK(unlink((w.dir + "/3").c_str()) == 0);
  CHECK(w.Start(3 * kChunk + 1, 3 * kChunk + 2, &v) == RangeStatus::kPending);
  w.Wait();
  CHECK(w.result.status == RangeStatus::kMiss && w.index->stats().to_js_missing.load() >= 1);
  // No longer indexed (the tier evicted it): no read starts.
  id.index = 1;
  CHECK(w.index->Remove(id));
  CHECK(w.Start(kChunk + 1, kChunk + 2, &v) == RangeStatus::kMiss);
  CHECK(w.index->stats().buffer_bytes.load() == 0 && w.index->stats().reads_in_flight.load() == 0);
  CHECK(w.store->outstanding_refs() == 0);
}

void TestBoundsAndShutdown() {
  World w;
  RangeView v;
  // Reads in flight when the reader goes: completed (the kernel may write into their buffers),
  // nobody called back, nothing left allocated (ASan's leak check).
  int started = 0;
  for (int i = 0; i < 40; i++) {
    if (w.Start((i * 7919) % (kSize - 5000), (i * 7919) % (kSize - 5000) + 4000, &v, 100 + i) ==
        RangeStatus::kPending)
      started++;
  }
  CHECK(started == 40 && w.disk->ranges() == 40);
  w.disk->Flush();
  w.disk.reset();
  CHECK(!w.result.done);
  CHECK(w.index->stats().buffer_bytes.load() == 0);
  // Past kMaxDiskRanges ranges in flight: kBusy, counted.
  std::string err;
  w.disk = DiskReader::Create(w.index, OnDone, &w.result, &err);
  RangeStatus last = RangeStatus::kPending;
  for (unsigned i = 0; i <= kMaxDiskRanges && last == RangeStatus::kPending; i++) last = w.Start(10, 20, &v, i);
  CHECK(last == RangeStatus::kBusy && w.index->stats().to_js_busy.load() == 1);
}

}  // namespace

int main() {
  TestReads();
  TestFailures();
  TestBoundsAndShutdown();
  return CheckResult("disk_reads_test");
}
