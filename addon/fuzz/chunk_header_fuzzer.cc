// Fuzz target for the NVMe chunk file header decoder (nvme/chunk_format.h),
// the code that parses every chunk file header a read or the start-up scan
// meets on disk. A libFuzzer entry point (LLVMFuzzerTestOneInput), built with
// clang and ASan+UBSan and run from its seed corpus (addon/fuzz/corpus/) by
// scripts/native-checks.mjs, which npm test runs (test/native/fuzz.test.ts):
//
//   npm run fuzz -- --seconds 600 chunk_header_fuzzer
//
// Mode (first byte, bit 0): raw bytes straight into the decoder (garbage must
// be rejected without reading past the buffer), or a valid header built from
// the input (key, data length, block size, index from its bytes), then one
// byte changed, cut, or left alone, so the fuzzer reaches past the header
// CRC into the block table checks. Invariants checked (a trap if broken):
// a header that decodes stays inside the buffer and describes itself
// consistently; an untouched encoded header always decodes to what was
// encoded; a changed byte inside the header is always rejected.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nvme/chunk_format.h"

using weightcache::nvme::DataOffset;
using weightcache::nvme::Decode;
using weightcache::nvme::DecodeError;
using weightcache::nvme::Encode;
using weightcache::nvme::Header;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Whatever decodes must point inside the buffer and agree with itself.
void CheckDecoded(const uint8_t* buf, size_t len) {
  uint32_t offset = 0;
  DecodeError pre = DataOffset(buf, len, &offset);
  Header h;
  DecodeError e = Decode(buf, len, &h);
  if (e != DecodeError::kNone) return;
  Check(pre == DecodeError::kNone && offset == h.data_offset);
  Check(h.key >= buf && h.key + h.key_length <= buf + len);
  Check(h.block_crcs >= buf && h.block_crcs + 4ull * h.block_count <= buf + len);
  Check(h.data_offset % weightcache::nvme::kAlignBytes == 0 && h.data_offset <= weightcache::nvme::kMaxDataOffset);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < h.block_count; i++) sum += h.BlockLength(i);
  Check(sum == h.data_length);
  Check(weightcache::nvme::CombineBlockCrcs(h) == h.data_crc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if ((data[0] & 1) == 0) {
    // Copy into a buffer of exactly the input's size, so ASan sees any overread.
    std::vector<uint8_t> buf(data + 1, data + size);
    CheckDecoded(buf.data(), buf.size());
    return 0;
  }
  if (size < 12) return 0;
  uint32_t key_len = 1 + (data[1] | (data[2] << 8)) % 300;
  uint32_t data_len = (data[3] | (data[4] << 8) | (data[5] << 16)) % (130 * 1024);  // up to 3 blocks of 64 KiB
  uint32_t block = weightcache::nvme::kMinBlockBytes << (data[6] % 4);
  uint32_t index = data[7] | (data[8] << 8);
  uint8_t action = data[9] % 3;  // 0: as encoded, 1: one byte changed, 2: cut short
  uint32_t where = data[10] | (data[11] << 8);
  const uint8_t* rest = data + 12;
  size_t rest_len = size - 12;
  std::string key(key_len, 'k');
  for (size_t i = 0; i < key_len && i < rest_len; i++) key[i] = static_cast<char>(rest[i]);
  std::vector<uint8_t> payload(data_len);
  for (size_t i = 0; i < data_len; i++) payload[i] = rest_len ? rest[i % rest_len] : static_cast<uint8_t>(i);
  uint8_t oid[weightcache::nvme::kObjectIdBytes] = {};
  std::vector<uint8_t> header;
  std::string err;
  Check(Encode(reinterpret_cast<const uint8_t*>(key.data()), key_len, oid, index, payload.data(), data_len, block,
               &header, &err));
  size_t meaningful = 64 + key_len + 4ull * ((data_len + block - 1) / block);
  if (action == 0) {
    Header h;
    Check(Decode(header.data(), header.size(), &h) == DecodeError::kNone);
    Check(h.key_length == key_len && std::memcmp(h.key, key.data(), key_len) == 0);
    Check(h.data_length == data_len && h.block_bytes == block && h.index == index);
    CheckDecoded(header.data(), header.size());
  } else if (action == 1) {
    size_t at = where % meaningful;
    header[at] ^= static_cast<uint8_t>(1 + (data[1] % 255));
    Header h;
    Check(Decode(header.data(), header.size(), &h) != DecodeError::kNone);
  } else {
    header.resize(where % header.size());
    std::vector<uint8_t> exact(header);  // exact size for ASan
    Header h;
    DecodeError e = Decode(exact.data(), exact.size(), &h);
    Check(exact.size() >= meaningful ? e == DecodeError::kNone : e != DecodeError::kNone);
    CheckDecoded(exact.data(), exact.size());
  }
  return 0;
}
