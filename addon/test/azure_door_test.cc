// Unit tests of the Azure Blob door on the native fast path
// (addon/src/http/doors/azure.h): the request mapping as src/azure-blob/door.ts
// reads `{account}/{container}/{blob}`, the Azure fields (x-ms-range,
// x-ms-version, x-ms-range-get-content-md5), the request id's form, and whole
// Get Blob / Get Blob Properties requests answered from a real store through
// the objects fast path's hook: heads byte for byte as the JavaScript door
// writes them, x-ms-range over Range, the blob's Content-MD5 where the service
// puts it, what goes to JavaScript and why, chunk references released. Run by
// npm test (test/native/cpp.test.ts) plainly and under ASan+UBSan.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/sha256.h"
#include "http/doors/azure.h"
#include "http/doors/routes.h"
#include "http/fastpath.h"
#include "http/parser.h"
#include "store/bindings.h"
#include "store/store.h"
#include "check.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kSize = 3 * kChunk - 100;
const std::string kLm = "Thu, 02 Jan 2025 03:04:05 GMT";
const std::string kTail = "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n";

void TestTarget() {
  AzureRoute r{"/azure", ""};
  AzureTarget t;
  CHECK(ParseAzureTarget(r, "acct/models/llama/a.bin", t));
  CHECK(t.account == "acct" && t.container == "models" && t.blob == "llama/a.bin");
  CHECK(!ParseAzureTarget(r, "acct", t));                 // the account: List Containers
  CHECK(!ParseAzureTarget(r, "acct/models", t));          // the container: properties, List Blobs
  CHECK(!ParseAzureTarget(r, "acct/models/", t));
  CHECK(!ParseAzureTarget(r, "acct/models/a/", t));       // an empty last segment
  CHECK(!ParseAzureTarget(r, "acct/models/a%20b", t));    // needs decoding
  CHECK(!ParseAzureTarget(r, "acct/models/a/../b", t));
  CHECK(!ParseAzureTarget(r, "/acct/models/a", t));       // an empty account
  CHECK(!ParseAzureTarget(r, "acct/-bad/a", t));          // validateContainer
  CHECK(!ParseAzureTarget(r, "acct/models/" + std::string(1100, 'k'), t));  // past MAX_KEY_LENGTH
  r.account = "weights";
  CHECK(ParseAzureTarget(r, "weights/models/a", t));
  CHECK(!ParseAzureTarget(r, "acct/models/a", t));        // InvalidUri: JavaScript's
  std::string id = AzureRequestId();
  CHECK(id.size() == 36 && id[8] == '-' && id[13] == '-' && id[14] == '4' && id[18] == '-' && id[23] == '-');
  CHECK(std::strchr("89ab", id[19]) != nullptr);
  CHECK(id.find_first_not_of("0123456789abcdef-") == std::string::npos);
  CHECK(AzureRequestId() != id);
}

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
    fp->tokens->Replace(false, {});
    fp->doors = std::make_shared<DoorRoutes>();
    fp->doors->azure = std::make_unique<AzureRoute>(AzureRoute{"/azure", ""});
    fp->keep_alive_timeout_s = 5;
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<uint8_t>(i * 11);
    id.object.fill(7);
    Bind("");
    for (uint32_t i = 0; i < 3; i++) {
      id.index = i;
      fp->store->Insert(id, data.data() + i * kChunk, std::min<uint64_t>(kChunk, kSize - i * kChunk), 0, "");
    }
  }
  void Bind(const std::string& md5) {
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/llama/model.safetensors";
    b->object = id.object;
    b->etag = "0x8DC";
    b->size = kSize;
    b->chunk_size = kChunk;
    b->last_modified = kLm;
    b->content_type = "application/octet-stream";
    b->content_md5 = md5;
    b->deadline_ns = INT64_MAX;
    fp->bindings->Set(b);
  }
};

// The request's answer on the fast path with its request id masked, or "" when it goes to JavaScript.
std::string Answer(World& w, const std::string& raw, std::string* body = nullptr) {
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return "unparsed";
  FastAnswer a;
  if (!TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a)) return "";
  if (body) {
    body->clear();
    for (auto& piece : a.pieces) body->append(reinterpret_cast<const char*>(piece.data), piece.len);
  }
  size_t at = a.head.find("\r\nx-ms-request-id: ");
  if (at != std::string::npos) a.head.replace(at + 19, 36, "ID");
  return a.head;
}

std::string Get(const std::string& target, const std::string& fields = "", const std::string& method = "GET") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + fields + "\r\n";
}

std::string Base(const std::string& version = "2025-11-05") {
  return "x-ms-request-id: ID\r\nx-ms-version: " + version + "\r\nETag: \"0x8DC\"\r\nLast-Modified: " + kLm +
         "\r\nAccept-Ranges: bytes\r\nx-ms-blob-type: BlockBlob\r\nx-ms-creation-time: " + kLm +
         "\r\nx-ms-lease-status: unlocked\r\nx-ms-lease-state: available\r\nx-ms-server-encrypted: true\r\n";
}

void TestAnswers() {
  World w;
  const std::string blob = "/azure/acct/models/llama/model.safetensors";
  const std::string size = std::to_string(kSize);
  std::string body;
  // The Python SDK's first GET: x-ms-range past the end, x-ms-version, its own ids and date.
  std::string a = Answer(w, Get(blob, "x-ms-range: bytes=0-33554431\r\nx-ms-version: 2025-01-05\r\n"
                                      "x-ms-date: Thu, 01 Jan 2026 00:00:00 GMT\r\nx-ms-client-request-id: 1\r\n"
                                      "Accept: application/xml\r\nUser-Agent: azsdk-python-storage-blob/12\r\n"), &body);
  CHECK(a == "HTTP/1.1 206 Partial Content\r\n" + Base("2025-01-05") +
                 "Content-Type: application/octet-stream\r\nContent-Length: " + size +
                 "\r\nX-Cache-Source: dram\r\nContent-Range: bytes 0-" + std::to_string(kSize - 1) + "/" + size +
                 "\r\nx-ms-blob-content-length: " + size + "\r\n" + kTail);
  CHECK(body.size() == kSize && std::memcmp(body.data(), w.data.data(), kSize) == 0);
  // x-ms-range wins over Range.
  a = Answer(w, Get(blob, "Range: bytes=0-0\r\nx-ms-range: bytes=4090-4109\r\n"), &body);
  CHECK(a.find("\r\nContent-Range: bytes 4090-4109/" + size + "\r\n") != std::string::npos);
  CHECK(body.size() == 20 && std::memcmp(body.data(), w.data.data() + 4090, 20) == 0);
  // A whole GET: no x-ms-blob-content-length; with a Range that does not apply (If-Range), there is one.
  CHECK(Answer(w, Get(blob)) == "HTTP/1.1 200 OK\r\n" + Base() + "Content-Type: application/octet-stream\r\n"
                                 "Content-Length: " + size + "\r\nX-Cache-Source: dram\r\n" + kTail);
  a = Answer(w, Get(blob, "Range: bytes=0-9\r\nIf-Range: \"other\"\r\n"));
  CHECK(a.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && a.find("\r\nx-ms-blob-content-length: " + size + "\r\n") != std::string::npos);
  // The blob's MD5: Content-MD5 on a whole GET and every HEAD, x-ms-blob-content-md5 beside a ranged GET.
  w.Bind("kq56YDAH2p4mzAqrQw84kQ==");
  CHECK(Answer(w, Get(blob)).find("\r\nContent-MD5: kq56YDAH2p4mzAqrQw84kQ==\r\nDate: ") != std::string::npos);
  a = Answer(w, Get(blob, "x-ms-range: bytes=0-9\r\n"));
  CHECK(a.find("\r\nx-ms-blob-content-length: " + size + "\r\nx-ms-blob-content-md5: kq56YDAH2p4mzAqrQw84kQ==\r\n") != std::string::npos);
  a = Answer(w, Get(blob, "x-ms-range: bytes=0-9\r\n", "HEAD"));
  CHECK(a.find("\r\nContent-Length: 10\r\n") != std::string::npos);
  CHECK(a.find("\r\nContent-MD5: kq56YDAH2p4mzAqrQw84kQ==\r\n") != std::string::npos);
  CHECK(Answer(w, Get(blob, "x-ms-range-get-content-md5: false\r\n")).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(Answer(w, Get(blob + "?timeout=30")).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);  // the SDKs' timeout: ignored
  // 304: the base headers only.
  CHECK(Answer(w, Get(blob, "If-None-Match: \"0x8DC\"\r\n")) == "HTTP/1.1 304 Not Modified\r\n" + Base() + kTail);
  DoorStats& ds = w.fp->doors->stats;
  CHECK(ds.azure_hits == 10 && ds.azure_body_hits == 8 && ds.azure_nvme_body_hits == 0);

  // JavaScript's: the range's own MD5, a query, repeated or empty Azure fields, other operations and
  // accounts, a 416, date conditions, auth on.
  FastPathStats& st = w.fp->stats;
  uint64_t other = st.other;
  CHECK(Answer(w, Get(blob, "x-ms-range: bytes=0-9\r\nx-ms-range-get-content-md5: true\r\n")).empty());
  CHECK(Answer(w, Get(blob + "?snapshot=2025-01-01T00:00:00Z")).empty());
  CHECK(Answer(w, Get(blob + "?comp=metadata")).empty());
  CHECK(Answer(w, Get(blob + "?timeout=30&timeout=31")).empty());
  CHECK(Answer(w, Get(blob + "?sv=2022-11-02&sig=abc")).empty());
  CHECK(Answer(w, Get(blob, "x-ms-range: bytes=0-9\r\nx-ms-range: bytes=1-9\r\n")).empty());
  CHECK(Answer(w, Get(blob, "x-ms-version: 2025-01-05\r\nx-ms-version: 2024-01-05\r\n")).empty());
  CHECK(Answer(w, Get(blob, "x-ms-version:\r\n")).empty());
  CHECK(Answer(w, Get(blob, "x-ms-version: \x80\r\n")).empty());
  CHECK(Answer(w, Get("/azure/acct/models?restype=container&comp=list")).empty());
  CHECK(Answer(w, Get("/azure/acct/models/llama/model%2Esafetensors")).empty());
  CHECK(Answer(w, Get(blob, "If-Modified-Since: " + kLm + "\r\n")).empty());
  CHECK(Answer(w, Get(blob, "x-ms-range: bytes=99999999-\r\n")).empty());  // 416 InvalidRange
  CHECK(st.other == other + 13);
  w.fp->doors->azure->account = "weights";
  uint64_t no_binding = st.no_binding;
  CHECK(Answer(w, Get(blob)).empty());  // InvalidUri
  CHECK(Answer(w, Get("/azure/weights/models/llama/missing.bin")).empty());  // BlobNotFound
  CHECK(st.no_binding == no_binding + 1);
  CHECK(!Answer(w, Get("/azure/weights/models/llama/model.safetensors")).empty());
  std::string t(32, 't');
  w.fp->tokens->Replace(true, {{auth::Sha256(t.data(), t.size()), false, true, {}, t}});
  CHECK(Answer(w, Get("/azure/weights/models/llama/model.safetensors")).empty());  // SharedKey/SAS: JavaScript's
  CHECK(ds.azure_hits == 11);
  CHECK(w.fp->store->outstanding_refs() == 0);
}

}  // namespace

int main() {
  TestTarget();
  TestAnswers();
  return CheckResult("azure_door_test");
}
