// Counters the addon keeps for tests and metrics. `bytes_copied` is the
// zero-copy proof: every code path that memcpy's payload bytes in user space
// must add to it, and the tests assert it stays 0 for buffer and file sends.
#pragma once
#include <atomic>
#include <cstdint>

namespace weightcache {

struct TransportStats {
  std::atomic<uint64_t> bytes_writev{0};          // payload bytes sent from pinned JS memory
  std::atomic<uint64_t> bytes_sendfile{0};        // payload bytes sent by sendfile(2)
  std::atomic<uint64_t> bytes_copied{0};          // payload bytes memcpy'd in user space
  std::atomic<uint64_t> bytes_received_direct{0}; // payload bytes read straight into their final buffer
  std::atomic<uint64_t> bytes_crc_computed{0};    // payload bytes checksummed on the I/O thread (send side)
  std::atomic<uint64_t> frames_sent{0};
  std::atomic<uint64_t> frames_received{0};
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> connections_closed{0};
  std::atomic<uint64_t> connections_rejected{0};  // over maxConnections, none unauthenticated to close instead
  std::atomic<uint64_t> preauth_timeouts{0};      // closed: not authenticated within the pre-auth timeout
  std::atomic<uint64_t> preauth_evicted{0};       // closed to make room: oldest unauthenticated (overall or per address)
  std::atomic<uint64_t> preauth_refused{0};       // closed: a frame other than a small HELLO/AUTH before authentication
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> send_failures{0};         // file payloads that could not be opened/read
  std::atomic<int64_t> pinned_buffers{0};         // JS Buffers referenced until the kernel has them
  std::atomic<int64_t> queued_bytes{0};           // bytes queued for sending, not yet written
  // READ_CHUNK answered on the I/O thread from the native store (transport/chunk_serve.h), and the
  // requests of a listener serving natively that went to JavaScript instead, by why.
  std::atomic<uint64_t> native_served{0};
  std::atomic<uint64_t> native_served_bytes{0};
  std::atomic<uint64_t> native_pass_unbound{0};  // no binding, or another version / origin / chunk size
  std::atomic<uint64_t> native_pass_miss{0};     // not whole in DRAM (miss, NVMe only, being filled)
  std::atomic<uint64_t> native_pass_other{0};    // a meta or range JavaScript answers (stand-in, errors)
  std::atomic<uint64_t> native_pass_busy{0};     // on NVMe, but the reads in flight were at their bound
  // Of native_served: the answers whose bytes were read from NVMe chunk files (verified block by block).
  std::atomic<uint64_t> native_nvme_served{0};
  std::atomic<uint64_t> native_nvme_served_bytes{0};
  // NVMe reads that failed (a block's CRC32C, a file gone or short): the request went to JavaScript.
  std::atomic<uint64_t> native_nvme_failed{0};
  std::atomic<int64_t> native_nvme_waiting{0};   // answers waiting on NVMe reads now
  std::atomic<int64_t> native_chunk_refs{0};     // store references held by replies not yet written
  // READ_CHUNK answer payloads read straight into native store memory (transportReceiveInto):
  // the receiver's JavaScript publishes them in place after the CRC32C check, without a copy.
  std::atomic<uint64_t> bytes_received_store{0};
};

}  // namespace weightcache
