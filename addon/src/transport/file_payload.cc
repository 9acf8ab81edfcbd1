#include "transport/file_payload.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "crc32c.h"

namespace weightcache {
namespace {

void AppendStr(std::vector<uint8_t>& out, const std::string& s) {
  size_t n = s.size() > 0xffff ? 0xffff : s.size();
  out.push_back(static_cast<uint8_t>(n & 0xff));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.insert(out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

bool Prepare(OutFrame& f, TransportStats& stats, std::string& err) {
  int fd = open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = "cannot open chunk file " + f.path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st{};
  uint64_t end = f.file_offset + f.h.payload_length;
  if (fstat(fd, &st) < 0 || static_cast<uint64_t>(st.st_size) < end) {
    err = "chunk file " + f.path + " is shorter than the requested range (needs " + std::to_string(end) +
          " bytes)";
    close(fd);
    return false;
  }
  if (f.compute_crc && f.h.payload_length > 0) {
    uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    uint64_t start = f.file_offset - f.file_offset % page;
    size_t map_len = static_cast<size_t>(end - start);
    void* m = mmap(nullptr, map_len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
    if (m == MAP_FAILED) {
      err = "cannot map chunk file " + f.path + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    f.h.payload_crc = Crc32c(0, static_cast<uint8_t*>(m) + (f.file_offset - start),
                             static_cast<size_t>(f.h.payload_length));
    munmap(m, map_len);
    stats.bytes_crc_computed += f.h.payload_length;
  } else if (f.h.payload_length > 0) {
    // Best effort (the kernel may read less); the checksum above already faulted the range in.
    readahead(fd, static_cast<off64_t>(f.file_offset), static_cast<size_t>(f.h.payload_length));
  }
  f.file_fd = fd;
  return true;
}

}  // namespace

void PrepareFilePayload(OutFrame& f, TransportStats& stats) {
  std::string err;
  if (Prepare(f, stats, err)) return;
  stats.send_failures++;
  f.kind = OutFrame::kNone;
  f.h.type = kError;
  f.h.flags = kFlagResponse;
  f.h.payload_length = 0;
  f.h.payload_crc = 0;
  f.meta.clear();
  AppendStr(f.meta, "TIER_IO");
  AppendStr(f.meta, err);
}

}  // namespace weightcache
