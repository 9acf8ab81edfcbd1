// The NVMe read path without JavaScript, on the chunk files of a tier
// directory: random reads of `bytes` (whole chunks when it is the chunk
// size) with `qd` outstanding, for `seconds`, two ways on the same files:
//   raw      io::Loop reads of the same byte ranges, no check (the I/O path alone)
//   verified ChunkReader reads: open-file cache, every 4 KiB block checked
// Built and run by loadtest/nvme-reads.ts beside the tier read from
// JavaScript and fio; prints one JSON object per way.
//
//   nvme_read_bench <dir> <bytes> <qd> <seconds> <direct 0|1>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "io/loop.h"
#include "nvme/chunk_format.h"
#include "nvme/chunk_reader.h"

using namespace weightcache;

namespace {

struct File {
  std::string path, key;
  nvme::Expect expect;
};

std::vector<File> Scan(const std::string& dir) {
  std::vector<File> out;
  DIR* top = opendir(dir.c_str());
  if (!top) return out;
  while (dirent* d = readdir(top)) {
    if (d->d_name[0] == '.' || std::string(d->d_name).size() != 2) continue;
    std::string sub = dir + "/" + d->d_name;
    DIR* s = opendir(sub.c_str());
    if (!s) continue;
    while (dirent* f = readdir(s)) {
      if (f->d_name[0] == '.') continue;
      File file;
      file.path = sub + "/" + f->d_name;
      int fd = open(file.path.c_str(), O_RDONLY);
      std::vector<uint8_t> h(nvme::kMaxDataOffset);
      ssize_t n = pread(fd, h.data(), h.size(), 0);
      close(fd);
      nvme::Header hd;
      if (n <= 0 || nvme::Decode(h.data(), static_cast<size_t>(n), &hd) != nvme::DecodeError::kNone) continue;
      file.key.assign(reinterpret_cast<const char*>(hd.key), hd.key_length);
      file.expect = {hd.data_offset, hd.data_length, hd.data_crc};
      out.push_back(file);
    }
    closedir(s);
  }
  closedir(top);
  return out;
}

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Run {
  std::vector<File>* files;
  uint64_t bytes;
  std::mt19937_64 rng{7};
  uint64_t done = 0;
  bool failed = false;
  uint64_t Offset(const File& f) {
    if (bytes >= f.expect.data_length) return 0;
    return (rng() % (f.expect.data_length / bytes)) * bytes;
  }
};

void Report(const char* way, Run& r, double t0, double c0) {
  double s = Now() - t0, cpu = CpuSeconds() - c0;
  double gb = static_cast<double>(r.done) / 1e9;
  std::printf("{\"way\":\"%s\",\"gbps\":%.4f,\"cores\":%.4f,\"cpuPerGb\":%.4f,\"failed\":%s}\n", way, gb / s, cpu / s,
              gb > 0 ? cpu / gb : 0.0, r.failed ? "true" : "false");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  std::vector<File> files = Scan(argv[1]);
  uint64_t bytes = std::strtoull(argv[2], nullptr, 10);
  unsigned qd = static_cast<unsigned>(std::atoi(argv[3]));
  double seconds = std::atof(argv[4]);
  bool direct = std::atoi(argv[5]) != 0;
  if (files.empty()) {
    std::fprintf(stderr, "no chunk files under %s\n", argv[1]);
    return 1;
  }
  io::LoopOptions lo;
  lo.queue_depth = qd;
  std::string why;
  // raw: the same reads with plain io::Loop ops on files opened once.
  {
    auto loop = io::Loop::Create(lo, &why);
    std::vector<int> fds;
    for (auto& f : files) fds.push_back(open(f.path.c_str(), O_RDONLY | (direct ? O_DIRECT : 0)));
    static Run run;
    run = Run{};
    run.files = &files;
    run.bytes = bytes;
    struct Slot {
      io::Op op;
      uint8_t* buf;
    };
    std::vector<Slot> slots(qd);
    static std::vector<int>* pfds;
    static io::Loop* ploop;
    pfds = &fds;
    ploop = loop.get();
    static bool stopping;
    stopping = false;
    auto issue = [](io::Op* op) {
      if (stopping) return;
      size_t i = run.rng() % run.files->size();
      const File& f = (*run.files)[i];
      op->fd = (*pfds)[i];
      op->len = static_cast<uint32_t>(std::min<uint64_t>(run.bytes, f.expect.data_length));
      op->offset = f.expect.data_offset + run.Offset(f);
      ploop->Submit(op);
    };
    static void (*pissue)(io::Op*);
    pissue = issue;
    for (auto& s : slots) {
      s.buf = static_cast<uint8_t*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
      s.op.kind = io::Op::kRead;
      s.op.buf = s.buf;
      s.op.done = [](io::Op* op) {
        if (op->result < 0) {
          if (op->result != -ECANCELED) run.failed = true;
          return;
        }
        run.done += static_cast<uint64_t>(op->result);
        pissue(op);
      };
      issue(&s.op);
    }
    double t0 = Now(), c0 = CpuSeconds();
    loop->Flush();
    while (Now() - t0 < seconds) {
      loop->Wait(100);
      loop->Poll();
    }
    Report("raw", run, t0, c0);
    stopping = true;
    loop->Drain();
    for (int fd : fds) close(fd);
    for (auto& s : slots) std::free(s.buf);
  }
  // verified: ChunkReader, as the tier reads (open-file cache, block CRCs).
  {
    auto loop = io::Loop::Create(lo, &why);
    nvme::OpenChunks open_files(files.size());
    nvme::ReaderStats stats;
    auto pool = std::make_shared<BufferPool>(64u << 20);
    nvme::ChunkReader reader(*loop, open_files, stats, pool, direct);
    static Run run;
    run = Run{};
    run.files = &files;
    run.bytes = bytes;
    static nvme::ChunkReader* preader;
    static bool stopping;
    preader = &reader;
    stopping = false;
    static void (*pissue)(nvme::ChunkRead*);
    pissue = [](nvme::ChunkRead* r) {
      if (stopping) return;
      const File& f = (*run.files)[run.rng() % run.files->size()];
      r->path = f.path;
      r->key = f.key;
      r->expect = f.expect;
      r->offset = run.Offset(f);
      r->length = std::min<uint64_t>(run.bytes, f.expect.data_length);
      r->buffer.Reset();
      preader->Read(r);
    };
    std::vector<nvme::ChunkRead> reads(qd);
    for (auto& r : reads) {
      r.done = [](nvme::ChunkRead* r) {
        if (r->status != nvme::ReadStatus::kOk) {
          if (r->status != nvme::ReadStatus::kCancelled) run.failed = true;
          return;
        }
        run.done += r->length;
        pissue(r);
      };
      pissue(&r);
    }
    double t0 = Now(), c0 = CpuSeconds();
    loop->Flush();
    while (Now() - t0 < seconds) {
      loop->Wait(100);
      loop->Poll();
    }
    Report("verified", run, t0, c0);
    stopping = true;
    loop->Drain();
  }
  return 0;
}
