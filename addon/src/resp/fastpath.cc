#include "resp/fastpath.h"

#include <algorithm>

#include "store/range.h"

namespace weightcache::resp {
namespace {

enum class Cmd { kNone, kGet, kGetRange, kStrlen, kExists, kMget };

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
  if (NameIs(n, "mget")) return Cmd::kMget;
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

namespace {

// Why a command went to JavaScript (each a counter of RespFastStats), or that it is answered.
enum class Why { kAnswered, kPending, kOther, kUnauthorised, kNoBinding, kMiss };

// The binding of a key the fast path may answer for: an unpinned 'container/key' the grant
// allows, with a valid binding whose size JavaScript numbers hold exactly.
Why BindingOf(RespFastPath& fp, const std::string& key, const RespGrant* grant,
              std::shared_ptr<const store::VersionBinding>& out) {
  // A pinned key ('{etag}container/key') is checked against the version by JavaScript (src/read/pinned.ts).
  size_t slash = key.find('/');
  if (key.empty() || key[0] == '{' || slash == std::string::npos || slash == 0) return Why::kOther;
  if (grant == nullptr || !grant->Allows(std::string_view(key).substr(0, slash))) return Why::kUnauthorised;
  out = fp.bindings->Lookup(key, store::MonotonicNs());
  if (!out) return Why::kNoBinding;
  if (out->size > static_cast<uint64_t>(kMaxExactIndex) || out->chunk_size == 0) return Why::kOther;
  return Why::kAnswered;
}

// Bytes [r0, r1] of the bound object as one bulk reply: from DRAM at once, or NVMe reads started
// by `disk` (kPending: the pieces come to its callback with `token`).
Why Bulk(RespFastPath& fp, const store::VersionBinding& v, uint64_t r0, uint64_t r1, RespAnswer& out,
         store::DiskReader* disk, uint64_t token) {
  uint64_t first = r0 / v.chunk_size, last = r1 / v.chunk_size;
  if (last - first + 1 > kMaxFastChunks) return Why::kOther;
  store::RangeRequest rq;
  rq.object = v.object;
  rq.size = v.size;
  rq.chunk_size = v.chunk_size;
  rq.start = r0;
  rq.end = r1;
  store::RangeView view;
  store::RangeStatus got = store::ReadRange(*fp.store, disk, rq, &view, token);
  if (got == store::RangeStatus::kMiss || got == store::RangeStatus::kBusy) return Why::kMiss;
  uint64_t length = r1 - r0 + 1;
  out.head = "$" + std::to_string(length) + "\r\n";
  out.bulk = true;
  out.body_bytes = length;
  if (got == store::RangeStatus::kPending) return Why::kPending;
  out.pieces = std::move(view.pieces);
  return Why::kAnswered;
}

Why Answer(RespFastPath& fp, Cmd cmd, const std::vector<std::string>& args, const RespGrant* grant,
           RespAnswer& out, store::DiskReader* disk, uint64_t token) {
  if (args.size() < 2) return Why::kOther;  // arity errors: JavaScript's
  if (cmd == Cmd::kMget || (cmd == Cmd::kExists && args.size() > 2)) {
    // Every key a hit, or the whole command is JavaScript's (a missing key is nil there, an
    // existing one counted, and the reply bound is decided over all keys). MGET's values are
    // taken from DRAM only: one reply never waits on several keys' disk reads.
    size_t keys = args.size() - 1;
    if (keys > kMaxFastKeys) return Why::kOther;
    uint64_t total = 0, chunks = 0;
    std::vector<RespAnswer> values(cmd == Cmd::kMget ? keys : 0);
    for (size_t i = 0; i < keys; i++) {
      std::shared_ptr<const store::VersionBinding> b;
      Why why = BindingOf(fp, args[i + 1], grant, b);
      if (why != Why::kAnswered) return why;
      if (cmd == Cmd::kExists) continue;
      // An empty value, and a reply over resp.maxGetBytes (JavaScript's TOO_LARGE error): JavaScript.
      total += b->size;
      if (b->size == 0 || total > fp.max_get_bytes) return Why::kOther;
      // Whole values: the chunks referenced hold about `total` bytes, bounded above.
      chunks += (b->size - 1) / b->chunk_size + 1;
      if (chunks > kMaxFastKeys) return Why::kOther;
      why = Bulk(fp, *b, 0, b->size - 1, values[i], nullptr, 0);
      if (why != Why::kAnswered) return why;
    }
    if (cmd == Cmd::kExists) {
      out.head = ":" + std::to_string(keys) + "\r\n";
      return Why::kAnswered;
    }
    out.head = "*" + std::to_string(keys) + "\r\n";
    out.body_bytes = total;
    out.elements = std::move(values);
    return Why::kAnswered;
  }
  size_t arity = cmd == Cmd::kGetRange ? 4 : 2;
  if (args.size() != arity) return Why::kOther;
  int64_t start = 0, end = 0;
  if (cmd == Cmd::kGetRange &&
      (!ParseRespInteger(args[2], start) || !ParseRespInteger(args[3], end) || start > kMaxExactIndex ||
       start < -kMaxExactIndex || end > kMaxExactIndex || end < -kMaxExactIndex)) {
    return Why::kOther;
  }
  std::shared_ptr<const store::VersionBinding> b;
  Why why = BindingOf(fp, args[1], grant, b);
  if (why != Why::kAnswered) return why;
  const store::VersionBinding& v = *b;
  if (cmd == Cmd::kStrlen || cmd == Cmd::kExists) {
    out.head = ":" + std::to_string(cmd == Cmd::kStrlen ? v.size : 1) + "\r\n";
    return Why::kAnswered;
  }
  int64_t from = 0, to = 0;
  if (cmd == Cmd::kGet) {
    // An empty value and a value over resp.maxGetBytes (an error naming GETRANGE): JavaScript.
    if (v.size == 0 || v.size > fp.max_get_bytes) return Why::kOther;
    to = static_cast<int64_t>(v.size) - 1;
  } else if (!RedisRange(static_cast<int64_t>(v.size), start, end, from, to)) {
    out.head = "$0\r\n";  // Redis's empty string: the range is empty, inverted or past the end
    out.bulk = true;
    return Why::kAnswered;
  } else if (static_cast<uint64_t>(to - from + 1) > fp.max_get_bytes) {
    return Why::kOther;
  }
  return Bulk(fp, v, static_cast<uint64_t>(from), static_cast<uint64_t>(to), out, disk, token);
}

}  // namespace

RespFastResult StartRespFast(RespFastPath& fp, const std::vector<std::string>& args, const RespGrant* grant,
                             RespAnswer& out, store::DiskReader* disk, uint64_t token) {
  RespFastStats& st = fp.stats;
  Cmd cmd = CommandOf(args);
  RespAnswer a;
  Why why = cmd == Cmd::kNone ? Why::kOther : Answer(fp, cmd, args, grant, a, disk, token);
  switch (why) {
    case Why::kAnswered:
      out = std::move(a);
      NoteRespHit(fp, out);
      return RespFastResult::kAnswer;
    case Why::kPending:
      out = std::move(a);  // the head; counted as a hit once its bytes are there (NoteRespHit)
      return RespFastResult::kPending;
    case Why::kUnauthorised:
      st.unauthorised++;
      break;
    case Why::kNoBinding:
      st.no_binding++;
      break;
    case Why::kMiss:
      st.misses++;
      break;
    case Why::kOther:
      st.other++;
      break;
  }
  return RespFastResult::kNo;  // `a` and every reference it took are dropped here
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
