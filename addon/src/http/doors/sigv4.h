// AWS Signature Version 4 as the S3 door checks it (src/s3/verify.ts and
// src/s3/sigv4.ts), for signed GetObject / HeadObject on the native fast
// path: the header form (`Authorization: AWS4-HMAC-SHA256 Credential=…,
// SignedHeaders=…, Signature=…` with X-Amz-Date and X-Amz-Content-SHA256)
// and the presigned form (`X-Amz-Algorithm`, `X-Amz-Credential`,
// `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`).
//
// The canonical request is built exactly as the JavaScript verifier builds
// it: the path as sent and then re-encoded (both tried), the decoded query
// pairs encoded and sorted, the signed headers in the order the client lists
// them with their values trimmed and runs of spaces collapsed, the payload
// hash as sent (UNSIGNED-PAYLOAD by default for presigned URLs). The signing
// key is derived from the token (the secret access key) found by its key id;
// signatures are compared in constant time.
//
// This side only ever says yes. Every failure — a wrong signature, an
// expired or not yet valid URL, a skewed clock, a malformed Authorization or
// credential, an unknown key — and anything unusual (a value JavaScript
// would read differently, a repeated parameter, a date out of range) is
// kDecline: the request goes to JavaScript, which answers the S3 error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_table.h"
#include "http/parser.h"

namespace weightcache::http::doors {

// Most query parameters a request may carry (src/http/request.ts MAX_QUERY_PARAMS).
inline constexpr size_t kMaxQueryParams = 64;
// Most signed header names the native side checks (more: JavaScript's).
inline constexpr size_t kMaxSignedHeaders = 32;
// S3's limit on a presigned URL's lifetime (verify.ts MAX_PRESIGNED_EXPIRY_S).
inline constexpr int64_t kMaxPresignedExpiryS = 7 * 24 * 3600;

struct QueryPair {
  std::string key;    // decoded
  std::string value;  // decoded
};

// The raw query as request.ts parseQuery reads it (split on '&', empty parts
// dropped, each part's key and value percent-decoded as decodeURIComponent
// does). False where JavaScript would refuse it (malformed %, not UTF-8,
// more than kMaxQueryParams) or might read it differently (a byte outside
// printable ASCII).
bool DecodeQuery(std::string_view raw, std::vector<QueryPair>& out);

// sigv4.ts uriEncode: every byte but A-Z a-z 0-9 - . _ ~ as %XX.
void UriEncode(std::string_view bytes, bool keep_slash, std::string& out);

// sigv4.ts canonicalQuery of the pairs, leaving out those whose key is `skip` (if not empty).
std::string CanonicalQuery(const std::vector<QueryPair>& pairs, std::string_view skip);

// verify.ts reencode: each '/'-separated segment decoded and encoded again; the path itself when a
// segment does not decode.
std::string ReencodePath(std::string_view path);

// sigv4.ts parseAmzDate for a real date (YYYYMMDDTHHMMSSZ, year ≥ 1970): epoch ms. False otherwise
// (JavaScript's Date.UTC would roll an impossible date over: those go to it).
bool ParseAmzDate(std::string_view s, int64_t& ms);

enum class SigV4Outcome : uint8_t {
  kVerified,
  kUnsigned,     // neither form: JavaScript answers (AccessDenied, or a V2 URL's InvalidRequest)
  kMalformed,    // a field JavaScript refuses or might read otherwise
  kUnknownKey,   // no token has this key id
  kOutOfWindow,  // skewed clock, expired, or not yet valid
  kMismatch,     // the signature is not the one the secret gives
};

struct SigV4Check {
  SigV4Outcome outcome = SigV4Outcome::kMalformed;
  std::shared_ptr<const auth::TokenGrant> grant;  // kVerified: the signer's grant
  std::vector<QueryPair> query;                   // the decoded query (when it decoded)
  bool presigned = false;
};

// Verifies a request's signature at wall-clock `now_ms` with the door's `max_skew_ms` (s3.maxClockSkew).
SigV4Check VerifySigV4(const auth::TokenTable& tokens, const RequestHead& h, int64_t now_ms, int64_t max_skew_ms);

// Drops the calling thread's cached signing keys (and the secrets they were derived from) if the
// tokens changed since they were derived (auth::TokenGeneration moved). VerifySigV4 does it first;
// the HTTP I/O threads also do it on their tick, so a removed token's keys leave memory within one
// tick even on a thread that verifies nothing more.
void ForgetStaleSigningKeys();

// The calling thread's cached signing keys, as they are (for the C++ tests).
size_t CachedSigningKeysForTest();

}  // namespace weightcache::http::doors
