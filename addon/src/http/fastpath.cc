#include "http/fastpath.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "http/doors/routes.h"
#include "http/fast_fields.h"
#include "http/rfc9110.h"
#include "store/range.h"

namespace weightcache::http {
namespace {

constexpr std::string_view kPrefix = "/v1/objects/";

struct Fields {
  const Header* authorization = nullptr;
  const Header* range = nullptr;
  const Header* if_match = nullptr;
  const Header* if_none_match = nullptr;
  const Header* if_range = nullptr;
  const Header* host = nullptr;
};

// Sorts the request's fields into what the fast path reads; false for any
// field it does not know to be without effect on the answer, or a repeated one.
bool ReadFields(const RequestHead& h, Fields& f) {
  for (const Header& x : h.headers) {
    const Header** slot = nullptr;
    if (IEquals(x.name, "host")) slot = &f.host;
    else if (IEquals(x.name, "authorization")) slot = &f.authorization;
    else if (IEquals(x.name, "range")) slot = &f.range;
    else if (IEquals(x.name, "if-match")) slot = &f.if_match;
    else if (IEquals(x.name, "if-none-match")) slot = &f.if_none_match;
    else if (IEquals(x.name, "if-range")) slot = &f.if_range;
    else if (IEquals(x.name, "connection")) {
      if (!IEquals(x.value, "keep-alive") && !IEquals(x.value, "close")) return false;
      continue;
    } else if (IEquals(x.name, "user-agent") || IEquals(x.name, "accept") || IEquals(x.name, "accept-encoding")) {
      continue;
    } else {
      return false;
    }
    if (*slot != nullptr || !PlainValue(x.value)) return false;
    *slot = &x;
  }
  return f.host != nullptr;
}

// /v1/objects/{container}/{key…} with no segment needing decoding: the name "container/key".
bool NameOf(std::string_view path, std::string_view& container, std::string_view& name) {
  if (path.substr(0, kPrefix.size()) != kPrefix) return false;
  name = path.substr(kPrefix.size());
  size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  container = name.substr(0, slash);
  size_t seg = 0;
  for (size_t i = 0; i <= name.size(); i++) {
    if (i == name.size() || name[i] == '/') {
      std::string_view s = name.substr(seg, i - seg);
      if (s.empty() || s == "." || s == "..") return false;
      seg = i + 1;
      continue;
    }
    if (!PlainPchar(name[i])) return false;
  }
  return true;
}

// The query: none, or exactly "version=V" (V needing no decoding; objects.ts strips one pair of quotes).
bool VersionOf(const RequestHead& h, bool& has, std::string_view& version) {
  has = false;
  if (!h.has_query || h.query.empty()) return true;
  constexpr std::string_view kKey = "version=";
  if (h.query.substr(0, kKey.size()) != kKey) return false;
  std::string_view v = h.query.substr(kKey.size());
  for (char c : v) {
    if (!(PlainPchar(c) || c == '"') || c == '&' || c == '+' || c == '=') return false;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  has = true;
  version = v;
  return true;
}

void Append(std::string& s, std::string_view a) { s.append(a.data(), a.size()); }

// objects.ts's `base` headers, in its order.
void AppendBase(std::string& s, const store::VersionBinding& b) {
  Append(s, "ETag: \"");
  Append(s, b.etag);
  Append(s, "\"\r\nLast-Modified: ");
  Append(s, b.last_modified);
  Append(s, "\r\nAccept-Ranges: bytes\r\nCache-Control: no-cache\r\n");
}

// What node's ServerResponse adds after them: Date, then Connection (and Keep-Alive).
void AppendTail(std::string& s, std::string_view date, const FastPath& fp, bool close) {
  AppendNodeTail(s, date, fp.keep_alive_timeout_s, close);
}

}  // namespace

FastResult StartFastPath(FastPath& fp, const RequestHead& h, std::string_view date, FastAnswer& out,
                         store::DiskReader* disk, uint64_t token) {
  FastPathStats& st = fp.stats;
  // The front doors' reads (doors/routes.h) are answered from DRAM only: never pending.
  if (fp.doors && h.path.substr(0, kPrefix.size()) != kPrefix) {
    return doors::TryDoorFastPath(fp, *fp.doors, h, date, out) ? FastResult::kAnswer : FastResult::kNo;
  }
  bool head_only = h.method == "HEAD";
  if ((h.method != "GET" && !head_only) || h.form != TargetForm::kOrigin || h.version_minor != 1 ||
      h.framing != Framing::kNone || h.expect_continue) {
    st.other++;
    return FastResult::kNo;
  }
  std::string_view container, name;
  Fields f;
  bool pinned = false;
  std::string_view pin;
  if (!NameOf(h.path, container, name) || !ReadFields(h, f) || !PlainHost(f.host->value) || !VersionOf(h, pinned, pin)) {
    st.other++;
    return FastResult::kNo;
  }
  std::shared_ptr<const store::VersionBinding> b = fp.bindings->Lookup(name, store::MonotonicNs());
  if (!b) {
    st.no_binding++;
    return FastResult::kNo;
  }
  if (fp.tokens->enabled() &&
      !fp.tokens->Allows(f.authorization ? auth::BearerToken(f.authorization->value) : std::string_view(), container)) {
    st.unauthorised++;
    return FastResult::kNo;
  }
  const store::VersionBinding& v = *b;
  // resolvePinned: a pin (or a lone strong If-Match) naming another version is JavaScript's to revalidate.
  if (pinned && pin != v.etag) {
    st.other++;
    return FastResult::kNo;
  }
  if (f.if_match) {
    std::string_view im = Trim(f.if_match->value);
    if (im.size() >= 2 && im.front() == '"' && im.back() == '"' &&
        im.substr(1, im.size() - 2).find('"') == std::string_view::npos && im.substr(1, im.size() - 2) != v.etag) {
      st.other++;
      return FastResult::kNo;
    }
    if (!EtagListMatches(f.if_match->value, v.etag, false)) {  // 412: JavaScript's error answer
      st.other++;
      return FastResult::kNo;
    }
  }
  if (v.size == 0 || v.chunk_size == 0) {
    st.other++;
    return FastResult::kNo;
  }
  bool close = !h.keep_alive;
  out.close = close;
  if (f.if_none_match && EtagListMatches(f.if_none_match->value, v.etag, true)) {
    out.head = "HTTP/1.1 304 Not Modified\r\n";
    AppendBase(out.head, v);
    AppendTail(out.head, date, fp, close);
    st.hits++;
    st.not_modified++;
    return FastResult::kAnswer;
  }
  bool range_applies = true;
  if (f.if_range) {
    std::string_view ir = Trim(f.if_range->value);
    if (ir.substr(0, 1) != "\"" && ir.substr(0, 2) != "W/") {  // a date: JavaScript compares it
      st.other++;
      return FastResult::kNo;
    }
    range_applies = ir.size() >= 2 && ir.front() == '"' && ir.back() == '"' &&
                    ir.substr(1, ir.size() - 2).find('"') == std::string_view::npos && ir.substr(1, ir.size() - 2) == v.etag;
  }
  std::vector<ByteRange> ranges;
  RangeKind kind = f.range && range_applies ? ParseRange(f.range->value, v.size, fp.max_ranges, ranges) : RangeKind::kNone;
  if (kind == RangeKind::kUnsatisfiable || (kind == RangeKind::kRanges && ranges.size() != 1)) {
    st.other++;
    return FastResult::kNo;
  }
  ByteRange r = kind == RangeKind::kRanges ? ranges[0] : ByteRange{0, v.size - 1};
  uint64_t first = r.start / v.chunk_size, last = head_only ? first : r.end / v.chunk_size;
  if (last - first + 1 > kMaxFastPathChunks) {
    st.other++;
    return FastResult::kNo;
  }
  // HEAD needs only the first chunk present (the JavaScript door's rule); it sends no slices.
  store::RangeRequest rq;
  rq.object = v.object;
  rq.size = v.size;
  rq.chunk_size = v.chunk_size;
  rq.start = r.start;
  rq.end = head_only ? r.start : r.end;
  rq.locate_only = head_only;
  store::RangeView view;
  store::RangeStatus got = store::ReadRange(*fp.store, disk, rq, &view, token);
  if (got == store::RangeStatus::kMiss || got == store::RangeStatus::kBusy) {
    st.misses++;
    return FastResult::kNo;
  }
  // The first chunk's tier is the answer's source, as JavaScript reports it;
  // a body that is exactly one whole chunk carries its CRC32C (objects.ts).
  bool from_disk = view.first_from_disk, whole_chunk = view.whole_chunk;
  uint32_t whole_crc = view.whole_crc;
  uint64_t length = r.end - r.start + 1;
  bool partial = kind == RangeKind::kRanges;
  out.head = partial ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n";
  AppendBase(out.head, v);
  Append(out.head, "Content-Type: ");
  Append(out.head, v.content_type);
  Append(out.head, "\r\nContent-Length: ");
  Append(out.head, std::to_string(length));
  Append(out.head, from_disk ? "\r\nX-Cache-Source: nvme\r\n" : "\r\nX-Cache-Source: dram\r\n");
  if (partial) {
    Append(out.head, "Content-Range: bytes " + std::to_string(r.start) + "-" + std::to_string(r.end) + "/" +
                         std::to_string(v.size) + "\r\n");
  }
  // objects.ts: a body that is exactly one whole chunk carries its CRC32C.
  if (!head_only && whole_chunk) {
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", whole_crc);
    Append(out.head, "X-Chunk-Crc32c: ");
    Append(out.head, crc);
    Append(out.head, "\r\n");
  }
  AppendTail(out.head, date, fp, close);
  out.body_bytes = head_only ? 0 : length;
  out.head_only = head_only;
  if (got == store::RangeStatus::kPending) return FastResult::kPending;
  if (!head_only) out.pieces = std::move(view.pieces);
  NoteFastHit(fp, out);
  return FastResult::kAnswer;
}

void NoteFastHit(FastPath& fp, const FastAnswer& a) {
  FastPathStats& st = fp.stats;
  st.hits++;
  if (!a.head_only) st.body_hits++;
  if (!a.head_only && !a.pieces.empty() && a.pieces[0].from_disk) st.nvme_hits++;
  uint64_t disk = 0;
  for (const store::Piece& p : a.pieces) disk += p.from_disk ? p.len : 0;
  st.nvme_body_bytes += disk;
  st.body_bytes += a.body_bytes;
}

bool TryFastPath(FastPath& fp, const RequestHead& h, std::string_view date, FastAnswer& out) {
  return StartFastPath(fp, h, date, out, nullptr, 0) == FastResult::kAnswer;
}

}  // namespace weightcache::http
