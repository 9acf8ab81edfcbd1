#include "http/doors/routes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <vector>

#include "http/doors/azure_auth.h"
#include "http/doors/read_plan.h"
#include "http/doors/sigv4.h"
#include "http/fast_fields.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {
namespace {

using auth::GrantAllows;

// A front door's read: the objects path's fields, plus the extension fields its clients send.
bool ReadDoorFields(const RequestHead& h, ReadFields& f) {
  return SortReadFields(h, f, true) && PlainHost(f.host->value);
}

// A front door's object read, planned as every fast-path read is (read_plan.h): one range at most
// (the Hub and S3 answer one), from DRAM or, with this thread's disk reader, NVMe (kPending).
// kDecline and kMiss are counted: JavaScript answers.
Plan PlanDoorRead(FastPath& fp, const RequestHead& h, const ReadFields& f, const store::VersionBinding& b,
                  store::DiskReader* disk, uint64_t token, ReadPlan& plan) {
  ReadAsk ask;
  ask.if_match = f.if_match;  // null for the Hub, which leaves If-Match to JavaScript
  ask.if_none_match = f.if_none_match;
  ask.if_range = f.if_range;
  ask.range = f.range;
  ask.head_only = h.method == "HEAD";
  ask.max_ranges = 1;
  ask.max_chunks = kMaxFastPathChunks;
  ask.disk = disk;
  ask.token = token;
  Plan p = PlanRead(*fp.store, b, ask, plan);
  if (p == Plan::kDecline) fp.stats.other++;
  if (p == Plan::kMiss) fp.stats.misses++;
  return p;
}

void Line(std::string& s, std::string_view name, std::string_view value) {
  s.append(name).append(": ").append(value).append("\r\n");
}

// A 200/206 whose head is written: the body's pieces now (kAnswer, counted) or from the disk
// reader's callback (kPending: the caller counts it once they are there). The first chunk's
// tier is the answer's X-Cache-Source, as JavaScript reports it.
FastResult Content(FastPath& fp, Plan p, ReadPlan& plan, bool head_only, FastAnswer& out) {
  out.body_bytes = head_only ? 0 : plan.length;
  out.head_only = head_only;
  if (p == Plan::kPending) return FastResult::kPending;
  if (!head_only) out.pieces = std::move(plan.view.pieces);
  NoteFastHit(fp, out);
  return FastResult::kAnswer;
}

const char* SourceOf(const ReadPlan& plan) { return plan.view.first_from_disk ? "nvme" : "dram"; }

// A door's counters for the answers the fast path makes for it; `signed_hits` only for a read whose
// signature was verified here (null otherwise).
struct DoorCounters {
  std::atomic<uint64_t>* hits;
  std::atomic<uint64_t>* body_hits;
  std::atomic<uint64_t>* nvme_body_hits;
  std::atomic<uint64_t>* signed_hits = nullptr;
};

// What every door sends once its read is planned (not declined, not a miss): a 304 of the door's
// base headers, or the 200/206 head — base, Content-Type, Content-Length, X-Cache-Source,
// Content-Range, then the door's `extra` — and the body. `base(head)` and `extra(head, range)` write
// the door's own fields, in the order its JavaScript door sends them.
template <class Base, class Extra>
FastResult AnswerPlanned(FastPath& fp, Plan p, ReadPlan& plan, const RequestHead& h, std::string_view date,
                         const store::VersionBinding& b, std::string_view content_type, const DoorCounters& c,
                         Base base, Extra extra, FastAnswer& out) {
  FastPathStats& st = fp.stats;
  bool close = !h.keep_alive;
  out.close = close;
  if (p == Plan::kNotModified) {
    out.head = "HTTP/1.1 304 Not Modified\r\n";
    base(out.head);
    AppendNodeTail(out.head, date, fp.keep_alive_timeout_s, close);
    st.hits++;
    st.not_modified++;
    (*c.hits)++;
    if (c.signed_hits) (*c.signed_hits)++;
    return FastResult::kAnswer;
  }
  out.head = plan.partial ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n";
  base(out.head);
  Line(out.head, "Content-Type", content_type);
  Line(out.head, "Content-Length", std::to_string(plan.length));
  Line(out.head, "X-Cache-Source", SourceOf(plan));
  if (plan.partial) {
    Line(out.head, "Content-Range",
         "bytes " + std::to_string(plan.range.start) + "-" + std::to_string(plan.range.end) + "/" + std::to_string(b.size));
  }
  extra(out.head);
  AppendNodeTail(out.head, date, fp.keep_alive_timeout_s, close);
  out.door_hits = c.hits;
  out.door_body_hits = c.body_hits;
  out.door_nvme_body_hits = c.nvme_body_hits;
  FastResult r = Content(fp, p, plan, h.method == "HEAD", out);
  if (c.signed_hits && r != FastResult::kNo) (*c.signed_hits)++;
  return r;
}

// The binding in force for `container/key`, or null (counted: no binding).
std::shared_ptr<const store::VersionBinding> BindingOf(FastPath& fp, std::string_view container, std::string_view key,
                                                       int64_t now_ns) {
  std::string name;
  name.reserve(container.size() + 1 + key.size());
  name.append(container).append("/").append(key);
  std::shared_ptr<const store::VersionBinding> b = fp.bindings->Lookup(name, now_ns);
  if (!b) fp.stats.no_binding++;
  return b;
}

// hub/door.ts resolveFile's `base` headers, in its order.
void HubBase(std::string& s, const HubRevision& rev, const HubFile& file, const store::VersionBinding& v) {
  Line(s, "X-Repo-Commit", rev.sha);
  s.append("ETag: \"").append(v.etag).append("\"\r\nX-Linked-Etag: \"").append(file.blob_id).append("\"\r\n");
  Line(s, "X-Linked-Size", std::to_string(v.size));
  Line(s, "Last-Modified", v.last_modified);
  Line(s, "Accept-Ranges", "bytes");
}

FastResult TryHub(FastPath& fp, DoorRoutes& routes, const HubRoute& hub, std::string_view rest, const RequestHead& h,
                  std::string_view date, FastAnswer& out, store::DiskReader* disk, uint64_t token) {
  FastPathStats& st = fp.stats;
  HubTarget t;
  ReadFields f;
  // `main` (or any revision not a sha) is listed at the origin by JavaScript on every request.
  // If-Match would pin a second version beside the revision's: JavaScript's.
  if (h.has_query || !ParseHubTarget(rest, t) || !IsSha(t.revision) || !ReadDoorFields(h, f) || f.if_match) {
    st.other++;
    return FastResult::kNo;
  }
  if (fp.tokens->enabled() &&
      !fp.tokens->Allows(f.authorization ? auth::BearerToken(f.authorization->value) : std::string_view(), hub.container)) {
    st.unauthorised++;
    return FastResult::kNo;
  }
  int64_t now = store::MonotonicNs();
  std::shared_ptr<const HubRevision> rev = hub.revisions.Lookup(t.revision, now);
  if (!rev) {
    st.no_binding++;
    return FastResult::kNo;
  }
  // resolveRevision: the kept snapshot must be this repo's; fileAt: the file must be in it.
  if (rev->prefix.size() != t.repo.size() + 1 || rev->prefix.compare(0, t.repo.size(), t.repo) != 0) {
    st.other++;
    return FastResult::kNo;
  }
  auto fit = rev->files.find(std::string(t.file));
  if (fit == rev->files.end()) {
    st.other++;
    return FastResult::kNo;
  }
  const HubFile& file = fit->second;
  std::string name = hub.container + "/" + rev->prefix + std::string(t.file);
  std::shared_ptr<const store::VersionBinding> b = fp.bindings->Lookup(name, now);
  if (!b) {
    st.no_binding++;
    return FastResult::kNo;
  }
  // The read is pinned to the revision's version: another one is JavaScript's (RevisionNotFound).
  if (b->etag != file.etag || b->size != file.size) {
    st.other++;
    return FastResult::kNo;
  }
  ReadPlan plan;
  Plan p = PlanDoorRead(fp, h, f, *b, disk, token, plan);
  if (p == Plan::kDecline || p == Plan::kMiss) return FastResult::kNo;
  DoorCounters c{&routes.stats.hub_hits, &routes.stats.hub_body_hits, &routes.stats.hub_nvme_body_hits};
  return AnswerPlanned(
      fp, p, plan, h, date, *b, file.content_type, c, [&](std::string& head) { HubBase(head, *rev, file, *b); },
      [](std::string&) {}, out);
}

// s3/door.ts getObject's headers: x-amz-request-id (set first), then `base`, in its order.
void S3Base(std::string& s, const store::VersionBinding& v) {
  Line(s, "x-amz-request-id", S3RequestId());
  s.append("ETag: \"").append(v.etag).append("\"\r\n");
  Line(s, "Last-Modified", v.last_modified);
  Line(s, "Accept-Ranges", "bytes");
}

// Whether a verified request's query is one GetObject reads as an unsigned one: boto3's
// `x-id=GetObject` and the presigned form's own parameters, nothing else (response-*, versionId,
// partNumber and the subresources change or refuse the answer: JavaScript's).
bool PlainSignedQuery(const std::vector<QueryPair>& q) {
  static constexpr std::string_view kPresigned[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                                    "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"};
  for (const QueryPair& p : q) {
    if (p.key == "x-id" && p.value == "GetObject") continue;
    if (std::find(std::begin(kPresigned), std::end(kPresigned), p.key) == std::end(kPresigned)) return false;
  }
  return true;
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

FastResult TryS3(FastPath& fp, DoorRoutes& routes, const S3Route& s3, std::string_view rest, const RequestHead& h,
                 std::string_view date, FastAnswer& out, store::DiskReader* disk, uint64_t token) {
  FastPathStats& st = fp.stats;
  ReadFields f;
  S3Target t;
  std::string host;
  bool signed_read = fp.tokens->enabled();
  // Unsigned (auth off): no query but boto3's `x-id=GetObject` (response-* overrides, versionId,
  // partNumber: JavaScript). Signed: the query is checked once it has been verified, below.
  bool plain_query = signed_read || !h.has_query || h.query.empty() || h.query == "x-id=GetObject";
  if (!plain_query || !ReadDoorFields(h, f) || !ParseS3Target(s3, rest, f.host->value, t, host)) {
    st.other++;
    return FastResult::kNo;
  }
  if (signed_read) {
    // verify.ts authenticate, then door.ts checkBucket: only a verified signer whose token may read
    // the bucket is answered here; every failure is JavaScript's to answer with its S3 error.
    SigV4Check sig = VerifySigV4(*fp.tokens, h, s3.clock_ms ? s3.clock_ms() : WallClockMs(), s3.max_clock_skew_ms);
    if (sig.outcome != SigV4Outcome::kVerified || !GrantAllows(*sig.grant, t.bucket)) {
      st.unauthorised++;
      routes.stats.s3_signed_declined++;
      return FastResult::kNo;
    }
    if (!PlainSignedQuery(sig.query)) {
      st.other++;
      return FastResult::kNo;
    }
  }
  std::shared_ptr<const store::VersionBinding> b = BindingOf(fp, t.bucket, t.key, store::MonotonicNs());
  if (!b) return FastResult::kNo;
  ReadPlan plan;
  Plan p = PlanDoorRead(fp, h, f, *b, disk, token, plan);
  if (p == Plan::kDecline || p == Plan::kMiss) return FastResult::kNo;
  DoorCounters c{&routes.stats.s3_hits, &routes.stats.s3_body_hits, &routes.stats.s3_nvme_body_hits,
                 signed_read ? &routes.stats.s3_signed_hits : nullptr};
  return AnswerPlanned(
      fp, p, plan, h, date, *b, b->content_type, c, [&](std::string& head) { S3Base(head, *b); },
      [](std::string&) {}, out);
}

// azure-blob/door.ts: x-ms-request-id and x-ms-version (set first), then getBlob's `base`, in its order.
void AzureBase(std::string& s, const store::VersionBinding& v, const AzureFields& az) {
  Line(s, "x-ms-request-id", AzureRequestId());
  Line(s, "x-ms-version", az.ms_version ? az.ms_version->value : kAzureApiVersion);
  s.append("ETag: \"").append(v.etag).append("\"\r\n");
  Line(s, "Last-Modified", v.last_modified);
  Line(s, "Accept-Ranges", "bytes");
  Line(s, "x-ms-blob-type", "BlockBlob");
  Line(s, "x-ms-creation-time", v.last_modified);
  s.append("x-ms-lease-status: unlocked\r\nx-ms-lease-state: available\r\nx-ms-server-encrypted: true\r\n");
}

// shared-key.ts authenticate, then door.ts's scope check, for a node with tokens: SharedKey or a SAS
// verified here, or a bearer token (no query), whose grant may read the container. No credentials
// and every failure: JavaScript's Azure error.
bool AuthorizedAzure(FastPath& fp, const AzureRoute& azure, const RequestHead& h, const ReadFields& f,
                     const AzureTarget& t) {
  int64_t now = azure.clock_ms ? azure.clock_ms() : WallClockMs();
  std::shared_ptr<const auth::TokenGrant> grant;
  if (f.authorization && f.authorization->value.substr(0, 10) == "SharedKey ") {
    grant = VerifyAzureSharedKey(*fp.tokens, h, f.authorization->value, t.account, now, azure.max_clock_skew_ms);
  } else if (f.authorization) {
    std::string_view token = auth::BearerToken(f.authorization->value);
    return !token.empty() && (!h.has_query || h.query.empty()) && fp.tokens->Allows(token, t.container);
  } else {
    std::vector<QueryPair> q;
    if (!h.has_query || !DecodeQuery(h.query, q)) return false;
    grant = VerifyAzureSas(*fp.tokens, q, AzureBlobName{t.account, t.container, t.blob}, now, azure.max_clock_skew_ms);
  }
  return grant && GrantAllows(*grant, t.container);
}

FastResult TryAzure(FastPath& fp, DoorRoutes& routes, const AzureRoute& azure, std::string_view rest,
                    const RequestHead& h, std::string_view date, FastAnswer& out, store::DiskReader* disk,
                    uint64_t token) {
  FastPathStats& st = fp.stats;
  ReadFields f;
  AzureFields az;
  AzureTarget t;
  bool signed_read = fp.tokens->enabled();
  std::string_view seconds;
  // Without auth any query but `timeout` (another operation or JavaScript's error) is JavaScript's,
  // with auth all but a SAS's or SharedKey's (below); so is the range's own MD5 (computed there).
  bool plain_query = !h.has_query || h.query.empty() || TimeoutQuery(h.query, seconds);
  if ((!signed_read && !plain_query) || !ReadDoorFields(h, f) || !ReadAzureFields(h, az) ||
      az.range_md5 || !ParseAzureTarget(azure, rest, t)) {
    st.other++;
    return FastResult::kNo;
  }
  if (signed_read && !AuthorizedAzure(fp, azure, h, f, t)) {
    st.unauthorised++;
    routes.stats.azure_signed_declined++;
    return FastResult::kNo;
  }
  std::shared_ptr<const store::VersionBinding> b = BindingOf(fp, t.container, t.blob, store::MonotonicNs());
  if (!b) return FastResult::kNo;
  // x-ms-range wins over Range when both are sent, as in the service.
  const Header* range = az.ms_range ? az.ms_range : f.range;
  f.range = range;
  ReadPlan plan;
  Plan p = PlanDoorRead(fp, h, f, *b, disk, token, plan);
  if (p == Plan::kDecline || p == Plan::kMiss) return FastResult::kNo;
  bool head_only = h.method == "HEAD";
  DoorCounters c{&routes.stats.azure_hits, &routes.stats.azure_body_hits, &routes.stats.azure_nvme_body_hits,
                 signed_read ? &routes.stats.azure_signed_hits : nullptr};
  return AnswerPlanned(
      fp, p, plan, h, date, *b, b->content_type, c, [&](std::string& head) { AzureBase(head, *b, az); },
      [&](std::string& head) {
        if (plan.partial || range) Line(head, "x-ms-blob-content-length", std::to_string(b->size));
        // The blob's own MD5 where the service puts it: beside a ranged GET's bytes, else Content-MD5.
        if (!b->content_md5.empty()) {
          Line(head, !head_only && range ? "x-ms-blob-content-md5" : "Content-MD5", b->content_md5);
        }
      },
      out);
}

// `path` is under `prefix` ("/hf"): the rest after "{prefix}/".
bool Under(std::string_view path, std::string_view prefix, std::string_view& rest) {
  if (prefix.empty() || path.size() <= prefix.size() || path.substr(0, prefix.size()) != prefix ||
      path[prefix.size()] != '/') {
    return false;
  }
  rest = path.substr(prefix.size() + 1);
  return true;
}

}  // namespace

FastResult TryDoorFastPath(FastPath& fp, DoorRoutes& routes, const RequestHead& h, std::string_view date,
                           FastAnswer& out, store::DiskReader* disk, uint64_t token) {
  FastPathStats& st = fp.stats;
  if ((h.method != "GET" && h.method != "HEAD") || h.form != TargetForm::kOrigin || h.version_minor != 1 ||
      h.framing != Framing::kNone || h.expect_continue) {
    st.other++;
    return FastResult::kNo;
  }
  std::string_view rest;
  if (routes.hub && Under(h.path, routes.hub->path, rest)) {
    return TryHub(fp, routes, *routes.hub, rest, h, date, out, disk, token);
  }
  if (routes.s3 && h.path.size() > routes.s3->path.size() + 1 && Under(h.path, routes.s3->path, rest)) {
    return TryS3(fp, routes, *routes.s3, h.path.substr(routes.s3->path.size()), h, date, out, disk, token);
  }
  if (routes.azure && Under(h.path, routes.azure->path, rest)) {
    return TryAzure(fp, routes, *routes.azure, rest, h, date, out, disk, token);
  }
  st.other++;
  return FastResult::kNo;
}

}  // namespace weightcache::http::doors
