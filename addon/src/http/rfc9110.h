// RFC 9110 field values exactly as the JavaScript door reads them, for the
// native fast path (fastpath.h): byte ranges as src/read/range.ts parses
// them, entity-tag lists as src/read/conditional.ts matches them, and the
// HTTP date node writes. Where JavaScript's reading and the RFC differ, this
// follows JavaScript: the two doors must answer alike.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weightcache::http {

inline char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

inline bool IsWs(char c) { return c == ' ' || c == '\t'; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// SP and HTAB removed at both ends (callers only pass values without other white space).
inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

struct ByteRange {
  uint64_t start = 0;
  uint64_t end = 0;  // inclusive
};
enum class RangeKind { kNone, kUnsatisfiable, kRanges };
// A Range header against an object of `size` bytes: kNone (ignored: the whole
// object), kUnsatisfiable (416), or kRanges (`out`: sorted, merged).
RangeKind ParseRange(std::string_view header, uint64_t size, uint32_t max_ranges, std::vector<ByteRange>& out);

// A list of entity tags (or "*") against `etag` (unquoted); `weak`: the weak comparison.
bool EtagListMatches(std::string_view list, std::string_view etag, bool weak);

// "Sun, 06 Nov 1994 08:49:37 GMT" for `unix_seconds`, as JavaScript's toUTCString().
std::string HttpDate(int64_t unix_seconds);

}  // namespace weightcache::http
