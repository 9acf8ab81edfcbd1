// The NVMe tier's chunk file, format version 2: a self-describing header
// holding a CRC32C per block of data, zero padding to a 4 KiB boundary, then
// the chunk's bytes. A range read reads only the blocks it covers and checks
// each one; the whole chunk's CRC32C is derived from the block CRCs (CRC
// combine), never by reading the data again. docs/tiers.md has the layout and
// why the block size is 4 KiB.
//
//   offset  size  field (little-endian)
//   0       8     magic "WCCHUNK\0"
//   8       2     format version = 2
//   10      2     flags = 0
//   12      4     key length k, 1..4096
//   16      8     data length n, at most 1 GiB
//   24      4     data offset D = align4096(64 + k + 4b)
//   28      4     block size B: a power of two, 4 KiB..1 MiB
//   32      4     block count b = ceil(n / B)
//   36      4     chunk index
//   40      16    object id (src/chunk/name.ts objectId)
//   56      4     data CRC32C = the block CRCs combined
//   60      4     header CRC32C over [0, 60) then [64, 64 + k + 4b)
//   64      k     chunk key (the canonical chunk name, UTF-8)
//   64+k    4b    CRC32C of each block (the last block may be short)
//   ...           zeros up to D
//   D       n     data
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "store/chunk_id.h"

namespace weightcache::nvme {

constexpr uint16_t kFormatVersion = 2;
constexpr size_t kFixedHeaderBytes = 64;
constexpr uint32_t kMaxKeyBytes = 4096;
constexpr uint64_t kMaxDataBytes = 1ull << 30;
constexpr uint32_t kAlignBytes = 4096;
constexpr uint32_t kMinBlockBytes = 4096;
constexpr uint32_t kMaxBlockBytes = 1u << 20;
constexpr uint32_t kDefaultBlockBytes = 4096;
// The chunk store's object id (store/chunk_id.h): a chunk file names its chunk as the store does.
constexpr size_t kObjectIdBytes = store::kObjectIdBytes;
// The largest header a valid file has (4 KiB key, 1 GiB of 4 KiB blocks):
// what a reader may have to read before it can trust anything.
constexpr uint32_t kMaxDataOffset =
    (kFixedHeaderBytes + kMaxKeyBytes + 4 * (kMaxDataBytes / kMinBlockBytes) + kAlignBytes - 1) / kAlignBytes *
    kAlignBytes;

struct Header {
  const uint8_t* key = nullptr;  // points into the decoded buffer
  uint32_t key_length = 0;
  uint64_t data_length = 0;
  uint32_t data_offset = 0;
  uint32_t block_bytes = 0;
  uint32_t block_count = 0;
  uint32_t index = 0;
  uint8_t object_id[kObjectIdBytes] = {};
  uint32_t data_crc = 0;
  const uint8_t* block_crcs = nullptr;  // block_count little-endian u32s, in the decoded buffer

  uint32_t BlockCrc(uint32_t i) const;
  uint32_t BlockLength(uint32_t i) const;
};

enum class DecodeError { kNone, kTruncated, kMagic, kVersion, kKeyLength, kBounds, kHeaderCrc, kBlockTable };
// Stable names, used in logs and by the JS side: "truncated", "magic", ...
const char* DecodeErrorName(DecodeError e);
// Header CRC or block table: the bytes were damaged (a checksum failure), as
// opposed to a file that is not a chunk file of this version at all.
inline bool IsChecksumFailure(DecodeError e) { return e == DecodeError::kHeaderCrc || e == DecodeError::kBlockTable; }

// From the first bytes of a file (at least kFixedHeaderBytes): where its data
// starts, which is how much of the file holds the header. Checks what can be
// checked before the header CRC (magic, version, key length, and that the
// lengths agree with each other), so a damaged length can never make a
// reader read more than kMaxDataOffset bytes.
DecodeError DataOffset(const uint8_t* buf, size_t len, uint32_t* data_offset);

// Decodes and validates a whole header: `buf` holds at least the data offset
// bytes (DataOffset says how many). On success `out` points into `buf`.
// Checks: everything DataOffset checks, the header CRC, zero flags, and that
// the block CRCs combine to the data CRC.
DecodeError Decode(const uint8_t* buf, size_t len, Header* out);

// The header for `data` (its full data offset, zero padded): block CRCs are
// computed here and the data CRC is derived from them. False, with the reason
// in *err, for a key or length the format cannot hold.
bool Encode(const uint8_t* key, uint32_t key_length, const uint8_t* object_id, uint32_t index,
            const uint8_t* data, uint64_t data_length, uint32_t block_bytes, std::vector<uint8_t>* out,
            std::string* err);

// The CRC32C of all the data, from the block CRCs (CRC combine).
uint32_t CombineBlockCrcs(const Header& h);

}  // namespace weightcache::nvme
