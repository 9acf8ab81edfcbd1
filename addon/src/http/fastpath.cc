#include "http/fastpath.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "http/doors/read_plan.h"
#include "http/doors/routes.h"
#include "http/fast_fields.h"
#include "http/rfc9110.h"
#include "store/range.h"

namespace weightcache::http {
namespace {

constexpr std::string_view kPrefix = "/v1/objects/";

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
  // The front doors' reads (doors/routes.h): the same plan, DRAM or (this reader) NVMe.
  if (fp.doors && h.path.substr(0, kPrefix.size()) != kPrefix) {
    return doors::TryDoorFastPath(fp, *fp.doors, h, date, out, disk, token);
  }
  bool head_only = h.method == "HEAD";
  if ((h.method != "GET" && !head_only) || h.form != TargetForm::kOrigin || h.version_minor != 1 ||
      h.framing != Framing::kNone || h.expect_continue) {
    st.other++;
    return FastResult::kNo;
  }
  std::string_view container, name;
  ReadFields f;
  bool pinned = false;
  std::string_view pin;
  if (!NameOf(h.path, container, name) || !SortReadFields(h, f, false) || !PlainHost(f.host->value) || !VersionOf(h, pinned, pin)) {
    st.other++;
    return FastResult::kNo;
  }
  std::shared_ptr<const store::VersionBinding> b = fp.bindings->Lookup(name, store::MonotonicNs());
  if (!b) {
    st.no_binding++;
    // JavaScript resolves the name (which publishes its binding) for a client allowed to read it.
    if (!fp.fill_misses || (fp.tokens->enabled() &&
                            !fp.tokens->Allows(f.authorization ? auth::BearerToken(f.authorization->value)
                                                               : std::string_view(),
                                               container))) {
      return FastResult::kNo;
    }
    out.fill = FillAsk{std::string(name), std::string(pin), std::string(), -1, -1};
    out.close = !h.keep_alive;
    return FastResult::kFill;
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
  // The read decision every fast-path door shares (doors/read_plan.h): preconditions, the one
  // range, and the chunks from DRAM or (this thread's reader) NVMe.
  doors::ReadAsk ask;
  ask.if_match = f.if_match;
  ask.if_none_match = f.if_none_match;
  ask.if_range = f.if_range;
  ask.range = f.range;
  ask.head_only = head_only;
  ask.max_ranges = fp.max_ranges;
  ask.max_chunks = kMaxFastPathChunks;
  ask.disk = disk;
  ask.token = token;
  doors::ReadPlan plan;
  doors::Plan p = doors::PlanRead(*fp.store, v, ask, plan);
  if (p == doors::Plan::kDecline) {
    st.other++;
    return FastResult::kNo;
  }
  if (p == doors::Plan::kMiss) {
    st.misses++;
    uint64_t chunks = plan.last_chunk - plan.first_chunk + 1;
    // A HEAD fetches nothing on the JavaScript door (its source is where the first chunk is now,
    // "origin"): filling a chunk for it would be an origin read the client never asked for.
    if (!fp.fill_misses || head_only || chunks > kMaxFillChunks ||
        chunks * v.chunk_size > fp.store->options().max_bytes / kFillDramShare) {
      return FastResult::kNo;
    }
    out.fill = FillAsk{std::string(name), std::string(pin), v.etag, static_cast<int64_t>(plan.first_chunk),
                       static_cast<int64_t>(plan.last_chunk)};
    out.close = !h.keep_alive;
    return FastResult::kFill;
  }
  bool close = !h.keep_alive;
  out.close = close;
  out.etag = v.etag;
  if (p == doors::Plan::kNotModified) {
    out.head = "HTTP/1.1 304 Not Modified\r\n";
    AppendBase(out.head, v);
    AppendTail(out.head, date, fp, close);
    st.hits++;
    st.not_modified++;
    return FastResult::kAnswer;
  }
  // The first chunk's tier is the answer's source, as JavaScript reports it;
  // a body that is exactly one whole chunk carries its CRC32C (objects.ts).
  const ByteRange& r = plan.range;
  uint64_t length = plan.length;
  out.head = plan.partial ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n";
  AppendBase(out.head, v);
  Append(out.head, "Content-Type: ");
  Append(out.head, v.content_type);
  Append(out.head, "\r\nContent-Length: ");
  Append(out.head, std::to_string(length));
  Append(out.head, plan.view.first_from_disk ? "\r\nX-Cache-Source: nvme\r\n" : "\r\nX-Cache-Source: dram\r\n");
  if (plan.partial) {
    Append(out.head, "Content-Range: bytes " + std::to_string(r.start) + "-" + std::to_string(r.end) + "/" +
                         std::to_string(v.size) + "\r\n");
  }
  if (!head_only && plan.view.whole_chunk) {
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", plan.view.whole_crc);
    Append(out.head, "X-Chunk-Crc32c: ");
    Append(out.head, crc);
    Append(out.head, "\r\n");
  }
  AppendTail(out.head, date, fp, close);
  out.body_bytes = head_only ? 0 : length;
  out.head_only = head_only;
  if (p == doors::Plan::kPending) return FastResult::kPending;
  if (!head_only) out.pieces = std::move(plan.view.pieces);
  NoteFastHit(fp, out);
  return FastResult::kAnswer;
}

void NoteFastHit(FastPath& fp, const FastAnswer& a) {
  FastPathStats& st = fp.stats;
  st.hits++;
  bool first_from_disk = !a.head_only && !a.pieces.empty() && a.pieces[0].from_disk;
  if (a.door_hits) {
    (*a.door_hits)++;
    if (!a.head_only) (*a.door_body_hits)++;
    if (first_from_disk) (*a.door_nvme_body_hits)++;
  } else {
    if (!a.head_only) st.body_hits++;
    if (first_from_disk) st.nvme_hits++;
  }
  uint64_t disk = 0;
  for (const store::Piece& p : a.pieces) disk += p.from_disk ? p.len : 0;
  st.nvme_body_bytes += disk;
  st.body_bytes += a.body_bytes;
}

int FillSourceOf(std::string_view s) {
  if (s == "origin") return kFillOrigin;
  if (s == "peer") return kFillPeer;
  if (s == "nvme") return kFillNvme;
  return -1;
}

void NoteFillSource(FastPath& fp, FastAnswer& a) {
  if (a.fill_source < 0 || a.fill_source > kFillNvme || a.head_only || a.pieces.empty() || a.pieces[0].from_disk) {
    return;  // no fill fetched the first chunk, or the answer reports NVMe already
  }
  static constexpr std::string_view kDram = "\r\nX-Cache-Source: dram\r\n";
  static constexpr const char* kNames[] = {"origin", "peer", "nvme"};
  size_t at = a.head.find(kDram);
  if (at == std::string::npos) return;
  a.head.replace(at + 18, 4, kNames[a.fill_source]);
  a.source_name = kNames[a.fill_source];
  uint64_t disk = 0;
  for (const store::Piece& p : a.pieces) disk += p.from_disk ? p.len : 0;
  fp.stats.fill_source_hits[a.fill_source]++;
  fp.stats.fill_source_bytes[a.fill_source] += a.body_bytes - disk;
}

bool TryFastPath(FastPath& fp, const RequestHead& h, std::string_view date, FastAnswer& out) {
  return StartFastPath(fp, h, date, out, nullptr, 0) == FastResult::kAnswer;
}

}  // namespace weightcache::http
