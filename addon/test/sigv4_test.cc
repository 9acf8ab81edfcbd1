// Unit tests of SigV4 on the native side (addon/src/http/doors/sigv4.h):
// HMAC-SHA256 against RFC 4231, the query decoding and canonical pieces
// against src/s3/sigv4.ts, AWS's published GetObject example, and signatures
// made by the project's own JavaScript signer (src/s3/sigv4.ts signedHeaders
// and presignedQuery, fixed clock) verified here — plus every reason a
// signed request is declined (left to JavaScript): a wrong secret, an
// unknown key, a tampered request, the date window, expiry, malformed
// fields. Run by npm test (test/native/cpp.test.ts) plainly and under
// ASan+UBSan.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "auth/sha256.h"
#include "auth/token_table.h"
#include "check.h"
#include "http/doors/sigv4.h"
#include "http/parser.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {

std::string Hex(const auth::Digest& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) s.push_back(k[b >> 4]), s.push_back(k[b & 15]);
  return s;
}

std::string HmacHex(const std::string& key, const std::string& data) {
  return Hex(auth::HmacSha256(key.data(), key.size(), data.data(), data.size()));
}

void TestHmac() {
  CHECK(HmacHex(std::string(20, '\x0b'), "Hi There") == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(HmacHex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(HmacHex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Longer than a block of data (node:crypto's answer).
  CHECK(HmacHex("k", std::string(200, 'x')) == "7f55b8eb9b40e1c69f5fa0f341afe350db760315c18608c430c5d1a4bbb043f8");
}

void TestPieces() {
  std::vector<QueryPair> q;
  CHECK(DecodeQuery("b=2&a=1&&x-id=GetObject&k%20=v%2Fw&e", q));
  CHECK(q.size() == 5 && q[3].key == "k " && q[3].value == "v/w" && q[4].key == "e" && q[4].value.empty());
  CHECK(CanonicalQuery(q, {}) == "a=1&b=2&e=&k%20=v%2Fw&x-id=GetObject");
  CHECK(CanonicalQuery(q, "b") == "a=1&e=&k%20=v%2Fw&x-id=GetObject");
  CHECK(DecodeQuery("a=%C3%A9", q) && q[0].value == "\xc3\xa9");
  CHECK(CanonicalQuery(q, {}) == "a=%C3%A9");
  CHECK(!DecodeQuery("a=%zz", q));          // decodeURIComponent throws: JavaScript's 400
  CHECK(!DecodeQuery("a=%4", q));           // truncated escape
  CHECK(!DecodeQuery("a=%C3", q));          // not UTF-8
  CHECK(!DecodeQuery("a=%ED%A0%80", q));    // a surrogate
  CHECK(!DecodeQuery("a=%C0%80", q));       // overlong
  CHECK(!DecodeQuery("a=\xc3\xa9", q));     // raw non-ASCII: JavaScript might read it otherwise
  CHECK(!DecodeQuery("a=b c", q));
  std::string many;
  for (size_t i = 0; i <= kMaxQueryParams; i++) many += "p" + std::to_string(i) + "=1&";
  CHECK(!DecodeQuery(many, q));             // past MAX_QUERY_PARAMS
  std::string enc;
  UriEncode("a b/c~d+e", false, enc);
  CHECK(enc == "a%20b%2Fc~d%2Be");
  enc.clear();
  UriEncode("a b/c", true, enc);
  CHECK(enc == "a%20b/c");
  CHECK(ReencodePath("/s3/models/w+x.bin") == "/s3/models/w%2Bx.bin");
  CHECK(ReencodePath("/s3/a%20b/c") == "/s3/a%20b/c");
  CHECK(ReencodePath("/s3/a%zz/c") == "/s3/a%zz/c");  // does not decode: the path itself
  int64_t ms = 0;
  CHECK(ParseAmzDate("20130524T000000Z", ms) && ms == 1369353600000LL);
  CHECK(ParseAmzDate("20240229T235959Z", ms) && ms == 1709251199000LL);
  CHECK(!ParseAmzDate("20230229T000000Z", ms));  // Date.UTC would roll it to March 1st
  CHECK(!ParseAmzDate("20231301T000000Z", ms));
  CHECK(!ParseAmzDate("20230101T240000Z", ms));
  CHECK(!ParseAmzDate("00500101T000000Z", ms));  // Date.UTC reads year 50 as 1950
  CHECK(!ParseAmzDate("2023-01-01T00:00:00Z", ms));
  CHECK(!ParseAmzDate("20230101T000000", ms));
}

// The request's head as the I/O thread's parser gives it (the views point into `raw`).
struct Parsed {
  std::string raw;
  RequestParser parser{ParserLimits{}};
  bool ok = false;
  explicit Parsed(std::string r) : raw(std::move(r)) { ok = parser.Parse(raw.data(), raw.size()) == RequestParser::kDone; }
  const RequestHead& head() const { return parser.head(); }
};

const std::string kToken = "tok-signed-reads-0123456789abcdef";
const std::string kKeyId = "8d2d8d9759ff6acb48e4";  // keyIdOf(kToken)
constexpr int64_t kNow = 1796565600000LL;           // 2026-12-06T14:00:00Z, when the vectors were signed
constexpr int64_t kSkew = 900'000;

std::unique_ptr<auth::TokenTable> Table(const std::string& secret, std::vector<std::string> containers = {}) {
  auth::TokenGrant g;
  g.digest = auth::Sha256(secret.data(), secret.size());
  g.secret = secret;
  g.all_containers = containers.empty();
  g.containers = std::move(containers);
  auto t = std::make_unique<auth::TokenTable>();
  t->Replace(true, {g});
  return t;
}

// src/s3/sigv4.ts signedHeaders for GET /s3/models/dir/w+x.bin?x-id=GetObject with a Range and a
// value whose double space is collapsed when signed.
std::string HeaderSigned(const std::string& path = "/s3/models/dir/w+x.bin", const std::string& sig =
                             "23dddb46db174d2d798dcfecdbfa8da2cf628824ab246e234d680a52fcdc11b3",
                         const std::string& date = "20261206T140000Z", const std::string& extra = "") {
  return "GET " + path + "?x-id=GetObject HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nRange: bytes=0-99\r\n"
         "amz-sdk-invocation-id: abc  def\r\nx-amz-date: " + date + "\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
         "Authorization: AWS4-HMAC-SHA256 Credential=" + kKeyId + "/" + date.substr(0, 8) +
         "/us-east-1/s3/aws4_request, SignedHeaders=amz-sdk-invocation-id;host;range;x-amz-content-sha256;x-amz-date, "
         "Signature=" + sig + "\r\n" + extra + "\r\n";
}

const std::string kPresignedQuery =
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=8d2d8d9759ff6acb48e4%2F20261206%2Feu-west-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20261206T140000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=b4122a6e0b63301f5ffc56bc2b3a3b606a3f4de80fbf26c1e3fd95d395cedad6";

std::string Presigned(const std::string& query) {
  return "GET /s3/models/a.bin?" + query + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
}

SigV4Outcome Verify(const auth::TokenTable& t, const std::string& raw, int64_t now = kNow) {
  Parsed p(raw);
  if (!p.ok) return SigV4Outcome::kMalformed;
  return VerifySigV4(t, p.head(), now, kSkew).outcome;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

void TestHeaderForm() {
  auto owned = Table(kToken, {"models"});
  const auth::TokenTable& t = *owned;
  {
    Parsed p(HeaderSigned());
    CHECK(p.ok);
    SigV4Check c = VerifySigV4(t, p.head(), kNow, kSkew);
    CHECK(c.outcome == SigV4Outcome::kVerified);
    CHECK(c.grant && auth::GrantAllows(*c.grant, "models") && !auth::GrantAllows(*c.grant, "datasets"));
    CHECK(!c.presigned && c.query.size() == 1);
  }
  // Twice: the second time from the thread's signing-key cache.
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kVerified);
  // Within the window either way; outside it, JavaScript's RequestTimeTooSkewed.
  CHECK(Verify(t, HeaderSigned(), kNow + kSkew) == SigV4Outcome::kVerified);
  CHECK(Verify(t, HeaderSigned(), kNow - kSkew) == SigV4Outcome::kVerified);
  CHECK(Verify(t, HeaderSigned(), kNow + kSkew + 1) == SigV4Outcome::kOutOfWindow);
  CHECK(Verify(t, HeaderSigned(), kNow - kSkew - 1) == SigV4Outcome::kOutOfWindow);
  // The path re-encoded as S3 encodes keys (the client signed w%2Bx.bin, sent w+x.bin); a HEAD with the empty hash.
  CHECK(Verify(t, "HEAD /s3/models/dir/w+x.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nx-amz-date: 20261206T140000Z\r\n"
                  "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
                  "Authorization: AWS4-HMAC-SHA256 Credential=8d2d8d9759ff6acb48e4/20261206/us-east-1/s3/aws4_request, "
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                  "Signature=47afb787bc7579c181b96f7fe552759b281ed9e8e080f003a710c0b6749d7ca3\r\n\r\n") ==
        SigV4Outcome::kVerified);
  // A wrong secret (the same key id can only come from a table holding another secret under it: the
  // signature then does not match), an unknown key, tampering with any signed part.
  {
    auth::TokenGrant g;
    g.digest = auth::Sha256(kToken.data(), kToken.size());
    g.secret = "another-secret-0123456789abcdef";
    g.all_containers = true;
    auth::TokenTable wrong;
    wrong.Replace(true, {g});
    CHECK(Verify(wrong, HeaderSigned()) == SigV4Outcome::kMismatch);
  }
  CHECK(Verify(*Table("some-other-token-0123456789"), HeaderSigned()) == SigV4Outcome::kUnknownKey);
  CHECK(Verify(t, Replace(HeaderSigned(), "bytes=0-99", "bytes=0-98")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "/w+x.bin", "/w+y.bin")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "x-id=GetObject", "x-id=GetObjectX")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "abc  def", "abc def")) == SigV4Outcome::kVerified);  // collapsed alike
  CHECK(Verify(t, Replace(HeaderSigned(), "abc  def", "abcdef")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "Signature=23", "Signature=24")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "Signature=23dd", "Signature=23DD")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(HeaderSigned(), "Signature=23", "Signature=2")) == SigV4Outcome::kMismatch);
  // Malformed: JavaScript's 400s and 403s.
  CHECK(Verify(t, Replace(HeaderSigned(), "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 ")) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "Credential=", "Cred=")) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "/s3/aws4_request", "/s4/aws4_request")) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "/20261206/us-east-1", "/20261205/us-east-1")) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "x-amz-date: 20261206T140000Z", "x-amz-date: 20261206T140000")) ==
        SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n", "")) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Replace(HeaderSigned(), "SignedHeaders=amz-sdk-invocation-id;host;", "SignedHeaders=amz-sdk-invocation-id;")) ==
        SigV4Outcome::kMalformed);  // host must be signed
  CHECK(Verify(t, "GET /s3/models/a HTTP/1.1\r\nHost: h\r\n\r\n") == SigV4Outcome::kUnsigned);
  CHECK(Verify(t, "GET /s3/models/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc\r\n\r\n") == SigV4Outcome::kMalformed);
  // Auth off: nothing is a signing key.
  auth::TokenTable off;
  CHECK(Verify(off, HeaderSigned()) == SigV4Outcome::kUnknownKey);
}

void TestPresigned() {
  auto owned = Table(kToken);
  const auth::TokenTable& t = *owned;
  CHECK(Verify(t, Presigned(kPresignedQuery)) == SigV4Outcome::kVerified);
  {
    Parsed p(Presigned(kPresignedQuery));
    SigV4Check c = VerifySigV4(t, p.head(), kNow, kSkew);
    CHECK(c.presigned && c.query.size() == 6);
  }
  // Expiry: valid to the last millisecond, expired after; not valid before X-Amz-Date minus the skew.
  CHECK(Verify(t, Presigned(kPresignedQuery), kNow + 3600'000) == SigV4Outcome::kVerified);
  CHECK(Verify(t, Presigned(kPresignedQuery), kNow + 3600'001) == SigV4Outcome::kOutOfWindow);
  CHECK(Verify(t, Presigned(kPresignedQuery), kNow - kSkew) == SigV4Outcome::kVerified);
  CHECK(Verify(t, Presigned(kPresignedQuery), kNow - kSkew - 1) == SigV4Outcome::kOutOfWindow);
  // Tampering: another expiry, another key, another parameter added.
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "Expires=3600", "Expires=3601"))) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Replace(Presigned(kPresignedQuery), "/a.bin", "/b.bin")) == SigV4Outcome::kMismatch);
  CHECK(Verify(t, Presigned(kPresignedQuery + "&x-id=GetObject")) == SigV4Outcome::kMismatch);
  // The parameters may come in any order (the canonical query sorts them).
  CHECK(Verify(t, Presigned("X-Amz-Expires=3600&" + Replace(kPresignedQuery, "&X-Amz-Expires=3600", ""))) ==
        SigV4Outcome::kVerified);
  // Malformed: JavaScript's AuthorizationQueryParametersError.
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "Expires=3600", "Expires=0"))) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "Expires=3600", "Expires=604801"))) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "Expires=3600", "Expires=0x10"))) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "Algorithm=AWS4-HMAC-SHA256", "Algorithm=AWS4"))) ==
        SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(kPresignedQuery + "&X-Amz-Expires=3600")) == SigV4Outcome::kMalformed);  // repeated
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "&X-Amz-SignedHeaders=host", ""))) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(Replace(kPresignedQuery, "%2Fs3%2F", "%2Fs4%2F"))) == SigV4Outcome::kMalformed);
  CHECK(Verify(t, Presigned(kPresignedQuery + "&bad=%zz")) == SigV4Outcome::kMalformed);
}

// AWS's published GetObject example (SigV4 documentation, "Example: GET Object"): the access key id
// is in no signed string of the header form, so a table keyed by the secret's own key id verifies it.
void TestAwsExample() {
  const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  auto owned = Table(secret);
  const auth::TokenTable& t = *owned;
  std::string key_id = auth::KeyIdOf(auth::Sha256(secret.data(), secret.size()));
  std::string raw =
      "GET /test.txt HTTP/1.1\r\nHost: examplebucket.s3.amazonaws.com\r\nRange: bytes=0-9\r\n"
      "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
      "x-amz-date: 20130524T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + key_id +
      "/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41\r\n\r\n";
  CHECK(Verify(t, raw, 1369353600000LL) == SigV4Outcome::kVerified);
  CHECK(Verify(t, raw, 1369353600000LL + kSkew + 1) == SigV4Outcome::kOutOfWindow);
}

}  // namespace

// A token removed from the table (JavaScript replaced the set) stops verifying at once, and the
// thread's cached signing keys (and the secret they came from) are dropped: none outlives the set.
void TestRemovedToken() {
  auth::TokenTable t;
  auth::TokenGrant g;
  g.digest = auth::Sha256(kToken.data(), kToken.size());
  g.secret = kToken;
  g.all_containers = true;
  auth::TokenGrant other;
  const std::string other_secret = "other-token-0123456789abcdef";
  other.digest = auth::Sha256(other_secret.data(), other_secret.size());
  other.secret = other_secret;
  other.all_containers = true;
  t.Replace(true, {g, other});
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kVerified);
  CHECK(Verify(t, Presigned(kPresignedQuery)) == SigV4Outcome::kVerified);
  CHECK(CachedSigningKeysForTest() == 2);  // us-east-1 and eu-west-1
  t.Replace(true, {other});
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kUnknownKey);
  CHECK(Verify(t, Presigned(kPresignedQuery)) == SigV4Outcome::kUnknownKey);
  CHECK(CachedSigningKeysForTest() == 0);
  // Back in the set: verified again (derived afresh).
  t.Replace(true, {g, other});
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kVerified);
  CHECK(CachedSigningKeysForTest() == 1);
  // A thread that verifies nothing more drops them on its tick (ForgetStaleSigningKeys).
  t.Replace(true, {other});
  CHECK(CachedSigningKeysForTest() == 1);
  ForgetStaleSigningKeys();
  CHECK(CachedSigningKeysForTest() == 0);
  // Auth turned off: nothing verifies.
  t.Replace(true, {g});
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kVerified);
  t.Replace(false, {});
  CHECK(Verify(t, HeaderSigned()) == SigV4Outcome::kUnknownKey);
  CHECK(CachedSigningKeysForTest() == 0);
}

int main() {
  TestHmac();
  TestPieces();
  TestHeaderForm();
  TestPresigned();
  TestAwsExample();
  TestRemovedToken();
  return CheckResult("sigv4_test");
}
