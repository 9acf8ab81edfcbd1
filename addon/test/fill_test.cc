// Native tests of the fill path's file jobs (addon/src/fill/file_jobs.*),
// built and run under ASan+UBSan (and the pool once more under TSan) by
// scripts/native-checks.mjs: versioned reads direct and buffered (aligned,
// unaligned, the short tail, a file that ends early, a link out of the
// root), atomic writes (whole file, O_EXCL, a failed open leaves nothing),
// and the pool's queue bound with several threads. The JS tests cover the
// same through the addon; these catch memory and thread errors they cannot.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fill/file_jobs.h"
#include "check.h"

using namespace weightcache;

namespace {


std::string MakeDir() {
  char tmpl[] = "/tmp/wc-fill-test-XXXXXX";
  char* d = mkdtemp(tmpl);
  if (!d) std::abort();
  std::string dir(d);
  // realpath: the root a caller hands over is resolved.
  char* real = realpath(dir.c_str(), nullptr);
  dir = real;
  free(real);
  return dir;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
  close(fd);
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::vector<uint8_t> out;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  uint8_t buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  close(fd);
  return out;
}

uint8_t* Aligned(size_t len) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, len ? len : 1) != 0) std::abort();
  return static_cast<uint8_t*>(p);
}

void TestReads(const std::string& dir) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> content(5 * 1024 * 1024 + 777);
  for (auto& b : content) b = static_cast<uint8_t>(rng());
  std::string root = dir + "/root";
  mkdir(root.c_str(), 0755);
  std::string path = root + "/f.bin";
  WriteFile(path, content);
  struct Case {
    uint64_t offset;
    size_t length;
  } cases[] = {{0, 4 << 20}, {4 << 20, content.size() - (4 << 20)}, {4096 + 3, 70000}, {0, 10}};
  for (bool direct : {true, false}) {
    for (const Case& c : cases) {
      for (bool aligned : {true, false}) {
        uint8_t* mem = Aligned(c.length + 1);
        fill::VersionedRead r;
        r.root = root;
        r.path = path;
        r.offset = c.offset;
        r.length = c.length;
        r.dest = aligned ? mem : mem + 1;
        if (!aligned) {
          free(mem);
          mem = Aligned(c.length + 1);
          r.dest = mem + 1;
        }
        r.direct = direct;
        fill::RunVersionedRead(&r);
        CHECK(r.stage == fill::Stage::kDone);
        CHECK(r.bytes == c.length);
        CHECK(std::memcmp(r.dest, content.data() + c.offset, c.length) == 0);
        CHECK(r.before.ino == r.after.ino && r.before.ctime_ns == r.after.ctime_ns);
        CHECK(r.before.size == content.size());
        CHECK(r.direct_bytes <= c.length);
        if (!direct || !aligned) CHECK(r.direct_bytes == 0);
        free(mem);
      }
    }
  }
  // A read past the end: the caller sees the short count.
  {
    std::vector<uint8_t> dest(100);
    fill::VersionedRead r;
    r.root = root;
    r.path = path;
    r.offset = content.size() - 40;
    r.length = dest.size();
    r.dest = dest.data();
    fill::RunVersionedRead(&r);
    CHECK(r.stage == fill::Stage::kDone && r.bytes == 40);
  }
  // A link out of the root is refused before anything is opened; a missing file names realpath.
  {
    std::string outside = dir + "/outside.bin";
    WriteFile(outside, {1, 2, 3});
    std::string link = root + "/out.bin";
    CHECK(symlink(outside.c_str(), link.c_str()) == 0);
    uint8_t dest[3];
    fill::VersionedRead r;
    r.root = root;
    r.path = link;
    r.length = 3;
    r.dest = dest;
    fill::RunVersionedRead(&r);
    CHECK(r.stage == fill::Stage::kOutside);
    // The root's own name as a prefix of a sibling ("root2") is not inside the root.
    std::string sibling = dir + "/root2";
    mkdir(sibling.c_str(), 0755);
    WriteFile(sibling + "/f.bin", {1, 2, 3});
    r.path = sibling + "/f.bin";
    fill::RunVersionedRead(&r);
    CHECK(r.stage == fill::Stage::kOutside);
    r.path = root + "/missing.bin";
    fill::RunVersionedRead(&r);
    CHECK(r.stage == fill::Stage::kResolve && r.err == ENOENT);
  }
}

void TestWrites(const std::string& dir) {
  std::vector<uint8_t> header(8192, 0xAB);
  for (bool direct : {true, false}) {
    for (size_t len : {size_t{4} << 20, (size_t{4} << 20) - 100, size_t{4096}, size_t{5}}) {
      uint8_t* data = Aligned(len);
      for (size_t i = 0; i < len; i++) data[i] = static_cast<uint8_t>(i * 31 + len);
      std::string path = dir + "/w-" + std::to_string(direct) + "-" + std::to_string(len);
      fill::AtomicWrite w;
      w.path = path;
      w.tmp = path + ".tmp";
      w.header = header.data();  // not aligned: copied to aligned memory for O_DIRECT
      w.header_len = header.size();
      w.data = data;
      w.data_len = len;
      w.direct = direct;
      fill::RunAtomicWrite(&w);
      CHECK(w.stage == fill::Stage::kDone);
      std::vector<uint8_t> got = ReadFile(path);
      CHECK(got.size() == header.size() + len);
      CHECK(got.size() == header.size() + len && std::memcmp(got.data(), header.data(), header.size()) == 0 &&
             std::memcmp(got.data() + header.size(), data, len) == 0);
      CHECK(access(w.tmp.c_str(), F_OK) != 0);
      if (!direct) CHECK(w.direct_bytes == 0);
      free(data);
    }
  }
  // O_EXCL: a tmp name taken is refused and the final name not created.
  {
    std::string path = dir + "/taken";
    WriteFile(path + ".tmp", {9});
    uint8_t d[4] = {1, 2, 3, 4};
    fill::AtomicWrite w;
    w.path = path;
    w.tmp = path + ".tmp";
    w.header = d;
    w.header_len = 4;
    w.data = d;
    w.data_len = 4;
    fill::RunAtomicWrite(&w);
    CHECK(w.stage == fill::Stage::kOpen && w.err == EEXIST);
    CHECK(access(path.c_str(), F_OK) != 0);
    CHECK(ReadFile(path + ".tmp").size() == 1);
  }
  // A directory that is not there: open fails, nothing is left behind.
  {
    uint8_t d[4] = {1, 2, 3, 4};
    fill::AtomicWrite w;
    w.path = dir + "/none/x";
    w.tmp = dir + "/none/x.tmp";
    w.header = d;
    w.header_len = 4;
    w.data = d;
    w.data_len = 4;
    fill::RunAtomicWrite(&w);
    CHECK(w.stage == fill::Stage::kOpen && w.err == ENOENT);
  }
}

void TestPool() {
  std::atomic<int> ran{0};
  std::atomic<int> done_calls{0};
  {
    std::atomic<bool> release{false};
    fill::JobPool pool(2, 3, [&] { done_calls++; });
    CHECK(pool.threads() == 2);
    // Two jobs hold both threads until released.
    for (int i = 0; i < 2; i++)
      CHECK(pool.Post([&] {
        while (!release.load()) usleep(100);
        ran++;
      }));
    while (pool.running() < 2) usleep(100);
    int accepted = 0;
    for (int i = 0; i < 10; i++) accepted += pool.Post([&] { ran++; }) ? 1 : 0;
    CHECK(accepted == 3);  // the queue bound, exactly: both threads are held
    CHECK(pool.queued() == 3);
    release = true;
    pool.Stop();  // runs what was posted, then joins
    CHECK(!pool.Post([&] { ran++; }));
  }
  CHECK(ran.load() == 5);
  CHECK(done_calls.load() == 5);
}

}  // namespace

int main() {
  std::string dir = MakeDir();
  TestReads(dir);
  TestWrites(dir);
  TestPool();
  std::string rm = "rm -rf '" + dir + "'";
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  if (g_failures) {
    std::fprintf(stderr, "fill_test: %d failure(s)\n", g_failures.load());
    return 1;
  }
  std::printf("fill_test: ok\n");
  return 0;
}
