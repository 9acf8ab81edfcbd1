#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#define WEIGHTCACHE_HAVE_X86 1
#endif

namespace weightcache {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // CRC32C, reflected

struct Tables {
  uint32_t t[8][256];
  constexpr Tables() : t{} {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
constexpr Tables kTables;

uint32_t Crc32cTable(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);  // little-endian hosts only; see binding.gyp targets
    v ^= crc;
    crc = kTables.t[7][v & 0xff] ^ kTables.t[6][(v >> 8) & 0xff] ^ kTables.t[5][(v >> 16) & 0xff] ^
          kTables.t[4][(v >> 24) & 0xff] ^ kTables.t[3][(v >> 32) & 0xff] ^
          kTables.t[2][(v >> 40) & 0xff] ^ kTables.t[1][(v >> 48) & 0xff] ^ kTables.t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kTables.t[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

#ifdef WEIGHTCACHE_HAVE_X86
// Three independent crc32 streams hide the instruction's 3-cycle latency
// (one stream does ~8 bytes per 3 cycles; three do ~8 per cycle). The streams
// cover adjacent blocks and are joined by "shifting" a CRC over a block of
// zeros, a linear map precomputed as four byte tables (Mark Adler's method).
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

uint32_t Gf2Times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  while (vec) {
    if (vec & 1) sum ^= *mat;
    vec >>= 1;
    mat++;
  }
  return sum;
}

void Gf2Square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; n++) square[n] = Gf2Times(mat, mat[n]);
}

// The operator that appends `len` zero bytes (len a power of two) to a CRC.
void ZerosOp(uint32_t* even, size_t len) {
  uint32_t odd[32];
  odd[0] = kPoly;
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  Gf2Square(even, odd);
  Gf2Square(odd, even);
  do {
    Gf2Square(even, odd);
    len >>= 1;
    if (len == 0) return;
    Gf2Square(odd, even);
    len >>= 1;
  } while (len);
  for (int n = 0; n < 32; n++) even[n] = odd[n];
}

struct ShiftTable {
  uint32_t t[4][256];
  explicit ShiftTable(size_t len) {
    uint32_t op[32];
    ZerosOp(op, len);
    for (uint32_t n = 0; n < 256; n++) {
      t[0][n] = Gf2Times(op, n);
      t[1][n] = Gf2Times(op, n << 8);
      t[2][n] = Gf2Times(op, n << 16);
      t[3][n] = Gf2Times(op, n << 24);
    }
  }
  uint32_t Shift(uint32_t crc) const {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
  }
};

__attribute__((target("sse4.2"))) inline uint64_t Crc8(uint64_t c, const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return _mm_crc32_u64(c, v);
}

// Three streams over blocks of `block` bytes while at least 3 blocks remain.
__attribute__((target("sse4.2"))) uint64_t Crc3Way(uint64_t c0, const uint8_t*& p, size_t& n, size_t block,
                                                   const ShiftTable& shift) {
  while (n >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + block;
    do {
      c0 = Crc8(c0, p);
      c1 = Crc8(c1, p + block);
      c2 = Crc8(c2, p + 2 * block);
      p += 8;
    } while (p < end);
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ c1;
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ c2;
    p += 2 * block;
    n -= 3 * block;
  }
  return c0;
}

__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, const uint8_t* p, size_t n) {
  static const ShiftTable long_shift(kLong);
  static const ShiftTable short_shift(kShort);
  uint64_t c = ~crc;
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    n--;
  }
  c = Crc3Way(c, p, n, kLong, long_shift);
  c = Crc3Way(c, p, n, kShort, short_shift);
  while (n >= 8) {
    c = Crc8(c, p);
    p += 8;
    n -= 8;
  }
  while (n--) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
#ifdef WEIGHTCACHE_HAVE_X86
  if (HaveSse42()) return Crc32cSse42(crc, data, len);
#endif
  return Crc32cTable(crc, data, len);
}

const char* Crc32cImplementation() {
#ifdef WEIGHTCACHE_HAVE_X86
  if (HaveSse42()) return "sse4.2";
#endif
  return "table";
}

// Exposed for tests that pin the portable path against the fast one.
uint32_t Crc32cPortable(uint32_t crc, const uint8_t* data, size_t len) { return Crc32cTable(crc, data, len); }

}  // namespace weightcache
