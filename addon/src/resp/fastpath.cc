#include "resp/fastpath.h"

#include <algorithm>

#include "store/range.h"

namespace weightcache::resp {
namespace {

enum class Cmd { kNone, kGet, kGetRange, kStrlen, kExists };

// ASCII case-insensitive: JavaScript lower-cases the name, and no non-ASCII
// character lower-cases to a letter of these names.
bool NameIs(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

Cmd CommandOf(const std::vector<std::string>& args) {
  if (args.empty()) return Cmd::kNone;
  const std::string& n = args[0];
  if (NameIs(n, "get")) return Cmd::kGet;
  if (NameIs(n, "getrange")) return Cmd::kGetRange;
  if (NameIs(n, "strlen")) return Cmd::kStrlen;
  if (NameIs(n, "exists")) return Cmd::kExists;
  return Cmd::kNone;
}

}  // namespace

bool RespGrant::Allows(std::string_view container) const {
  if (all) return true;
  for (const std::string& c : containers) {
    if (c == container) return true;
  }
  return false;
}

bool ParseRespInteger(std::string_view s, int64_t& v) {
  bool neg = !s.empty() && s[0] == '-';
  std::string_view d = neg ? s.substr(1) : s;
  if (d.empty() || d.size() > 18 || (d.size() > 1 && d[0] == '0')) return false;
  int64_t x = 0;
  for (char c : d) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  v = neg ? -x : x;
  return true;
}

bool RedisRange(int64_t size, int64_t start, int64_t end, int64_t& from, int64_t& to) {
  if (start < 0 && end < 0 && start > end) return false;
  int64_t s = start < 0 ? size + start : start;
  int64_t e = end < 0 ? size + end : end;
  if (s < 0) s = 0;
  if (e < 0) e = 0;
  if (e >= size) e = size - 1;
  if (s > e || size == 0) return false;
  from = s;
  to = e;
  return true;
}

bool IsFastCommand(const std::vector<std::string>& args) { return CommandOf(args) != Cmd::kNone; }

RespFastResult StartRespFast(RespFastPath& fp, const std::vector<std::string>& args, const RespGrant* grant,
                             RespAnswer& out, store::DiskReader* disk, uint64_t token) {
  RespFastStats& st = fp.stats;
  Cmd cmd = CommandOf(args);
  size_t arity = cmd == Cmd::kGetRange ? 4 : 2;
  if (cmd == Cmd::kNone || args.size() != arity) {  // arity errors, EXISTS of several keys: JavaScript
    st.other++;
    return RespFastResult::kNo;
  }
  int64_t start = 0, end = 0;
  if (cmd == Cmd::kGetRange &&
      (!ParseRespInteger(args[2], start) || !ParseRespInteger(args[3], end) || start > kMaxExactIndex ||
       start < -kMaxExactIndex || end > kMaxExactIndex || end < -kMaxExactIndex)) {
    st.other++;
    return RespFastResult::kNo;
  }
  const std::string& key = args[1];
  // A pinned key ('{etag}container/key') is checked against the version by JavaScript (src/read/pinned.ts).
  size_t slash = key.find('/');
  if (key.empty() || key[0] == '{' || slash == std::string::npos || slash == 0) {
    st.other++;
    return RespFastResult::kNo;
  }
  if (grant == nullptr || !grant->Allows(std::string_view(key).substr(0, slash))) {
    st.unauthorised++;
    return RespFastResult::kNo;
  }
  std::shared_ptr<const store::VersionBinding> b = fp.bindings->Lookup(key, store::MonotonicNs());
  if (!b) {
    st.no_binding++;
    return RespFastResult::kNo;
  }
  const store::VersionBinding& v = *b;
  if (v.size > static_cast<uint64_t>(kMaxExactIndex) || v.chunk_size == 0) {
    st.other++;
    return RespFastResult::kNo;
  }
  if (cmd == Cmd::kStrlen || cmd == Cmd::kExists) {
    out.head = ":" + std::to_string(cmd == Cmd::kStrlen ? v.size : 1) + "\r\n";
    st.hits++;
    return RespFastResult::kAnswer;
  }
  int64_t from = 0, to = 0;
  if (cmd == Cmd::kGet) {
    // An empty value and a value over resp.maxGetBytes (an error naming GETRANGE): JavaScript.
    if (v.size == 0 || v.size > fp.max_get_bytes) {
      st.other++;
      return RespFastResult::kNo;
    }
    to = static_cast<int64_t>(v.size) - 1;
  } else if (!RedisRange(static_cast<int64_t>(v.size), start, end, from, to)) {
    out.head = "$0\r\n";  // Redis's empty string: the range is empty, inverted or past the end
    out.bulk = true;
    st.hits++;
    return RespFastResult::kAnswer;
  } else if (static_cast<uint64_t>(to - from + 1) > fp.max_get_bytes) {
    st.other++;
    return RespFastResult::kNo;
  }
  uint64_t r0 = static_cast<uint64_t>(from), r1 = static_cast<uint64_t>(to);
  uint64_t first = r0 / v.chunk_size, last = r1 / v.chunk_size;
  if (last - first + 1 > kMaxFastChunks) {
    st.other++;
    return RespFastResult::kNo;
  }
  store::RangeRequest rq;
  rq.object = v.object;
  rq.size = v.size;
  rq.chunk_size = v.chunk_size;
  rq.start = r0;
  rq.end = r1;
  store::RangeView view;
  store::RangeStatus got = store::ReadRange(*fp.store, disk, rq, &view, token);
  if (got == store::RangeStatus::kMiss || got == store::RangeStatus::kBusy) {
    st.misses++;
    return RespFastResult::kNo;
  }
  uint64_t length = r1 - r0 + 1;
  out.head = "$" + std::to_string(length) + "\r\n";
  out.bulk = true;
  out.body_bytes = length;
  if (got == store::RangeStatus::kPending) return RespFastResult::kPending;
  out.pieces = std::move(view.pieces);
  NoteRespHit(fp, out);
  return RespFastResult::kAnswer;
}

void NoteRespHit(RespFastPath& fp, const RespAnswer& a) {
  fp.stats.hits++;
  fp.stats.body_bytes += a.body_bytes;
  uint64_t disk = 0;
  for (const store::Piece& p : a.pieces) disk += p.from_disk ? p.len : 0;
  if (disk > 0) fp.stats.nvme_hits++;
  fp.stats.nvme_body_bytes += disk;
}

bool TryRespFast(RespFastPath& fp, const std::vector<std::string>& args, const RespGrant* grant, RespAnswer& out) {
  return StartRespFast(fp, args, grant, out, nullptr, 0) == RespFastResult::kAnswer;
}

}  // namespace weightcache::resp
