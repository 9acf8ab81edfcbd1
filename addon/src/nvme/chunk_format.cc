#include "nvme/chunk_format.h"

#include <cstring>
#include <memory>
#include <mutex>

#include "crc32c.h"

namespace weightcache::nvme {
namespace {

constexpr uint8_t kMagic[8] = {'W', 'C', 'C', 'H', 'U', 'N', 'K', 0};
constexpr size_t kHeaderCrcAt = 60;

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Le64(const uint8_t* p) { return Le32(p) | (static_cast<uint64_t>(Le32(p + 4)) << 32); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  Put32(p, static_cast<uint32_t>(v));
  Put32(p + 4, static_cast<uint32_t>(v >> 32));
}

uint64_t AlignUp(uint64_t n) { return (n + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

bool ValidBlockBytes(uint32_t b) {
  return b >= kMinBlockBytes && b <= kMaxBlockBytes && (b & (b - 1)) == 0;
}

uint64_t BlockCount(uint64_t data_length, uint32_t block_bytes) {
  return (data_length + block_bytes - 1) / block_bytes;
}

uint64_t HeaderLength(uint32_t key_length, uint64_t block_count) {
  return kFixedHeaderBytes + key_length + 4 * block_count;
}

uint32_t HeaderCrc(const uint8_t* buf, uint64_t header_length) {
  uint32_t c = Crc32c(0, buf, kHeaderCrcAt);
  return Crc32c(c, buf + kFixedHeaderBytes, static_cast<size_t>(header_length - kFixedHeaderBytes));
}

// The shift over one full block, built once per block size (a few are ever used).
const Crc32cShift& ShiftFor(uint32_t block_bytes) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<Crc32cShift>> shifts;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& s : shifts) {
    if (s->length() == block_bytes) return *s;
  }
  shifts.push_back(std::make_unique<Crc32cShift>(block_bytes));
  return *shifts.back();
}

}  // namespace

uint32_t Header::BlockCrc(uint32_t i) const { return Le32(block_crcs + 4 * static_cast<size_t>(i)); }

uint32_t Header::BlockLength(uint32_t i) const {
  uint64_t start = static_cast<uint64_t>(i) * block_bytes;
  uint64_t left = data_length - start;
  return static_cast<uint32_t>(left < block_bytes ? left : block_bytes);
}

const char* DecodeErrorName(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "ok";
    case DecodeError::kTruncated:
      return "truncated";
    case DecodeError::kMagic:
      return "magic";
    case DecodeError::kVersion:
      return "version";
    case DecodeError::kKeyLength:
      return "key-length";
    case DecodeError::kBounds:
      return "bounds";
    case DecodeError::kHeaderCrc:
      return "header-crc";
    case DecodeError::kBlockTable:
      return "block-table";
  }
  return "unknown";
}

DecodeError DataOffset(const uint8_t* buf, size_t len, uint32_t* data_offset) {
  if (len < kFixedHeaderBytes) return DecodeError::kTruncated;
  if (std::memcmp(buf, kMagic, sizeof kMagic) != 0) return DecodeError::kMagic;
  if (Le16(buf + 8) != kFormatVersion) return DecodeError::kVersion;
  uint32_t key_length = Le32(buf + 12);
  if (key_length == 0 || key_length > kMaxKeyBytes) return DecodeError::kKeyLength;
  uint64_t data_length = Le64(buf + 16);
  uint32_t offset = Le32(buf + 24);
  uint32_t block_bytes = Le32(buf + 28);
  uint32_t block_count = Le32(buf + 32);
  if (data_length > kMaxDataBytes || !ValidBlockBytes(block_bytes) ||
      block_count != BlockCount(data_length, block_bytes) ||
      offset != AlignUp(HeaderLength(key_length, block_count))) {
    return DecodeError::kBounds;
  }
  *data_offset = offset;
  return DecodeError::kNone;
}

DecodeError Decode(const uint8_t* buf, size_t len, Header* out) {
  uint32_t offset = 0;
  DecodeError e = DataOffset(buf, len, &offset);
  if (e != DecodeError::kNone) return e;
  Header h;
  h.key_length = Le32(buf + 12);
  h.data_length = Le64(buf + 16);
  h.data_offset = offset;
  h.block_bytes = Le32(buf + 28);
  h.block_count = Le32(buf + 32);
  uint64_t header_length = HeaderLength(h.key_length, h.block_count);
  if (len < header_length) return DecodeError::kTruncated;
  if (HeaderCrc(buf, header_length) != Le32(buf + kHeaderCrcAt)) return DecodeError::kHeaderCrc;
  // The CRC passed, so these are what the writer wrote; still refuse what
  // this version never writes (a buggy or hostile writer).
  if (Le16(buf + 10) != 0) return DecodeError::kBounds;
  h.index = Le32(buf + 36);
  std::memcpy(h.object_id, buf + 40, kObjectIdBytes);
  h.data_crc = Le32(buf + 56);
  h.key = buf + kFixedHeaderBytes;
  h.block_crcs = buf + kFixedHeaderBytes + h.key_length;
  if (CombineBlockCrcs(h) != h.data_crc) return DecodeError::kBlockTable;
  *out = h;
  return DecodeError::kNone;
}

uint32_t CombineBlockCrcs(const Header& h) {
  if (h.block_count == 0) return 0;
  const Crc32cShift& full = ShiftFor(h.block_bytes);
  uint32_t crc = h.BlockCrc(0);
  uint32_t last = h.block_count - 1;
  for (uint32_t i = 1; i < last; i++) crc = full.Combine(crc, h.BlockCrc(i));
  if (last > 0) crc = Crc32cCombine(crc, h.BlockCrc(last), h.BlockLength(last));
  return crc;
}

bool Encode(const uint8_t* key, uint32_t key_length, const uint8_t* object_id, uint32_t index,
            const uint8_t* data, uint64_t data_length, uint32_t block_bytes, std::vector<uint8_t>* out,
            std::string* err) {
  if (key_length == 0 || key_length > kMaxKeyBytes) {
    *err = "chunk key is " + std::to_string(key_length) + " bytes; must be 1.." + std::to_string(kMaxKeyBytes);
    return false;
  }
  if (data_length > kMaxDataBytes) {
    *err = "chunk data length " + std::to_string(data_length) + " must be at most " + std::to_string(kMaxDataBytes);
    return false;
  }
  if (!ValidBlockBytes(block_bytes)) {
    *err = "block size " + std::to_string(block_bytes) + " must be a power of two from " +
           std::to_string(kMinBlockBytes) + " to " + std::to_string(kMaxBlockBytes);
    return false;
  }
  uint64_t count = BlockCount(data_length, block_bytes);
  uint64_t header_length = HeaderLength(key_length, count);
  uint64_t offset = AlignUp(header_length);
  out->assign(static_cast<size_t>(offset), 0);  // zeroed: the padding is deterministic
  uint8_t* b = out->data();
  std::memcpy(b, kMagic, sizeof kMagic);
  Put16(b + 8, kFormatVersion);
  Put16(b + 10, 0);
  Put32(b + 12, key_length);
  Put64(b + 16, data_length);
  Put32(b + 24, static_cast<uint32_t>(offset));
  Put32(b + 28, block_bytes);
  Put32(b + 32, static_cast<uint32_t>(count));
  Put32(b + 36, index);
  std::memcpy(b + 40, object_id, kObjectIdBytes);
  std::memcpy(b + kFixedHeaderBytes, key, key_length);
  uint8_t* table = b + kFixedHeaderBytes + key_length;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t start = i * block_bytes;
    uint64_t len = data_length - start < block_bytes ? data_length - start : block_bytes;
    Put32(table + 4 * i, Crc32c(0, data + start, static_cast<size_t>(len)));
  }
  Header h;
  h.data_length = data_length;
  h.block_bytes = block_bytes;
  h.block_count = static_cast<uint32_t>(count);
  h.block_crcs = table;
  Put32(b + 56, CombineBlockCrcs(h));
  Put32(b + kHeaderCrcAt, HeaderCrc(b, header_length));
  return true;
}

}  // namespace weightcache::nvme
