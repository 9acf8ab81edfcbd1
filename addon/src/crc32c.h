// CRC32C (Castagnoli), the checksum every chunk carries from fill to hit and
// every transport payload carries on the wire. One implementation for JS and
// C++ so a checksum computed by a tier and one checked by the transport agree.
#pragma once
#include <cstddef>
#include <cstdint>

namespace weightcache {

// Extends `crc` (0 for a fresh checksum) over `len` bytes at `data`, with the
// fastest implementation this CPU has (chosen once, at first use).
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);

// The implementations, slowest first. All compute the same function; tests
// and the microbenchmark call each one directly.
enum class Crc32cImpl {
  kTable,   // portable slicing-by-8
  kSse42,   // the crc32 instruction, three interleaved streams
  kAvx512,  // VPCLMULQDQ folding of 4 x 512 bits, finished with the crc32 instruction
};
constexpr int kCrc32cImplCount = 3;

bool Crc32cAvailable(Crc32cImpl impl);
// Runs `impl`; the caller checks Crc32cAvailable first (an unavailable one would fault).
uint32_t Crc32cWith(Crc32cImpl impl, uint32_t crc, const uint8_t* data, size_t len);
const char* Crc32cName(Crc32cImpl impl);  // "table", "sse4.2", "avx512"

// The name of the implementation Crc32c uses on this CPU.
const char* Crc32cImplementation();

// CRC combine: given crc_a = CRC32C(A) and crc_b = CRC32C(B), returns
// CRC32C(A || B) without the bytes, by multiplying crc_a by x^(8 len_b)
// modulo the polynomial (a "shift" of the CRC over len_b zero bytes).
// O(log len_b) carry-less multiplications.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// The same shift for one fixed length, precomputed as four byte tables, so
// combining a run of equal-sized blocks (a chunk file's block CRCs) costs
// four table lookups per block.
class Crc32cShift {
 public:
  explicit Crc32cShift(uint64_t len);
  uint32_t Combine(uint32_t crc_a, uint32_t crc_b) const { return Shift(crc_a) ^ crc_b; }
  uint32_t Shift(uint32_t crc) const {
    return t_[0][crc & 0xff] ^ t_[1][(crc >> 8) & 0xff] ^ t_[2][(crc >> 16) & 0xff] ^ t_[3][crc >> 24];
  }
  uint64_t length() const { return len_; }

 private:
  uint64_t len_;
  uint32_t t_[4][256];
};

}  // namespace weightcache
