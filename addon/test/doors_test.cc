// Unit tests of the front doors on the native fast path (addon/src/http/doors/):
// the S3 door's request mapping (path- and virtual-host style) and answers (signed
// ones verified through sigv4.h, each failure left to JavaScript),
// the Hub door's request mapping (`{repo}/resolve/{sha}/{file}` read as
// src/hub/door.ts reads it), the revision table's bounds and deadlines, and
// whole Hub requests answered from a real store through the objects fast
// path's hook (heads byte for byte as the JavaScript door writes them; what
// goes to JavaScript and why; chunk references released). Run by npm test
// (test/native/cpp.test.ts) plainly and under ASan+UBSan.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/sha256.h"
#include "http/doors/hub.h"
#include "http/doors/routes.h"
#include "http/doors/s3.h"
#include "http/fastpath.h"
#include "http/parser.h"
#include "store/bindings.h"
#include "store/store.h"
#include "check.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {


const std::string kSha = "5a5adbbfdd54b111c8f5a3fa74a0b7d7108d8634";
constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;

void TestHubTarget() {
  HubTarget t;
  const std::string path = "acme/llama/resolve/" + kSha + "/config.json";  // the target's views point into it
  CHECK(ParseHubTarget(path, t));
  CHECK(t.repo == "acme/llama" && t.revision == kSha && t.file == "config.json");
  CHECK(ParseHubTarget("gpt2/resolve/main/a/b/c.bin", t));
  CHECK(t.repo == "gpt2" && t.revision == "main" && t.file == "a/b/c.bin");
  // "resolve" as the third segment wins, as door.ts reads it.
  CHECK(ParseHubTarget("resolve/resolve/resolve/x/y", t));
  CHECK(t.repo == "resolve/resolve" && t.revision == "x" && t.file == "y");
  CHECK(!ParseHubTarget("acme/llama/resolve/main", t));  // no file
  CHECK(!ParseHubTarget("api/models/acme/llama", t));
  CHECK(!ParseHubTarget("acme/llama/blob/main/x", t));
  CHECK(!ParseHubTarget("acme/llama/resolve/main/a%20b", t));  // needs decoding: JavaScript
  CHECK(!ParseHubTarget("acme//llama/resolve/main/x", t));
  CHECK(!ParseHubTarget("acme/llama/resolve/main/../x", t));
  CHECK(!ParseHubTarget("acme/llama/resolve/main/x/", t));
  CHECK(!ParseHubTarget("", t));
  CHECK(!ParseHubTarget("a/b/c/resolve/main/x", t));  // a repo is "name" or "org/name"
  std::string many;
  for (int i = 0; i < 300; i++) many += "s/";
  CHECK(!ParseHubTarget("a/resolve/main/" + many + "x", t));
  CHECK(IsSha(kSha));
  CHECK(!IsSha("main"));
  CHECK(!IsSha("5A5ADBBFDD54B111C8F5A3FA74A0B7D7108D8634"));
  CHECK(!IsSha(kSha + "0"));
}

std::shared_ptr<HubRevision> Revision(const std::string& sha, const std::string& prefix, int files, int64_t deadline) {
  auto r = std::make_shared<HubRevision>();
  r->sha = sha;
  r->prefix = prefix;
  for (int i = 0; i < files; i++) r->files["f" + std::to_string(i)] = HubFile{"e", 1, "b", "application/octet-stream"};
  r->deadline_ns = deadline;
  return r;
}

void TestRevisionTable() {
  HubRevisions t(10);
  int64_t now = store::MonotonicNs();
  CHECK(t.Publish(Revision(kSha, "a/b/", 6, now + 1'000'000'000)));
  CHECK(!t.Publish(Revision(std::string(40, '1'), "a/c/", 5, now + 1'000'000'000)));  // 11 files > 10
  CHECK(t.Publish(Revision(std::string(40, '1'), "a/c/", 4, now + 1'000'000'000)));
  CHECK(t.Publish(Revision(kSha, "a/b/", 5, now + 1'000'000'000)));  // a replacement counts once
  CHECK(t.Lookup(kSha, now) != nullptr);
  CHECK(t.Lookup(kSha, now + 2'000'000'000) == nullptr);  // past its deadline
  CHECK(t.Remove(kSha) && !t.Remove(kSha));
  CHECK(t.Lookup(kSha, now) == nullptr);
  CHECK(t.size() == 1);
}

struct World {
  std::shared_ptr<FastPath> fp = std::make_shared<FastPath>();
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  store::ChunkId id;
  std::string token = std::string(32, 't');

  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    fp->store = store::Store::Create(so, &error);
    fp->bindings = std::make_shared<store::BindingTable>();
    fp->tokens = std::make_shared<auth::TokenTable>();
    fp->doors = std::make_shared<DoorRoutes>();
    fp->doors->hub = std::make_unique<HubRoute>("/hf", "models", 1000);
    fp->keep_alive_timeout_s = 5;
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<uint8_t>(i * 7);
    id.object.fill(9);
    Bind("v1");
    auto r = std::make_shared<HubRevision>();
    r->sha = kSha;
    r->prefix = "acme/llama/";
    r->files["model.safetensors"] = HubFile{"v1", kSize, "0123456789abcdef0123456789abcdef01234567", "application/octet-stream"};
    r->deadline_ns = INT64_MAX;
    fp->doors->hub->revisions.Publish(r);
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      fp->store->Insert(id, data.data() + i * kChunk, std::min<uint64_t>(kChunk, kSize - i * kChunk), 0, "");
    }
  }
  void Bind(const std::string& etag) {
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/acme/llama/model.safetensors";
    b->object = id.object;
    b->etag = etag;
    b->size = kSize;
    b->chunk_size = kChunk;
    b->last_modified = "Thu, 02 Jan 2025 03:04:05 GMT";
    b->content_type = "application/octet-stream";
    b->deadline_ns = INT64_MAX;
    fp->bindings->Set(b);
  }
};

// The request's answer on the fast path, or "" when it goes to JavaScript.
std::string Answer(World& w, const std::string& raw, std::string* body = nullptr) {
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return "unparsed";
  FastAnswer a;
  if (!TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a)) return "";
  if (body) {
    body->clear();
    for (auto& piece : a.pieces) body->append(reinterpret_cast<const char*>(piece.data), piece.len);
  }
  return a.head;
}

std::string Get(const std::string& target, const std::string& fields = "", const std::string& method = "GET") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + fields + "\r\n";
}

void TestHubAnswers() {
  World w;
  const std::string file = "/hf/acme/llama/resolve/" + kSha + "/model.safetensors";
  const std::string base = "X-Repo-Commit: " + kSha +
                           "\r\nETag: \"v1\"\r\nX-Linked-Etag: \"0123456789abcdef0123456789abcdef01234567\"\r\n"
                           "X-Linked-Size: " + std::to_string(kSize) +
                           "\r\nLast-Modified: Thu, 02 Jan 2025 03:04:05 GMT\r\nAccept-Ranges: bytes\r\n";
  const std::string tail = "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n";
  std::string body;
  CHECK(Answer(w, Get(file), &body) ==
        "HTTP/1.1 200 OK\r\n" + base + "Content-Type: application/octet-stream\r\nContent-Length: " + std::to_string(kSize) +
            "\r\nX-Cache-Source: dram\r\n" + tail);
  CHECK(body.size() == kSize && std::memcmp(body.data(), w.data.data(), kSize) == 0);
  CHECK(Answer(w, Get(file, "Range: bytes=4000-4199\r\n"), &body) ==
        "HTTP/1.1 206 Partial Content\r\n" + base +
            "Content-Type: application/octet-stream\r\nContent-Length: 200\r\nX-Cache-Source: dram\r\n"
            "Content-Range: bytes 4000-4199/" + std::to_string(kSize) + "\r\n" + tail);
  CHECK(body.size() == 200 && std::memcmp(body.data(), w.data.data() + 4000, 200) == 0);
  CHECK(Answer(w, Get(file, "If-None-Match: W/\"v1\"\r\n")) == "HTTP/1.1 304 Not Modified\r\n" + base + tail);
  CHECK(Answer(w, Get(file, "", "HEAD"), &body).rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && body.empty());
  // huggingface_hub's own fields change nothing.
  CHECK(!Answer(w, Get(file, "User-Agent: hf\r\nAccept-Encoding: identity\r\nX-Amzn-Trace-Id: 1\r\nX-HF-Download-Counter: 1\r\n")).empty());
  CHECK(Answer(w, Get(file, "Connection: close\r\n")).find("Connection: close\r\n\r\n") != std::string::npos);
  // Several ranges: the Hub answers one, so the whole file, as range.ts reads it with maxRanges 1.
  CHECK(Answer(w, Get(file, "Range: bytes=0-0,5-9\r\n")).rfind("HTTP/1.1 200 OK", 0) == 0);
  // To JavaScript, each for its reason.
  FastPathStats& st = w.fp->stats;
  uint64_t other = st.other, nob = st.no_binding, miss = st.misses, unauth = st.unauthorised;
  CHECK(Answer(w, Get("/hf/acme/llama/resolve/main/model.safetensors")).empty());  // main: JavaScript lists
  CHECK(Answer(w, Get("/hf/acme/other/resolve/" + kSha + "/model.safetensors")).empty());  // another repo
  CHECK(Answer(w, Get("/hf/acme/llama/resolve/" + kSha + "/missing.bin")).empty());
  CHECK(Answer(w, Get(file, "If-Match: \"v1\"\r\n")).empty());
  CHECK(Answer(w, Get(file, "If-Modified-Since: Thu, 02 Jan 2025 03:04:05 GMT\r\n")).empty());
  CHECK(Answer(w, Get(file, "Range: bytes=999999-\r\n")).empty());  // 416
  CHECK(Answer(w, Get(file + "?x=1")).empty());
  CHECK(Answer(w, Get("/hf/api/models/acme/llama")).empty());
  CHECK(Answer(w, Get("/s3/bucket/key")).empty());  // no S3 route here
  CHECK(Answer(w, Get(file, "", "POST")).empty());
  CHECK(st.other == other + 10);
  CHECK(Answer(w, Get("/hf/acme/llama/resolve/" + std::string(40, 'f') + "/model.safetensors")).empty());
  CHECK(st.no_binding == nob + 1);
  // The binding names another version than the revision lists: pinned, so JavaScript (RevisionNotFound).
  w.Bind("v2");
  CHECK(Answer(w, Get(file)).empty());
  CHECK(st.other == other + 11);
  w.Bind("v1");
  w.id.index = 2;
  w.fp->store->Erase(w.id);
  CHECK(Answer(w, Get(file)).empty());
  CHECK(st.misses == miss + 1);
  CHECK(!Answer(w, Get(file, "Range: bytes=0-99\r\n")).empty());  // the first chunk is still there
  std::string t = w.token;
  w.fp->tokens->Replace(true, {{auth::Sha256(t.data(), t.size()), false, false, {"models"}, {}}});
  CHECK(Answer(w, Get(file, "Range: bytes=0-99\r\n")).empty());
  CHECK(Answer(w, Get(file, "Range: bytes=0-99\r\nAuthorization: Bearer wrong\r\n")).empty());
  CHECK(!Answer(w, Get(file, "Range: bytes=0-99\r\nAuthorization: Bearer " + t + "\r\n")).empty());
  w.fp->tokens->Replace(true, {{auth::Sha256(t.data(), t.size()), false, false, {"elsewhere"}, {}}});
  CHECK(Answer(w, Get(file, "Range: bytes=0-99\r\nAuthorization: Bearer " + t + "\r\n")).empty());
  CHECK(st.unauthorised == unauth + 3);
  CHECK(w.fp->doors->stats.hub_hits > 0 && w.fp->doors->stats.hub_body_hits > 0);
  CHECK(w.fp->store->outstanding_refs() == 0);
}

void TestS3Target() {
  S3Route r;
  r.path = "/s3";
  r.base_domain = "s3.test";
  S3Target t;
  std::string host;
  CHECK(ParseS3Target(r, "/models/llama/a.bin", "127.0.0.1:9000", t, host));
  CHECK(t.bucket == "models" && t.key == "llama/a.bin");
  CHECK(ParseS3Target(r, "/llama/a.bin", "Models.S3.Test:9000", t, host));  // virtual-host style
  CHECK(t.bucket == "models" && t.key == "llama/a.bin");
  CHECK(ParseS3Target(r, "/llama/a.bin", "models.s3.test", t, host) && t.bucket == "models");
  CHECK(!ParseS3Target(r, "/models", "127.0.0.1", t, host));          // the bucket: a listing
  CHECK(!ParseS3Target(r, "/models/", "127.0.0.1", t, host));
  CHECK(!ParseS3Target(r, "/models/a/", "127.0.0.1", t, host));       // a "directory marker"
  CHECK(!ParseS3Target(r, "/models/a%20b", "127.0.0.1", t, host));    // needs decoding
  CHECK(!ParseS3Target(r, "/models/a/../b", "127.0.0.1", t, host));
  CHECK(!ParseS3Target(r, "/-bad/a", "127.0.0.1", t, host));          // validateContainer
  CHECK(!ParseS3Target(r, "/a.bin", "s3.test", t, host));             // no bucket label
  CHECK(!ParseS3Target(r, "/models/" + std::string(1100, 'k'), "h", t, host));  // past MAX_KEY_LENGTH
  r.any_bucket = false;
  r.buckets = {"models"};
  CHECK(ParseS3Target(r, "/models/a", "h", t, host));
  CHECK(!ParseS3Target(r, "/other/a", "h", t, host));  // NoSuchBucket: JavaScript's
  std::string id = S3RequestId();
  CHECK(id.size() == 16 && id.find_first_not_of("0123456789ABCDEF") == std::string::npos);
  CHECK(S3RequestId() != id);
}

void TestS3Answers() {
  World w;
  auto s3 = std::make_unique<S3Route>();
  s3->path = "/s3";
  w.fp->doors->s3 = std::move(s3);
  const std::string obj = "/s3/models/acme/llama/model.safetensors";
  const std::string tail = "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n";
  std::string body;
  std::string a = Answer(w, Get(obj, "Range: bytes=10-19\r\nX-Amz-Date: 20260101T000000Z\r\namz-sdk-request: attempt=1\r\n"), &body);
  CHECK(a.rfind("HTTP/1.1 206 Partial Content\r\nx-amz-request-id: ", 0) == 0);
  CHECK(a.size() > 64 && a.substr(64) ==
        "\r\nETag: \"v1\"\r\nLast-Modified: Thu, 02 Jan 2025 03:04:05 GMT\r\nAccept-Ranges: bytes\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 10\r\nX-Cache-Source: dram\r\n"
        "Content-Range: bytes 10-19/" + std::to_string(kSize) + "\r\n" + tail);
  CHECK(body.size() == 10 && std::memcmp(body.data(), w.data.data() + 10, 10) == 0);
  CHECK(Answer(w, Get(obj + "?x-id=GetObject")).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(Answer(w, Get(obj, "If-None-Match: \"v1\"\r\n")).rfind("HTTP/1.1 304 Not Modified\r\n", 0) == 0);
  CHECK(!Answer(w, Get(obj, "If-Match: \"v1\"\r\n")).empty());
  FastPathStats& st = w.fp->stats;
  uint64_t other = st.other, unauth = st.unauthorised;
  CHECK(Answer(w, Get(obj, "If-Match: \"v0\"\r\n")).empty());  // another version: JavaScript revalidates or 412
  CHECK(Answer(w, Get(obj + "?response-content-type=a")).empty());
  CHECK(Answer(w, Get(obj + "?versionId=1")).empty());
  CHECK(Answer(w, Get("/s3/models")).empty());
  CHECK(Answer(w, Get(obj, "If-Unmodified-Since: Thu, 02 Jan 2025 03:04:05 GMT\r\n")).empty());
  CHECK(st.other == other + 5);
  std::string t = w.token;
  w.fp->tokens->Replace(true, {{auth::Sha256(t.data(), t.size()), false, true, {}, {}}});
  CHECK(Answer(w, Get(obj)).empty());  // auth on, unsigned: JavaScript's AccessDenied
  CHECK(st.unauthorised == unauth + 1);
  CHECK(w.fp->doors->stats.s3_hits == 4 && w.fp->doors->stats.s3_body_hits == 3);
  CHECK(w.fp->store->outstanding_refs() == 0);
}

// Signed S3 reads through the whole hook (sigv4.h): requests signed by src/s3/sigv4.ts for
// 2026-12-06T14:00:00Z with the token below, checked at that instant.
int64_t SigningInstant() { return 1796565600000LL; }

void TestS3Signed() {
  World w;
  auto s3 = std::make_unique<S3Route>();
  s3->path = "/s3";
  s3->clock_ms = SigningInstant;
  w.fp->doors->s3 = std::move(s3);
  const std::string token = "tok-signed-reads-0123456789abcdef";
  auto grant = [&](std::vector<std::string> containers) {
    auth::TokenGrant g;
    g.digest = auth::Sha256(token.data(), token.size());
    g.secret = token;
    g.all_containers = containers.empty();
    g.containers = std::move(containers);
    return g;
  };
  w.fp->tokens->Replace(true, {grant({"models"})});
  const std::string obj = "/s3/models/acme/llama/model.safetensors";
  const std::string header =
      "Range: bytes=10-19\r\nx-amz-date: 20261206T140000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
      "Authorization: AWS4-HMAC-SHA256 Credential=8d2d8d9759ff6acb48e4/20261206/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
      "Signature=f81dab0169b63f706adb76952c99dfa964205a47c11d2a52c1c396088e222420\r\n";
  const std::string presigned =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=8d2d8d9759ff6acb48e4%2F20261206%2Fus-east-1%2Fs3%2Faws4_request"
      "&X-Amz-Date=20261206T140000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
      "&X-Amz-Signature=a41be279a6f0a7e9bc201512c5c14d2cd18aee4f7592fdc97ad8fff806b7ff52";
  // Signed with response-content-type: verified, but an override is JavaScript's to answer.
  const std::string presigned_override =
      "response-content-type=a&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=8d2d8d9759ff6acb48e4%2F20261206%2Fus-east-1"
      "%2Fs3%2Faws4_request&X-Amz-Date=20261206T140000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
      "&X-Amz-Signature=d338f40e1f5e7ef0bca7c3f28c1b9416255f4202925fdf9a26701f29d0ae2ed7";
  DoorStats& ds = w.fp->doors->stats;
  FastPathStats& st = w.fp->stats;
  std::string body;
  std::string a = Answer(w, Get(obj, header), &body);
  CHECK(a.rfind("HTTP/1.1 206 Partial Content\r\nx-amz-request-id: ", 0) == 0);
  CHECK(a.find("Content-Range: bytes 10-19/" + std::to_string(kSize) + "\r\n") != std::string::npos);
  CHECK(body.size() == 10 && std::memcmp(body.data(), w.data.data() + 10, 10) == 0);
  a = Answer(w, Get(obj + "?" + presigned), &body);
  CHECK(a.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && body.size() == kSize);
  CHECK(!Answer(w, Get(obj + "?" + presigned, "Range: bytes=0-9\r\n")).empty());  // Range is not signed: any range
  CHECK(ds.s3_signed_hits == 3 && ds.s3_signed_declined == 0);
  uint64_t unauth = st.unauthorised, other = st.other;
  CHECK(Answer(w, Get(obj + "?" + presigned_override)).empty());
  CHECK(st.other == other + 1);
  // Failures: JavaScript answers each, counted as declined.
  CHECK(Answer(w, Get(obj, header + "X-Other: 1\r\n")).rfind("HTTP/1.1 206", 0) == 0);  // an unsigned extension field
  std::string tampered = header;
  tampered.replace(tampered.find("bytes=10-19"), 11, "bytes=10-20");
  CHECK(Answer(w, Get(obj, tampered)).empty());
  CHECK(Answer(w, Get(obj + "?" + presigned.substr(0, presigned.size() - 1) + "3")).empty());
  CHECK(Answer(w, Get(obj, header, "HEAD")).empty());  // signed as a GET
  w.fp->tokens->Replace(true, {grant({"elsewhere"})});  // a bucket outside the token's scope
  CHECK(Answer(w, Get(obj, header)).empty());
  w.fp->tokens->Replace(true, {});  // an unknown key
  CHECK(Answer(w, Get(obj, header)).empty());
  CHECK(st.unauthorised == unauth + 5 && ds.s3_signed_declined == 5);
  // Out of the window: the clock an hour and a second past a one-hour URL.
  w.fp->tokens->Replace(true, {grant({})});
  w.fp->doors->s3->clock_ms = [] { return SigningInstant() + 3'601'000; };
  CHECK(Answer(w, Get(obj + "?" + presigned)).empty());
  CHECK(Answer(w, Get(obj, header)).empty());  // and past the 15-minute skew
  w.fp->doors->s3->clock_ms = [] { return SigningInstant() + 60'000; };
  CHECK(!Answer(w, Get(obj, header)).empty());
  CHECK(ds.s3_signed_hits == 5 && ds.s3_signed_declined == 7);
  CHECK(w.fp->store->outstanding_refs() == 0);
}

}  // namespace

int main() {
  TestHubTarget();
  TestRevisionTable();
  TestHubAnswers();
  TestS3Target();
  TestS3Answers();
  TestS3Signed();
  return CheckResult("doors_test");
}
