// libFuzzer target for the front doors on the native fast path
// (addon/src/http/doors/): the Hub and S3 doors' request mappings on their own
// (any bytes as the path after the door's prefix; for S3 a first line as the
// path and the rest as the Host; for Azure the same bytes, and the Azure
// fields of the parsed request) and whole requests through the
// objects fast path's hook, against a published revision and a bound, stored
// file. npm test builds it with clang (-fsanitize=fuzzer,address,undefined)
// and runs it for a bounded time (test/native/fuzz.test.ts).
//
// Input: byte 0 picks the set-up (bit 0: auth on — the token also an S3 signing secret —, bit 1: the last chunk is
// missing from the store, bit 2: the binding names another version than the
// revision, bit 3: the binding carries a Content-MD5); the rest is a request as a client sends it. Besides what the
// sanitizers catch, it traps when a mapped target is not made of the path's
// own bytes, an answer's head does not end its header section or lacks the
// Hub's headers, its Content-Length is not its body's length, a body slice
// lies outside its chunk, an answer names another version than the
// revision's, or a chunk reference outlives the answer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sha256.h"
#include "http/doors/azure.h"
#include "http/doors/hub.h"
#include "http/doors/routes.h"
#include "http/doors/s3.h"
#include "http/fastpath.h"
#include "http/parser.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;
const char* kSha = "5a5adbbfdd54b111c8f5a3fa74a0b7d7108d8634";

struct World {
  std::shared_ptr<FastPath> fp = std::make_shared<FastPath>();
  std::vector<uint8_t> data = std::vector<uint8_t>(kSize);
  store::ChunkId id;

  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    fp->store = store::Store::Create(so, &error);
    fp->bindings = std::make_shared<store::BindingTable>();
    fp->tokens = std::make_shared<auth::TokenTable>();
    fp->doors = std::make_shared<DoorRoutes>();
    fp->doors->hub = std::make_unique<HubRoute>("/hf", "models", 100);
    fp->doors->s3 = std::make_unique<S3Route>();
    fp->doors->s3->path = "/s3";
    fp->doors->s3->base_domain = "s3.test";
    fp->doors->azure = std::make_unique<AzureRoute>(AzureRoute{"/azure", "acct"});
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<uint8_t>(i);
    id.object.fill(5);
    auto r = std::make_shared<HubRevision>();
    r->sha = kSha;
    r->prefix = "acme/llama/";
    r->files["model.bin"] = HubFile{"v1", kSize, "0123456789abcdef0123456789abcdef01234567", "application/octet-stream"};
    r->files["dir/a.json"] = HubFile{"v1", kSize, "0123456789abcdef0123456789abcdef01234567", "application/json"};
    r->deadline_ns = INT64_MAX;
    fp->doors->hub->revisions.Publish(r);
    for (const char* key : {"models/acme/llama/model.bin", "models/acme/llama/dir/a.json"}) Bind(key, "v1");
  }

  void Bind(const char* name, const char* etag, bool md5 = false) {
    auto b = std::make_shared<store::VersionBinding>();
    b->name = name;
    b->object = id.object;
    b->etag = etag;
    b->size = kSize;
    b->chunk_size = kChunk;
    b->last_modified = "Thu, 02 Jan 2025 03:04:05 GMT";
    b->content_type = "application/octet-stream";
    if (md5) b->content_md5 = "kq56YDAH2p4mzAqrQw84kQ==";
    b->deadline_ns = INT64_MAX;
    fp->bindings->Set(b);
  }

  void Fill(bool last_missing) {
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      if (i == 2 && last_missing) {
        fp->store->Erase(id);
        continue;
      }
      uint64_t len = std::min<uint64_t>(kChunk, kSize - i * kChunk);
      if (!fp->store->Contains(id)) fp->store->Insert(id, data.data() + i * kChunk, len, 0, "");
    }
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

bool Within(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 1) return 0;
  World& w = TheWorld();
  uint8_t mode = input[0];
  std::string_view raw(reinterpret_cast<const char*>(input + 1), size - 1);
  // The mapping on its own: its parts are the path's own bytes, and never hold what a plain segment cannot.
  S3Target st;
  std::string host;
  if (ParseS3Target(*w.fp->doors->s3, raw.substr(0, raw.find('\n')), raw.substr(raw.find('\n') + 1), st, host)) {
    Check(!st.bucket.empty() && !st.key.empty() && st.key.back() != '/');
    Check(Within(st.key, raw) && (Within(st.bucket, raw) || Within(st.bucket, host)));
  }
  AzureTarget at;
  if (ParseAzureTarget(*w.fp->doors->azure, raw, at)) {
    Check(at.account == "acct" && !at.container.empty() && !at.blob.empty() && at.blob.back() != '/');
    Check(Within(at.container, raw) && Within(at.blob, raw) && at.blob.find('%') == std::string_view::npos);
  }
  HubTarget t;
  if (ParseHubTarget(raw, t)) {
    Check(Within(t.repo, raw) && Within(t.revision, raw) && Within(t.file, raw));
    Check(!t.repo.empty() && !t.revision.empty() && !t.file.empty());
    Check(t.revision.find('/') == std::string_view::npos && t.file.find("//") == std::string_view::npos);
    Check(t.repo.find('%') == std::string_view::npos && t.file.find('%') == std::string_view::npos);
  }
  std::string token(32, 't');
  if (mode & 1) {
    w.fp->tokens->Replace(true, {{auth::Sha256(token.data(), token.size()), false, false, {"models"}, token}});
  } else {
    w.fp->tokens->Replace(false, {});
  }
  w.Bind("models/acme/llama/model.bin", (mode & 4) ? "v2" : "v1", (mode & 8) != 0);
  w.Fill((mode & 2) != 0);
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) == RequestParser::kDone) {
    AzureFields af;
    if (ReadAzureFields(p.head(), af)) {
      Check(!af.ms_version || !af.ms_version->value.empty());
      Check(!af.ms_range || Within(af.ms_range->value, raw));
    }
    FastAnswer a;
    if (TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a)) {
      Check(a.head.size() >= 4 && a.head.compare(a.head.size() - 4, 4, "\r\n\r\n") == 0);
      Check(a.head.find("\r\n\r\n") == a.head.size() - 4);
      bool s3 = a.head.find("\r\nx-amz-request-id: ") != std::string::npos;
      bool azure = a.head.find("\r\nx-ms-request-id: ") != std::string::npos;
      // Auth on: an Azure read answered here carried credentials (SharedKey or bearer, or a SAS).
      Check((mode & 1) == 0 || !azure || p.head().Find("authorization") != nullptr || p.head().has_query);
      Check(s3 || azure || a.head.find(std::string("\r\nX-Repo-Commit: ") + kSha + "\r\nETag: \"v1\"\r\n") != std::string::npos);
      uint64_t body = 0;
      for (const store::Piece& piece : a.pieces) {
        const uint8_t* base = piece.ref.data();
        Check(!piece.from_disk && piece.data >= base && piece.data + piece.len <= base + piece.ref.size());
        body += piece.len;
      }
      Check(body == a.body_bytes);
      size_t cl = a.head.find("Content-Length: ");
      if (cl != std::string::npos) {
        uint64_t n = std::stoull(a.head.substr(cl + 16));
        Check(p.head().method == "HEAD" || n == body);
      } else {
        Check(a.head.rfind("HTTP/1.1 304 ", 0) == 0);
      }
    }
  }
  Check(w.fp->store->outstanding_refs() == 0);
  return 0;
}
