// Unit tests of Azure SAS verification on the native fast path
// (addon/src/http/doors/azure_auth.h): the SAS time and base64 forms, SAS
// tokens made by the azure-storage-blob Python SDK (generate_blob_sas,
// generate_container_sas, generate_account_sas with AccountKey = base64 of
// the token below, checked at 2026-12-06T14:30:00Z) verified, and every
// reason one is left to JavaScript; then whole requests through the fast
// path's hook with auth on: SAS and bearer reads answered, failures declined
// and counted. SharedKey: the string-to-sign against the one
// src/azure-blob/shared-key.ts sharedKeyString builds for the same requests
// (and their signatures under the token), the IMF-fixdate form, the
// declines. Run plainly and under ASan+UBSan.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/sha256.h"
#include "http/doors/azure_auth.h"
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

const std::string kToken = "azure-sas-token-0123456789abcdef";
const std::string kBlobSas =
    "st=2026-12-06T14%3A00%3A00Z&se=2026-12-06T15%3A00%3A00Z&sp=r&sv=2026-10-06&sr=b&sig=oOv1kkQrtOS5klQ0E3VePz8hHrstVExkr3pFVka4iAo%3D";
const std::string kContainerSas =
    "se=2026-12-06T15%3A00%3A00Z&sp=rl&sv=2026-10-06&sr=c&sig=CRK2iF74btS%2B43ePhQh/nRX327LxfxYPeY%2BL%2Bfw7%2BWc%3D";
const std::string kAccountSas =
    "se=2026-12-06T15%3A00%3A00Z&sp=rl&sv=2026-10-06&ss=b&srt=sco&sig=m70BqbpRIHhWwK7sg1TW1h4bwALPHoZW%2BSx/UYeW6UA%3D";
constexpr int64_t kNow = 1796567400000LL;  // 2026-12-06T14:30:00Z
constexpr int64_t kSkew = 15 * 60 * 1000;
const AzureBlobName kName{"acct", "models", "llama/model.bin"};

std::vector<auth::TokenGrant> Grants(std::vector<std::string> containers, const std::string& secret = kToken) {
  return {{auth::Sha256(secret.data(), secret.size()), false, containers.empty(), containers, secret}};
}

bool Verified(const auth::TokenTable& t, const std::string& query, int64_t now = kNow, AzureBlobName n = kName) {
  std::vector<QueryPair> q;
  return DecodeQuery(query, q) && VerifyAzureSas(t, q, n, now, kSkew) != nullptr;
}

void TestForms() {
  int64_t ms = 0;
  CHECK(ParseSasTime("2026-12-06T14:30:00Z", ms) && ms == kNow);
  CHECK(ParseSasTime("1970-01-01T00:00:00Z", ms) && ms == 0);
  CHECK(ParseSasTime("2028-02-29T00:00:00Z", ms));
  CHECK(!ParseSasTime("2026-02-29T00:00:00Z", ms));  // no such day: Date.parse decides
  CHECK(!ParseSasTime("2026-12-06T24:00:00Z", ms));
  CHECK(!ParseSasTime("2026-12-06T14:30:00.000Z", ms));
  CHECK(!ParseSasTime("2026-12-06", ms));
  CHECK(!ParseSasTime("2026-12-06T14:30:00+00:00", ms));
  CHECK(!ParseSasTime("", ms));
  const uint8_t foobar[] = {'f', 'o', 'o', 'b', 'a', 'r'};
  CHECK(Base64(foobar, 0).empty() && Base64(foobar, 1) == "Zg==" && Base64(foobar, 2) == "Zm8=");
  CHECK(Base64(foobar, 3) == "Zm9v" && Base64(foobar, 6) == "Zm9vYmFy");
}

void TestSas() {
  auth::TokenTable t;
  t.Replace(true, Grants({"models"}));
  CHECK(Verified(t, kBlobSas));
  CHECK(Verified(t, kContainerSas));
  CHECK(Verified(t, kAccountSas));
  std::string s;
  std::vector<QueryPair> q;
  CHECK(DecodeQuery(kBlobSas, q) && AzureSasStringToSign(q, kName, s));
  CHECK(s == "r\n2026-12-06T14:00:00Z\n2026-12-06T15:00:00Z\n/blob/acct/models/llama/model.bin\n\n\n\n2026-10-06\nb\n\n\n\n\n\n\n");
  // Bound to its blob, its container, its account; its times.
  CHECK(!Verified(t, kBlobSas, kNow, {"acct", "models", "llama/other.bin"}));
  CHECK(!Verified(t, kContainerSas, kNow, {"acct", "other", "llama/model.bin"}));
  CHECK(!Verified(t, kAccountSas, kNow, {"other", "models", "llama/model.bin"}));
  CHECK(!Verified(t, kBlobSas, 1796569200001LL));              // expired
  CHECK(Verified(t, kBlobSas, 1796565600000LL - kSkew));       // st minus the skew: valid
  CHECK(!Verified(t, kBlobSas, 1796565600000LL - kSkew - 1));  // not yet
  // Another key, no key, more tokens than are tried.
  auth::TokenTable other;
  other.Replace(true, Grants({"models"}, "another-token-0123456789abcdef"));
  CHECK(!Verified(other, kBlobSas));
  auth::TokenTable none;
  none.Replace(false, {});
  CHECK(!Verified(none, kBlobSas));
  std::vector<auth::TokenGrant> many;
  for (size_t i = 0; i <= kMaxAzureSigningKeys; i++) many.push_back(Grants({}, kToken + std::to_string(i))[0]);
  many.push_back(Grants({})[0]);
  auth::TokenTable lots;
  lots.Replace(true, many);
  CHECK(!Verified(lots, kBlobSas));
  // Tampered, repeated, unknown or unusual parameters: JavaScript's.
  CHECK(!Verified(t, "sp=rl&" + kBlobSas.substr(0, kBlobSas.find("&sp=")) + kBlobSas.substr(kBlobSas.find("&sv="))));
  CHECK(!Verified(t, kBlobSas + "&sp=r"));
  CHECK(!Verified(t, kBlobSas + "&snapshot=2025-01-01T00:00:00Z"));
  CHECK(Verified(t, kBlobSas + "&timeout=30"));  // the SDKs' timeout: in no string-to-sign
  CHECK(!Verified(t, kBlobSas + "&timeout=30&timeout=31"));
  CHECK(!Verified(t, kBlobSas + "&spr=https"));
  CHECK(!Verified(t, kBlobSas + "&sip=127.0.0.1"));
  CHECK(!Verified(t, kBlobSas.substr(0, kBlobSas.size() - 3)));  // the signature without its padding
  CHECK(!Verified(t, "sv=2019-12-12&" + kBlobSas.substr(0, kBlobSas.find("&sv=")) + "&sr=b&sig=x"));
  std::string wrong = kBlobSas;
  wrong[wrong.find("sig=") + 4] = 'p';
  CHECK(!Verified(t, wrong));
}

// Requests and the string-to-sign and signature (under kToken) shared-key.ts makes for them.
const std::string kSkGet =
    "GET /azure/acct/models/llama/model.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ms-version: 2025-01-05\r\n"
    "x-ms-date: Sun, 06 Dec 2026 14:30:00 GMT\r\nx-ms-client-request-id: c1\r\nx-ms-range: bytes=0-99\r\n";
const std::string kSkGetString =
    "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-client-request-id:c1\nx-ms-date:Sun, 06 Dec 2026 14:30:00 GMT\n"
    "x-ms-range:bytes=0-99\nx-ms-version:2025-01-05\n/acct/azure/acct/models/llama/model.bin";
const std::string kSkGetSig = "mujOH3V1NEBHIsmNmnqth0kA6l8ehYrGv4QxI/WFXaI=";
const std::string kSkHead =
    "HEAD /azure/acct/models/llama/model.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ms-Date: Sun, 06 Dec 2026 14:30:00 GMT\r\n"
    "Range: bytes=5-9\r\nIf-None-Match: \"0x8DC\"\r\nIf-Match: *\r\nx-ms-meta-a:  one \r\nX-MS-META-A: two\r\n"
    "x-ms-rangexyz: q\r\nx-ms-range-get-content-md5: false\r\n";
const std::string kSkHeadString =
    "HEAD\n\n\n\n\n\n\n\n*\n\"0x8DC\"\n\nbytes=5-9\nx-ms-date:Sun, 06 Dec 2026 14:30:00 GMT\nx-ms-meta-a:one,two\n"
    "x-ms-range-get-content-md5:false\nx-ms-rangexyz:q\n/acct/azure/acct/models/llama/model.bin";
const std::string kSkHeadSig = "pAX9ry2jBmUH1O1ja55iSgvg42lou/g4CqF1zAuep0s=";

bool SharedKeyVerified(const auth::TokenTable& t, const std::string& head, const std::string& value, int64_t now = kNow) {
  std::string raw = head + "\r\n";
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return false;
  return VerifyAzureSharedKey(t, p.head(), value, "acct", now, kSkew) != nullptr;
}

void TestSharedKey() {
  int64_t ms = 0;
  CHECK(ParseImfDate("Sun, 06 Dec 2026 14:30:00 GMT", ms) && ms == kNow);
  CHECK(ParseImfDate("Thu, 01 Jan 1970 00:00:00 GMT", ms) && ms == 0);
  CHECK(!ParseImfDate("Mon, 06 Dec 2026 14:30:00 GMT", ms));  // another day's name
  CHECK(!ParseImfDate("Sun, 6 Dec 2026 14:30:00 GMT", ms));
  CHECK(!ParseImfDate("Sun, 06 Dec 2026 14:30:00 UTC", ms));
  CHECK(!ParseImfDate("Sunday, 06-Dec-26 14:30:00 GMT", ms));
  CHECK(!ParseImfDate("Sun, 31 Nov 2026 14:30:00 GMT", ms));
  for (auto [head, want] : {std::pair{kSkGet, kSkGetString}, std::pair{kSkHead, kSkHeadString}}) {
    std::string raw = head + "\r\n", got;
    RequestParser p(ParserLimits{});
    CHECK(p.Parse(raw.data(), raw.size()) == RequestParser::kDone);
    CHECK(SharedKeyStringToSign(p.head(), "acct", got) && got == want);
  }
  auth::TokenTable t;
  t.Replace(true, Grants({"models"}));
  CHECK(SharedKeyVerified(t, kSkGet, "SharedKey acct:" + kSkGetSig));
  CHECK(SharedKeyVerified(t, kSkHead, "SharedKey acct:" + kSkHeadSig));
  CHECK(SharedKeyVerified(t, kSkGet, "SharedKey acct:" + kSkGetSig, kNow + kSkew));
  CHECK(!SharedKeyVerified(t, kSkGet, "SharedKey acct:" + kSkGetSig, kNow + kSkew + 1));  // skewed
  CHECK(!SharedKeyVerified(t, kSkGet, "SharedKey acct:" + kSkGetSig, kNow - kSkew - 1));
  CHECK(!SharedKeyVerified(t, kSkGet, "SharedKey other:" + kSkGetSig));    // another account
  CHECK(!SharedKeyVerified(t, kSkGet, "SharedKey acct:" + kSkHeadSig));    // another request's
  CHECK(!SharedKeyVerified(t, kSkGet, "SharedKey :" + kSkGetSig));
  CHECK(!SharedKeyVerified(t, kSkGet, "sharedkey acct:" + kSkGetSig));
  CHECK(!SharedKeyVerified(t, kSkGet + "x-ms-meta-b: 1\r\n", "SharedKey acct:" + kSkGetSig));  // a field added
  CHECK(!SharedKeyVerified(t, kSkGet + "x-ms-date: Sun, 06 Dec 2026 14:30:00 GMT\r\n", "SharedKey acct:" + kSkGetSig));
  std::string query = kSkGet;
  query.replace(query.find(" HTTP/1.1"), 0, "?timeout=30");
  CHECK(!SharedKeyVerified(t, query, "SharedKey acct:" + kSkGetSig));  // signed without it
  // The SDKs' timeout is in the canonicalized resource (shared-key.ts's string and signature for it).
  CHECK(SharedKeyVerified(t, query, "SharedKey acct:VXEIiYAHSDWFJT1Z0D+eX8PCWUs0LrwyU2JDDxspQ9A="));
  std::string with_timeout;
  {
    std::string raw = query + "\r\n";
    RequestParser p(ParserLimits{});
    CHECK(p.Parse(raw.data(), raw.size()) == RequestParser::kDone);
    CHECK(SharedKeyStringToSign(p.head(), "acct", with_timeout) && with_timeout == kSkGetString + "\ntimeout:30");
  }
  for (const char* q : {"?timeout=", "?timeout=3x", "?comp=metadata", "?timeout=30&timeout=30", "?Timeout=30"}) {
    std::string other = kSkGet;
    other.replace(other.find(" HTTP/1.1"), 0, q);
    CHECK(!SharedKeyVerified(t, other, "SharedKey acct:VXEIiYAHSDWFJT1Z0D+eX8PCWUs0LrwyU2JDDxspQ9A="));
  }
  auth::TokenTable other;
  other.Replace(true, Grants({"models"}, "another-token-0123456789abcdef"));
  CHECK(!SharedKeyVerified(other, kSkGet, "SharedKey acct:" + kSkGetSig));
}

struct World {
  std::shared_ptr<FastPath> fp = std::make_shared<FastPath>();
  std::vector<uint8_t> data = std::vector<uint8_t>(5000);
  World() {
    store::StoreOptions so;
    so.max_bytes = 1 << 20;
    std::string error;
    fp->store = store::Store::Create(so, &error);
    fp->bindings = std::make_shared<store::BindingTable>();
    fp->tokens = std::make_shared<auth::TokenTable>();
    fp->tokens->Replace(true, Grants({"models"}));
    fp->doors = std::make_shared<DoorRoutes>();
    fp->doors->azure = std::make_unique<AzureRoute>();
    fp->doors->azure->path = "/azure";
    fp->doors->azure->clock_ms = [] { return kNow; };
    fp->keep_alive_timeout_s = 5;
    store::ChunkId id;
    id.object.fill(3);
    id.index = 0;
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 5);
    fp->store->Insert(id, data.data(), data.size(), 0, "");
    auto b = std::make_shared<store::VersionBinding>();
    b->name = "models/llama/model.bin";
    b->object = id.object;
    b->etag = "0x8DC";
    b->size = data.size();
    b->chunk_size = 1 << 16;
    b->last_modified = "Thu, 02 Jan 2025 03:04:05 GMT";
    b->content_type = "application/octet-stream";
    b->deadline_ns = INT64_MAX;
    fp->bindings->Set(b);
  }
};

bool Answered(World& w, const std::string& target, const std::string& fields = "") {
  std::string raw = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + "\r\n";
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return false;
  FastAnswer a;
  return TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a) && a.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0;
}

bool Answered206(World& w, const std::string& head) {
  std::string raw = head + "\r\n";
  RequestParser p(ParserLimits{});
  if (p.Parse(raw.data(), raw.size()) != RequestParser::kDone) return false;
  FastAnswer a;
  return TryFastPath(*w.fp, p.head(), "Thu, 01 Jan 2026 00:00:00 GMT", a) && a.head.rfind("HTTP/1.1 206 ", 0) == 0 &&
         a.body_bytes == 100;
}

void TestThroughTheHook() {
  World w;
  const std::string blob = "/azure/acct/models/llama/model.bin";
  DoorStats& ds = w.fp->doors->stats;
  CHECK(Answered(w, blob + "?" + kBlobSas));
  CHECK(Answered(w, blob + "?" + kContainerSas));
  CHECK(Answered(w, blob + "?" + kAccountSas, "x-ms-version: 2025-01-05\r\n"));
  CHECK(Answered(w, blob, "Authorization: Bearer " + kToken + "\r\n"));
  CHECK(ds.azure_signed_hits == 4 && ds.azure_hits == 4 && ds.azure_signed_declined == 0);
  CHECK(!Answered(w, blob));                                                      // no credentials: 401
  CHECK(!Answered(w, blob, "Authorization: Bearer wrong-token-0123456789abcdef\r\n"));
  CHECK(!Answered(w, blob + "?" + kBlobSas, "Authorization: Bearer " + kToken + "\r\n"));  // bearer with a query
  CHECK(!Answered(w, blob, "Authorization: SharedKey acct:c2lnbmF0dXJl\r\n"));     // a wrong SharedKey
  CHECK(!Answered(w, blob + "?" + kBlobSas + "&comp=metadata"));
  CHECK(ds.azure_signed_declined == 5);
  CHECK(Answered206(w, kSkGet + "Authorization: SharedKey acct:" + kSkGetSig + "\r\n"));
  CHECK(ds.azure_signed_hits == 5);
  w.fp->tokens->Replace(true, Grants({"datasets"}));  // the token's scope: another container
  CHECK(!Answered(w, blob + "?" + kBlobSas));
  CHECK(!Answered(w, blob, "Authorization: Bearer " + kToken + "\r\n"));
  CHECK(!Answered206(w, kSkGet + "Authorization: SharedKey acct:" + kSkGetSig + "\r\n"));
  CHECK(ds.azure_signed_declined == 8 && ds.azure_signed_hits == 5);
  CHECK(w.fp->store->outstanding_refs() == 0);
}

}  // namespace

int main() {
  TestForms();
  TestSas();
  TestSharedKey();
  TestThroughTheHook();
  return CheckResult("azure_auth_test");
}
