// Character classes of the HTTP/1.1 and URI grammars (RFC 9110 section 5.6,
// RFC 9112, RFC 3986), as 256-entry tables so the parser tests one byte with
// one load. Only what the request parser needs.
#pragma once
#include <array>
#include <cstdint>

namespace weightcache::http::chars {

enum : uint8_t {
  kToken = 1,       // tchar: field names, methods, transfer codings
  kFieldValue = 2,  // field-vchar / SP / HTAB (obs-text included, RFC 9110 section 5.5)
  kPath = 4,        // pchar / "/" minus "%" (checked separately), and the visible ASCII target.ts accepts
  kQuery = 8,       // kPath plus "?"
  kRegName = 16,    // unreserved / sub-delims (a host name or IPv4 address, "%" aside)
  kHex = 32,
  kScheme = 64,     // ALPHA / DIGIT / "+" / "-" / "."
  kDigit = 128,
};

constexpr std::array<uint8_t, 256> MakeTable() {
  std::array<uint8_t, 256> t{};
  auto add = [&t](const char* s, uint8_t cls) {
    for (; *s; s++) t[static_cast<uint8_t>(*s)] |= cls;
  };
  for (int c = '0'; c <= '9'; c++) t[c] |= kToken | kPath | kQuery | kRegName | kHex | kScheme | kDigit;
  for (int c = 'a'; c <= 'z'; c++) t[c] |= kToken | kPath | kQuery | kRegName | kScheme;
  for (int c = 'A'; c <= 'Z'; c++) t[c] |= kToken | kPath | kQuery | kRegName | kScheme;
  add("abcdefABCDEF", kHex);
  add("!#$%&'*+-.^_`|~", kToken);
  for (int c = 0x21; c <= 0x7e; c++) t[c] |= kFieldValue;
  for (int c = 0x80; c <= 0xff; c++) t[c] |= kFieldValue;
  add(" \t", kFieldValue);
  // unreserved "-._~", sub-delims "!$&'()*+,;=", and ":@" make pchar; "/" separates segments.
  add("-._~!$&'()*+,;=:@/", kPath | kQuery);
  add("?", kQuery);
  // Not URI characters (RFC 3986), but visible ASCII, which src/http/target.ts accepts and
  // re-encodes: the door's one set of target rules is target.ts's, so the parser lets them by.
  add("\"<>[]^`{|}", kPath | kQuery);
  add("-._~!$&'()*+,;=", kRegName);
  add("+-.", kScheme);
  return t;
}

inline constexpr std::array<uint8_t, 256> kTable = MakeTable();

inline bool Is(uint8_t c, uint8_t cls) { return (kTable[c] & cls) != 0; }

inline int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline uint8_t Lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c; }

}  // namespace weightcache::http::chars
