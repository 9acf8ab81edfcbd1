// One socket on the I/O thread: its frame decoder, its queue of frames to send
// (header + meta owned here, payload borrowed from pinned JS memory or a file),
// and the bookkeeping that bounds memory: the ids of requests it sent (so an
// unsolicited response closes the connection) and the count of requests it
// received but has not answered (reading pauses at maxInFlight: backpressure).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "transport/frame.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache {

struct OutFrame {
  FrameHeader h;
  uint8_t header[kHeaderBytes] = {};
  std::vector<uint8_t> meta;
  enum PayloadKind { kNone, kMemory, kFile } kind = kNone;
  const uint8_t* mem = nullptr;
  void* pin = nullptr;  // opaque JS reference, released on the JS thread
  std::string path;
  uint64_t file_offset = 0;
  int file_fd = -1;
  bool compute_crc = false;
  // kMemory from the native store (a READ_CHUNK served on the I/O thread): `mem` lies in this
  // chunk, held until the payload is written or the connection closes; `store` outlives it.
  std::shared_ptr<store::Store> store;  // declared first: destroyed after `ref`
  store::Ref ref;
  store::ReadBuffer buffer;  // or: a verified NVMe read buffer `mem` lies in (the I/O thread's DiskReader)
  uint64_t written = 0;  // of header + meta + payload
  bool queued = false;   // counted in stats.queued_bytes until finished or released

  uint64_t prefix_len() const { return kHeaderBytes + meta.size(); }
  uint64_t total_len() const { return prefix_len() + h.payload_length; }
};

struct ConnLimits {
  uint64_t max_frame_bytes = 16u << 20;
  uint32_t max_in_flight = 256;
};

// What a listener allows connections that have not authenticated yet
// (docs/wire-protocol.md, "Before authentication"). Outbound connections have none.
struct PreAuthLimits {
  uint32_t timeout_ms = 5000;       // accepted → admitted, or the connection is closed
  uint32_t max_connections = 256;   // held at once; one more closes the oldest
  uint32_t max_per_address = 16;    // from one address (IPv6: one /64); one more closes that address's oldest
};

struct Connection {
  Connection(uint64_t id_, int fd_, uint64_t listener_, ConnLimits limits_, void* ctx,
             FrameReader::Allocate alloc, FrameReader::Release release)
      : id(id_), fd(fd_), listener(listener_), limits(limits_),
        reader(limits_.max_frame_bytes, ctx, alloc, release) {}

  uint64_t id;
  int fd;
  uint64_t listener;  // 0 for outbound connections
  ConnLimits limits;
  FrameReader reader;
  std::deque<OutFrame> out;
  std::unordered_set<uint32_t> awaiting;  // requests sent, response not yet received
  uint32_t inbound_pending = 0;           // requests received, response not yet written
  bool connecting = false;
  bool reading_paused = false;
  bool want_write = false;
  bool close_after_flush = false;
  uint32_t interest = 0;  // the epoll mask currently registered
  std::string close_reason;
  // Accepted and not yet admitted by JS (transportAdmit): handshake frames only,
  // read one at a time, until preauth_deadline_ms (CLOCK_MONOTONIC).
  bool preauth = false;
  uint64_t preauth_deadline_ms = 0;
  uint32_t handshake_frames = 0;
  std::string addr_key;                     // the peer's address (IPv6: its /64), for the per-address limit
  std::list<uint64_t>::iterator preauth_pos;  // in the listener's oldest-first list
};

}  // namespace weightcache
