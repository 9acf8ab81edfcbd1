// Access-log records of answers made on a native door's I/O threads (the
// HTTP and RESP fast paths), handed to JavaScript (src/log/access.ts writes
// them as it writes its own), and the bound on how many may wait for it.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace weightcache::net {

struct AccessRecord {
  std::string method, target, peer;  // RESP: the command's name (upper case) and its key
  int status = 0;           // HTTP's status; RESP: 0 (a fast-path reply is never an error: "OK")
  uint64_t bytes = 0;       // body (value) bytes sent
  double duration_ms = 0;   // read (RESP) or head parsed (HTTP) → last byte written (or the connection gone)
  bool aborted = false;     // the connection went away before the answer was written
  const char* source = "dram";  // where the bytes came from, a literal: "dram", "nvme", or a resumed miss's "origin"/"peer"
};

// Access records waiting for JavaScript, all threads of a door together: past
// this, a thread drops what it has (counted) rather than wait or grow. It
// never blocks an I/O thread.
constexpr int64_t kMaxPendingAccessRecords = 10'000;

// Takes `batch` into the door's count of records waiting (`pending`), cutting
// what is over kMaxPendingAccessRecords (added to `dropped`). Whatever is left
// in `batch` is to be posted; JavaScript subtracts what it takes from `pending`.
inline void AdmitAccess(std::vector<AccessRecord>& batch, std::atomic<int64_t>& pending,
                        std::atomic<uint64_t>& dropped) {
  if (batch.empty()) return;
  int64_t n = static_cast<int64_t>(batch.size());
  int64_t before = pending.fetch_add(n);
  int64_t over = std::min(n, before + n - kMaxPendingAccessRecords);
  if (over > 0) {
    pending -= over;
    dropped += static_cast<uint64_t>(over);
    batch.resize(static_cast<size_t>(n - over));
  }
}

}  // namespace weightcache::net
