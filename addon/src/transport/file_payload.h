// Preparing a chunk-file payload: open it, check it still covers the range,
// checksum a sub-range (through mmap: reading, not copying) and pull the range
// into the page cache with readahead(2), so the I/O thread's sendfile does not
// wait on the device. Runs on the libuv thread pool (transport_js.cc), where
// blocking on a cold NVMe read stalls nobody else.
#pragma once
#include "transport/connection.h"
#include "transport/stats.h"

namespace weightcache {

// On success f.file_fd is open and f.h.payload_crc is set (if it was asked
// for). On failure the frame becomes an ERROR frame carrying TIER_IO and the
// reason: the header has not gone out, so the request can still fail cleanly.
void PrepareFilePayload(OutFrame& f, TransportStats& stats);

}  // namespace weightcache
