// The transport's native chunk service: a READ_CHUNK request answered on the
// I/O thread from the native DRAM store, without a JavaScript round trip
// (docs/wire-protocol.md, "Served from the native store").
//
// Only the plain case is answered here: a request that parses exactly (the
// layout of src/transport/messages.ts decodeReadChunk, no stand-in report),
// of this process's origin and chunk size, whose version is the one bound for
// its name (store/bindings.h, the table the HTTP and RESP fast paths read;
// the binding carries the chunk size its object id was computed with),
// for a range inside one chunk that is whole in the DRAM store, or whose v2
// chunk file the NVMe index (store/nvme_index.h) lists: then the covered
// blocks are read by the I/O thread's DiskReader (store/disk_reads.h, the
// reader the HTTP and RESP fast paths use), each verified against its CRC32C,
// and the answer goes out when the reads complete (kPending). A read that
// fails (a damaged block, a file gone or short) hands the request to
// JavaScript, which drops and refetches the chunk. Everything else — a miss,
// a stand-in request, an unbound or other version, a bad range, a meta
// JavaScript would refuse, the thread's bounds on reads reached — returns a
// kPass and JavaScript answers it exactly as before, errors and protocol
// errors included.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/bindings.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache::transport {

inline constexpr uint8_t kReadChunk = 0x10;
inline constexpr uint32_t kReadLocalOnly = 1;  // READ_CHUNK flag bit 0: a hit is local, so it may be served here
// u64 fields of a meta are at most 2^53 - 1 (what a JavaScript number holds exactly).
inline constexpr uint64_t kMaxMetaU64 = (uint64_t{1} << 53) - 1;
// READ_CHUNK answers the transport's I/O thread waits on NVMe reads for at once; one more goes to
// JavaScript (counted as busy). The DiskReader's own bounds (kMaxDiskRanges, kMaxDiskBufferBytes)
// apply as well.
inline constexpr size_t kMaxTransportDiskReads = 64;

struct ReadChunkMeta {
  std::string_view origin_id, container, key, etag;
  uint64_t size = 0;
  uint32_t chunk_size = 0;
  uint32_t index = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t flags = 0;
};

// Parses a READ_CHUNK request meta with flags 0 or LOCAL_ONLY. False for every
// other meta (a stand-in report, unknown flags, short, trailing bytes, a u64
// over 2^53 - 1): those are JavaScript's to answer or refuse. Strings are
// views into `p` and are not checked for UTF-8: they are only compared with
// strings that are valid (the bound name, etag and origin id).
bool ParseReadChunk(const uint8_t* p, size_t n, ReadChunkMeta* out);

// What a listener serves from: given by JavaScript (transportServeNative).
struct ChunkSource {
  std::shared_ptr<store::Store> store;
  std::shared_ptr<store::BindingTable> bindings;
  std::string origin_id;
  uint64_t max_frame_bytes = 0;  // a longer read is JavaScript's (TOO_LARGE)
};

struct ChunkReply {
  store::Ref ref;  // held until the payload is written (or the connection closes)
  store::ReadBuffer buffer;  // or: the verified NVMe read buffer the bytes lie in
  const uint8_t* data = nullptr;
  uint32_t length = 0;
  uint32_t crc = 0;           // the chunk's stored CRC32C when the read is the whole chunk
  bool compute_crc = false;   // a sub-range: checksummed on the I/O thread before the header goes out
  bool nvme_listed = false;   // kPassMiss without a reader: the NVMe index lists the chunk
};

enum class ServeResult {
  kServed,
  kPassMeta,      // the meta is not the plain layout (or would be refused): JavaScript decides
  kPassUnbound,   // no binding for the name, or it binds another version / size / chunk size, or another origin
  kPassRange,     // index, offset or length outside the chunk, empty or over max_frame_bytes
  kPassMiss,      // the chunk is neither whole in the DRAM store nor listed on NVMe (or no `disk`)
  kPassBusy,      // on NVMe, but the DiskReader's bounds are reached
  kPending,       // on NVMe: reads started; `disk`'s callback gets the view with `token`
};

// With a `disk` reader, a chunk only on NVMe is read by it (kPending); without one it is kPassMiss.
// On kPending `out` holds length, crc and compute_crc (the bytes come with the view).
ServeResult ServeReadChunk(const ChunkSource& src, const uint8_t* meta, size_t meta_len, int64_t now_ns,
                           store::DiskReader* disk, uint64_t token, ChunkReply* out);

// The reply's bytes from a completed read's one piece (the DRAM reference or NVMe read buffer
// that keeps them alive moves into `out`). False when the piece holds no bytes.
bool TakePiece(store::Piece&& piece, ChunkReply* out);

}  // namespace weightcache::transport
