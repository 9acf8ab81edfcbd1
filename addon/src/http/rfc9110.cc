#include "http/rfc9110.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace weightcache::http {
namespace {

constexpr uint64_t kInf = ~uint64_t{0};
// Longest Range header src/read/range.ts parses (MAX_RANGE_HEADER_LENGTH).
constexpr size_t kMaxRangeHeader = 8192;
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// range.ts toNumber(): leading zeros dropped; more than 16 digits, or past 2^53, is "beyond any object".
uint64_t ToNumber(std::string_view digits) {
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (digits.size() > 16) return kInf;
  uint64_t n = 0;
  for (char c : digits) n = n * 10 + static_cast<uint64_t>(c - '0');
  return n > kMaxSafeInteger ? kInf : n;
}

}  // namespace

bool EtagListMatches(std::string_view list, std::string_view etag, bool weak) {
  std::string_view t = Trim(list);
  if (t == "*") return true;
  for (size_t p = 0;;) {
    size_t comma = t.find(',', p);
    std::string_view tag = Trim(t.substr(p, comma == std::string_view::npos ? std::string_view::npos : comma - p));
    bool is_weak = tag.substr(0, 2) == "W/";
    if (!is_weak || weak) {
      if (is_weak) tag.remove_prefix(2);
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"' && tag.substr(1, tag.size() - 2) == etag) return true;
    }
    if (comma == std::string_view::npos) return false;
    p = comma + 1;
  }
}

RangeKind ParseRange(std::string_view header, uint64_t size, uint32_t max_ranges, std::vector<ByteRange>& out) {
  out.clear();
  if (header.size() > kMaxRangeHeader) return RangeKind::kNone;
  size_t eq = header.find('=');
  if (eq == std::string_view::npos || !IEquals(Trim(header.substr(0, eq)), "bytes")) return RangeKind::kNone;
  std::string_view specs = header.substr(eq + 1);
  uint64_t syntax_ok = 0;
  for (size_t p = 0;;) {
    size_t comma = specs.find(',', p);
    std::string_view spec = Trim(specs.substr(p, comma == std::string_view::npos ? std::string_view::npos : comma - p));
    if (!spec.empty()) {
      size_t dash = spec.find('-');
      if (dash == std::string_view::npos) return RangeKind::kNone;
      std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
      for (char c : first) if (!IsDigit(c)) return RangeKind::kNone;
      for (char c : last) if (!IsDigit(c)) return RangeKind::kNone;
      if (first.empty() && last.empty()) return RangeKind::kNone;
      if (++syntax_ok > 2 * uint64_t{max_ranges}) return RangeKind::kNone;
      if (first.empty()) {
        uint64_t n = ToNumber(last);
        if (!(n == 0 || size == 0)) out.push_back({n >= size ? 0 : size - n, size - 1});
      } else {
        uint64_t start = ToNumber(first);
        uint64_t end = last.empty() ? kInf : ToNumber(last);
        // Infinity < Infinity is false in JavaScript too.
        if (end < start) return RangeKind::kNone;
        if (start < size) out.push_back({start, std::min(end, size - 1)});
      }
    }
    if (comma == std::string_view::npos) break;
    p = comma + 1;
  }
  if (syntax_ok == 0) return RangeKind::kNone;
  if (out.empty()) return RangeKind::kUnsatisfiable;
  // Some byte asked for by more than two ranges: ignored (range.ts maxOverlap).
  std::vector<std::pair<uint64_t, int>> events;
  for (const ByteRange& r : out) {
    events.push_back({r.start, 1});
    events.push_back({r.end + 1, -1});
  }
  std::sort(events.begin(), events.end());
  int depth = 0, max_depth = 0;
  for (auto& e : events) max_depth = std::max(max_depth, depth += e.second);
  if (max_depth > 2) return RangeKind::kNone;
  std::sort(out.begin(), out.end(), [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });
  std::vector<ByteRange> merged;
  for (const ByteRange& r : out) {
    if (!merged.empty() && r.start <= merged.back().end + 1) {
      merged.back().end = std::max(merged.back().end, r.end);
    } else {
      merged.push_back(r);
    }
  }
  if (merged.size() > max_ranges) return RangeKind::kNone;
  out = std::move(merged);
  return RangeKind::kRanges;
}

std::string HttpDate(int64_t unix_seconds) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(unix_seconds);
  tm g{};
  gmtime_r(&t, &g);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[g.tm_wday], g.tm_mday, kMonths[g.tm_mon],
                g.tm_year + 1900, g.tm_hour, g.tm_min, g.tm_sec);
  return buf;
}

}  // namespace weightcache::http
