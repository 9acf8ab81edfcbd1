// Native tests of the NVMe read path's C++ parts, built and run under
// ASan+UBSan by scripts/native-checks.mjs (npm test runs it): CRC32C paths
// and combine, the v2 codec, both io::Loop backends, ChunkReader on real
// files (whole, ranges, damage, truncation, a missing file, a foreign key,
// caller memory, a burst on a cold file, draining with reads in flight), and
// the directory lock. The JS tests cover the same behaviour through the
// addon; these catch memory errors the JS side cannot see.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "crc32c.h"
#include "io/loop.h"
#include "nvme/chunk_format.h"
#include "nvme/chunk_reader.h"
#include "nvme/dir_lock.h"
#include "check.h"

using namespace weightcache;

namespace {


std::mt19937_64 rng(42);

std::vector<uint8_t> Random(size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void TestCrc() {
  std::vector<uint8_t> buf = Random(70000);
  for (size_t len : {0, 1, 7, 8, 63, 255, 256, 511, 512, 767, 768, 1000, 4096, 24576, 65536, 69000}) {
    for (size_t align : {0, 1, 13, 63}) {
      uint32_t want = Crc32cWith(Crc32cImpl::kTable, 7, buf.data() + align, len);
      for (int i = 0; i < kCrc32cImplCount; i++) {
        auto impl = static_cast<Crc32cImpl>(i);
        if (Crc32cAvailable(impl)) CHECK(Crc32cWith(impl, 7, buf.data() + align, len) == want);
      }
    }
  }
  for (int i = 0; i < 200; i++) {
    size_t a = rng() % 30000, b = rng() % 30000;
    uint32_t ca = Crc32c(0, buf.data(), a), cb = Crc32c(0, buf.data() + a, b);
    CHECK(Crc32cCombine(ca, cb, b) == Crc32c(0, buf.data(), a + b));
    CHECK(Crc32cShift(b).Combine(ca, cb) == Crc32c(0, buf.data(), a + b));
  }
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/wc-native-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    int r = std::system(cmd.c_str());
    (void)r;
  }
};

struct File {
  std::string path, key;
  std::vector<uint8_t> data;
  nvme::Expect expect;
};

File WriteChunk(const std::string& dir, const std::string& name, size_t len) {
  File f;
  f.path = dir + "/" + name;
  f.key = "[\"o\",\"c\",\"" + name + "\",\"e\",1,1,0]";
  f.data = Random(len);
  uint8_t oid[16] = {1, 2, 3};
  std::vector<uint8_t> header;
  std::string err;
  CHECK(nvme::Encode(reinterpret_cast<const uint8_t*>(f.key.data()), static_cast<uint32_t>(f.key.size()), oid, 0,
                      f.data.data(), len, nvme::kDefaultBlockBytes, &header, &err));
  nvme::Header h;
  CHECK(nvme::Decode(header.data(), header.size(), &h) == nvme::DecodeError::kNone);
  CHECK(h.data_crc == Crc32c(0, f.data.data(), len));
  f.expect = {h.data_offset, len, h.data_crc};
  int fd = open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
  CHECK(write(fd, f.data.data(), len) == static_cast<ssize_t>(len));
  close(fd);
  return f;
}

struct Result {
  nvme::ReadStatus status;
  std::vector<uint8_t> bytes;
  std::string reason;
  bool done = false;
};

// One read through `reader`, run to completion on `loop`.
Result ReadOnce(io::Loop& loop, nvme::ChunkReader& reader, const File& f, uint64_t off, uint64_t len,
                uint8_t* dest = nullptr, const std::string* key = nullptr) {
  Result out;
  auto* r = new nvme::ChunkRead();
  r->path = f.path;
  r->key = key ? *key : f.key;
  r->expect = f.expect;
  r->offset = off;
  r->length = len;
  r->dest = dest;
  r->user = &out;
  r->done = [](nvme::ChunkRead* r) {
    auto* o = static_cast<Result*>(r->user);
    o->status = r->status;
    o->reason = r->reason;
    if (r->data) o->bytes.assign(r->data, r->data + r->length);
    o->done = true;
    delete r;
  };
  reader.Read(r);
  while (!out.done) {
    loop.Flush();
    loop.Wait(1000);
    loop.Poll();
  }
  return out;
}

void TestReader(bool force_threads, bool direct) {
  TempDir dir;
  io::LoopOptions lo;
  lo.force_threads = force_threads;
  lo.queue_depth = 4;
  std::string why;
  auto loop = io::Loop::Create(lo, &why);
  CHECK(loop != nullptr);
  CHECK(std::strcmp(loop->backend(), force_threads ? "threads" : "io_uring") == 0 || !why.empty());
  nvme::OpenChunks files(2);
  nvme::ReaderStats stats;
  auto pool = std::make_shared<BufferPool>(16u << 20);
  nvme::ChunkReader reader(*loop, files, stats, pool, direct);

  File a = WriteChunk(dir.path, "a", 300 * 1024 + 17);
  Result whole = ReadOnce(*loop, reader, a, 0, a.data.size());
  CHECK(whole.status == nvme::ReadStatus::kOk && whole.bytes == a.data);
  for (int i = 0; i < 50; i++) {
    uint64_t off = rng() % a.data.size();
    uint64_t len = rng() % (a.data.size() - off + 1);
    Result r = ReadOnce(*loop, reader, a, off, len);
    CHECK(r.status == nvme::ReadStatus::kOk);
    CHECK(r.bytes == std::vector<uint8_t>(a.data.begin() + off, a.data.begin() + off + len));
  }
  // Caller memory: aligned and whole blocks (read straight in), then unaligned (copied).
  void* mem = nullptr;
  CHECK(posix_memalign(&mem, 4096, 8192) == 0);
  Result d1 = ReadOnce(*loop, reader, a, 4096, 8192, static_cast<uint8_t*>(mem));
  CHECK(d1.status == nvme::ReadStatus::kOk && std::memcmp(mem, a.data.data() + 4096, 8192) == 0);
  uint64_t copied = stats.bytes_copied;
  Result d2 = ReadOnce(*loop, reader, a, 100, 5000, static_cast<uint8_t*>(mem) + 1);
  CHECK(d2.status == nvme::ReadStatus::kOk && std::memcmp(static_cast<uint8_t*>(mem) + 1, a.data.data() + 100, 5000) == 0);
  CHECK(stats.bytes_copied == copied + 5000);
  std::free(mem);

  // A foreign key, a missing file.
  std::string other = "other";
  CHECK(ReadOnce(*loop, reader, a, 0, 10, nullptr, &other).status == nvme::ReadStatus::kCorrupt);
  File missing = a;
  missing.path = dir.path + "/nope";
  CHECK(ReadOnce(*loop, reader, missing, 0, 10).status == nvme::ReadStatus::kMissing);

  // A damaged block: reads of other blocks pass, reads covering it fail.
  File b = WriteChunk(dir.path, "b", 64 * 1024);
  int fd = open(b.path.c_str(), O_RDWR);
  uint8_t x = 0;
  CHECK(pread(fd, &x, 1, b.expect.data_offset + 3 * 4096 + 5) == 1);
  x ^= 0x80;
  CHECK(pwrite(fd, &x, 1, b.expect.data_offset + 3 * 4096 + 5) == 1);
  close(fd);
  CHECK(ReadOnce(*loop, reader, b, 0, 3 * 4096).status == nvme::ReadStatus::kOk);
  Result bad = ReadOnce(*loop, reader, b, 3 * 4096 + 4000, 200);
  CHECK(bad.status == nvme::ReadStatus::kCorrupt && bad.reason == "block 3 fails its crc32c");

  // Truncated: at open (size check) and after (short read).
  File c = WriteChunk(dir.path, "c", 64 * 1024);
  CHECK(truncate(c.path.c_str(), c.expect.data_offset + 10000) == 0);
  CHECK(ReadOnce(*loop, reader, c, 0, 10).status == nvme::ReadStatus::kCorrupt);
  File e = WriteChunk(dir.path, "e", 64 * 1024);
  CHECK(ReadOnce(*loop, reader, e, 0, 10).status == nvme::ReadStatus::kOk);
  CHECK(truncate(e.path.c_str(), e.expect.data_offset + 10000) == 0);
  CHECK(ReadOnce(*loop, reader, e, 20000, 10).status == nvme::ReadStatus::kCorrupt);

  // A burst of reads on a cold file: one header read; and Drain with reads in flight.
  File g = WriteChunk(dir.path, "g", 1024 * 1024);
  uint64_t headers = stats.header_reads;
  int done = 0;
  for (int i = 0; i < 40; i++) {
    auto* r = new nvme::ChunkRead();
    r->path = g.path;
    r->key = g.key;
    r->expect = g.expect;
    r->offset = static_cast<uint64_t>(i) * 8192;
    r->length = 8192;
    r->user = &done;
    r->done = [](nvme::ChunkRead* r) {
      if (r->status == nvme::ReadStatus::kOk || r->status == nvme::ReadStatus::kCancelled) ++*static_cast<int*>(r->user);
      delete r;
    };
    reader.Read(r);
  }
  while (done < 20) {
    loop->Flush();
    loop->Wait(1000);
    loop->Poll();
  }
  CHECK(stats.header_reads == headers + 1);
  loop->Drain();
  CHECK(done == 40);
  CHECK(loop->in_flight() == 0 && loop->queued() == 0);
}

void TestLock() {
  TempDir dir;
  nvme::DirLock a = nvme::LockDir(dir.path);
  CHECK(a.fd >= 0);
  nvme::DirLock b = nvme::LockDir(dir.path);
  CHECK(b.fd < 0 && b.err == EWOULDBLOCK && b.holder == getpid());
  CHECK(b.error.find(dir.path) != std::string::npos);
  nvme::UnlockDir(a.fd);
  nvme::DirLock c = nvme::LockDir(dir.path);
  CHECK(c.fd >= 0);
  nvme::UnlockDir(c.fd);
  nvme::DirLock d = nvme::LockDir(dir.path + "/missing/dir");
  CHECK(d.fd < 0 && d.err == ENOENT);
}

}  // namespace

int main() {
  TestCrc();
  for (bool threads : {false, true})
    for (bool direct : {true, false}) TestReader(threads, direct);
  TestLock();
  if (g_failures) {
    std::fprintf(stderr, "%d failure(s)\n", g_failures.load());
    return 1;
  }
  std::printf("native NVMe tests passed (crc32c best: %s)\n", Crc32cImplementation());
  return 0;
}
