#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define WEIGHTCACHE_HAVE_X86 1
#endif

namespace weightcache {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // CRC32C, reflected: bit 31 is x^0, bit 0 is x^31

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

// --- GF(2) arithmetic modulo the CRC polynomial, reflected bit order --------
//
// A CRC register is a polynomial of degree < 32 (bit 31 = x^0). Appending n
// zero bits to a message multiplies its raw CRC by x^n mod P; everything that
// combines CRCs (the three-stream SSE4.2 loop, CRC combine, the folding
// constants of the VPCLMULQDQ loop) is built from these two functions.

// a * b mod P.
uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t p = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}

struct PowersOfX {
  uint32_t x2n[64];  // x^(2^k) mod P
  PowersOfX() {
    uint32_t p = 1u << 30;  // x^1
    for (int k = 0; k < 64; k++) {
      x2n[k] = p;
      p = MultModP(p, p);
    }
  }
};

// x^n mod P.
uint32_t XPowModP(uint64_t n) {
  static const PowersOfX powers;
  uint32_t p = 1u << 31;  // x^0
  for (int k = 0; n != 0; k++, n >>= 1) {
    if (n & 1) p = MultModP(powers.x2n[k], p);
  }
  return p;
}

#ifdef WEIGHTCACHE_HAVE_X86
// --- SSE4.2 -------------------------------------------------------------------
//
// Three independent crc32 streams hide the instruction's 3-cycle latency
// (one stream does ~8 bytes per 3 cycles; three do ~8 per cycle). The streams
// cover adjacent blocks and are joined by shifting a CRC over a block
// (Crc32cShift).
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

__attribute__((target("sse4.2"))) inline uint64_t Crc8(uint64_t c, const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return _mm_crc32_u64(c, v);
}

// Three streams over blocks of `block` bytes while at least 3 blocks remain.
__attribute__((target("sse4.2"))) uint64_t Crc3Way(uint64_t c0, const uint8_t*& p, size_t& n, size_t block,
                                                   const Crc32cShift& shift) {
  while (n >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + block;
    do {
      c0 = Crc8(c0, p);
      c1 = Crc8(c1, p + block);
      c2 = Crc8(c2, p + 2 * block);
      p += 8;
    } while (p < end);
    c0 = shift.Combine(static_cast<uint32_t>(c0), static_cast<uint32_t>(c1));
    c0 = shift.Combine(static_cast<uint32_t>(c0), static_cast<uint32_t>(c2));
    p += 2 * block;
    n -= 3 * block;
  }
  return c0;
}

// The raw register form (no pre/post inversion), so other paths can finish with it.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42Raw(uint32_t reg, const uint8_t* p, size_t n) {
  static const Crc32cShift long_shift(kLong);
  static const Crc32cShift short_shift(kShort);
  uint64_t c = reg;
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
  return static_cast<uint32_t>(c);
}

uint32_t Crc32cSse42(uint32_t crc, const uint8_t* p, size_t n) { return ~Crc32cSse42Raw(~crc, p, n); }

// --- AVX-512 + VPCLMULQDQ -------------------------------------------------------
//
// Folding (Intel, "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ"): a 128-bit lane X of the message that lies T bits before a lane
// Y can be replaced by X * x^T mod P xor-ed into Y without changing the CRC.
// With X = H * x^64 + L (H = its first 8 bytes in the reflected order), that
// is H * (x^(T+64) mod P) + L * (x^T mod P): two 64 x 32-bit carry-less
// multiplications per lane. A reflected carry-less product comes out one
// degree low, so the constants are x^(T+63) and x^(T-1), each placed in the
// upper half of a 64-bit operand. Four 512-bit accumulators (16 lanes, 256
// bytes per iteration) keep the multiplier busy; at the end they fold into one
// lane, whose CRC the crc32 instruction computes (16 bytes from a zero
// register), and the last < 16 bytes go through crc32 as well.

uint64_t FoldConstant(uint64_t bits) { return static_cast<uint64_t>(XPowModP(bits)) << 32; }

struct FoldConstants {
  // {for the first 8 bytes, for the last 8 bytes} of a lane, per distance.
  uint64_t by2048[2], by512[2], by384[2], by256[2], by128[2];
  FoldConstants() {
    auto set = [](uint64_t* k, uint64_t t) {
      k[0] = FoldConstant(t + 63);
      k[1] = FoldConstant(t - 1);
    };
    set(by2048, 2048);
    set(by512, 512);
    set(by384, 384);
    set(by256, 256);
    set(by128, 128);
  }
};

#define WC_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,vpclmulqdq,pclmul,sse4.2")))

WC_AVX512_TARGET inline __m512i Fold512(__m512i x, __m512i k, __m512i y) {
  // (x.lo * k.lo) ^ (x.hi * k.hi) ^ y per 128-bit lane; 0x96 is a three-way xor.
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), y,
                                   0x96);
}

WC_AVX512_TARGET inline __m128i Fold128(__m128i x, __m128i k, __m128i y) {
  return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11), y, 0x96);
}

WC_AVX512_TARGET inline __m512i Broadcast(const uint64_t* k) {
  auto lo = static_cast<long long>(k[0]), hi = static_cast<long long>(k[1]);
  return _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
}

WC_AVX512_TARGET uint32_t Crc32cAvx512(uint32_t crc, const uint8_t* p, size_t n) {
  // Below a few hundred bytes the setup and final folds cost more than they save.
  if (n < 512) return Crc32cSse42(crc, p, n);
  static const FoldConstants k;
  const __m512i k2048 = Broadcast(k.by2048);
  const __m512i k512 = Broadcast(k.by512);
  __m512i x0 = _mm512_loadu_si512(p);
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  // The register's initial value is the message's first 32 bits xor-ed with it.
  x0 = _mm512_xor_si512(x0, _mm512_maskz_mov_epi32(1, _mm512_set1_epi32(static_cast<int>(~crc))));
  p += 256;
  n -= 256;
  while (n >= 256) {
    x0 = Fold512(x0, k2048, _mm512_loadu_si512(p));
    x1 = Fold512(x1, k2048, _mm512_loadu_si512(p + 64));
    x2 = Fold512(x2, k2048, _mm512_loadu_si512(p + 128));
    x3 = Fold512(x3, k2048, _mm512_loadu_si512(p + 192));
    p += 256;
    n -= 256;
  }
  x1 = Fold512(x0, k512, x1);
  x2 = Fold512(x1, k512, x2);
  x3 = Fold512(x2, k512, x3);
  while (n >= 64) {
    x3 = Fold512(x3, k512, _mm512_loadu_si512(p));
    p += 64;
    n -= 64;
  }
  // Four lanes -> one: lane i lies (3 - i) * 128 bits before lane 3.
  alignas(64) __m128i lane[4];
  _mm512_store_si512(lane, x3);
  __m128i a = lane[3];
  a = Fold128(lane[0], _mm_loadu_si128(reinterpret_cast<const __m128i*>(k.by384)), a);
  a = Fold128(lane[1], _mm_loadu_si128(reinterpret_cast<const __m128i*>(k.by256)), a);
  const __m128i k128 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(k.by128));
  a = Fold128(lane[2], k128, a);
  while (n >= 16) {
    a = Fold128(a, k128, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    p += 16;
    n -= 16;
  }
  uint64_t c = _mm_crc32_u64(0, static_cast<uint64_t>(_mm_extract_epi64(a, 0)));
  c = _mm_crc32_u64(c, static_cast<uint64_t>(_mm_extract_epi64(a, 1)));
  return ~Crc32cSse42Raw(static_cast<uint32_t>(c), p, n);
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}

bool HaveAvx512() {
  // __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0).
  static const bool have = HaveSse42() && __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul");
  return have;
}
#endif

Crc32cImpl Best() {
#ifdef WEIGHTCACHE_HAVE_X86
  if (HaveAvx512()) return Crc32cImpl::kAvx512;
  if (HaveSse42()) return Crc32cImpl::kSse42;
#endif
  return Crc32cImpl::kTable;
}

}  // namespace

bool Crc32cAvailable(Crc32cImpl impl) {
  switch (impl) {
    case Crc32cImpl::kTable:
      return true;
#ifdef WEIGHTCACHE_HAVE_X86
    case Crc32cImpl::kSse42:
      return HaveSse42();
    case Crc32cImpl::kAvx512:
      return HaveAvx512();
#endif
    default:
      return false;
  }
}

uint32_t Crc32cWith(Crc32cImpl impl, uint32_t crc, const uint8_t* data, size_t len) {
  switch (impl) {
#ifdef WEIGHTCACHE_HAVE_X86
    case Crc32cImpl::kAvx512:
      return Crc32cAvx512(crc, data, len);
    case Crc32cImpl::kSse42:
      return Crc32cSse42(crc, data, len);
#endif
    default:
      return Crc32cTable(crc, data, len);
  }
}

const char* Crc32cName(Crc32cImpl impl) {
  switch (impl) {
    case Crc32cImpl::kAvx512:
      return "avx512";
    case Crc32cImpl::kSse42:
      return "sse4.2";
    default:
      return "table";
  }
}

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  static const Crc32cImpl best = Best();
  return Crc32cWith(best, crc, data, len);
}

const char* Crc32cImplementation() { return Crc32cName(Best()); }

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  // Beyond 2^61 bytes 8 * len_b would overflow; no chunk comes near.
  return MultModP(XPowModP(len_b << 3), crc_a) ^ crc_b;
}

Crc32cShift::Crc32cShift(uint64_t len) : len_(len) {
  const uint32_t op = XPowModP(len << 3);
  for (uint32_t b = 0; b < 256; b++) {
    for (int k = 0; k < 4; k++) t_[k][b] = MultModP(op, b << (8 * k));
  }
}

}  // namespace weightcache
