// Azure Storage authentication of a Get Blob on the native fast path, as
// src/azure-blob/shared-key.ts checks it, for a node with tokens: a SAS
// (service SAS `sr=b|c` and account SAS `ss`/`srt`, signed version 2020-12-06
// or later) and SharedKey (`Authorization: SharedKey {account}:{sig}` over
// the canonicalized headers and resource) verified with HMAC-SHA256 under
// each token's bytes (Azure names no key, so every token is tried, each
// compared in constant time, the first match wins).
//
// This side only ever says yes. Every failure — a wrong signature, an
// expired or not yet valid SAS, a permission, service or resource type
// missing, a container outside the token's scope — and anything unusual (a
// repeated or unknown query parameter, a time JavaScript's Date.parse might
// read otherwise, a signature not in canonical base64, `spr=https` (the fast
// path is plain HTTP), `sip` (JavaScript checks the peer), more than
// kMaxAzureSigningKeys tokens, a SharedKey request with a query other than
// `timeout`, an x-ms-date not in IMF-fixdate form, more than
// kMaxSharedKeyMsHeaders x-ms- fields) goes to JavaScript, which answers the
// Azure error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_table.h"
#include "http/doors/sigv4.h"

namespace weightcache::http::doors {

// The oldest SAS version whose string-to-sign the door knows (shared-key.ts MIN_SAS_VERSION).
inline constexpr std::string_view kMinSasVersion = "2020-12-06";
// Most tokens tried per request on the I/O thread (one HMAC each); a node with more leaves Azure
// signatures to JavaScript.
inline constexpr size_t kMaxAzureSigningKeys = 64;
// Most bytes of any one SAS parameter the native side reads (a longer one: JavaScript's).
inline constexpr size_t kMaxSasValueBytes = 512;

// Most distinct x-ms-* field names a SharedKey request may carry on the fast path.
inline constexpr size_t kMaxSharedKeyMsHeaders = 32;

struct AzureBlobName {
  std::string_view account, container, blob;  // as in the path (plain segments: decoded == raw)
};

// The SAS's string-to-sign as shared-key.ts builds it for a read of `n`; false where the query is not
// a SAS the native side verifies (see above).
bool AzureSasStringToSign(const std::vector<QueryPair>& q, const AzureBlobName& n, std::string& out);

// ISO 8601 `YYYY-MM-DDTHH:MM:SSZ` (the form the SDKs sign) as epoch ms; false otherwise or for a date
// that does not exist (JavaScript's Date.parse decides those).
bool ParseSasTime(std::string_view s, int64_t& ms);

// Standard base64 with padding of `bytes`.
std::string Base64(const uint8_t* bytes, size_t len);

// The grant of a SAS read of `n` at `now_ms` (azure.maxClockSkew `skew_ms` before st), or null.
std::shared_ptr<const auth::TokenGrant> VerifyAzureSas(const auth::TokenTable& tokens, const std::vector<QueryPair>& q,
                                                       const AzureBlobName& n, int64_t now_ms, int64_t skew_ms);

// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, the day name the date's own) as epoch ms; false
// otherwise (JavaScript's Date.parse decides those).
bool ParseImfDate(std::string_view s, int64_t& ms);

// The SharedKey string-to-sign shared-key.ts sharedKeyString builds for a request without a query or
// with `timeout={digits}` (false for another query or a field the native side does not canonicalize
// as JavaScript does).
bool SharedKeyStringToSign(const RequestHead& h, std::string_view account, std::string& out);

// The grant of a SharedKey request (`value` is the Authorization field's) for `account` at `now_ms`
// (x-ms-date within `skew_ms`), or null.
std::shared_ptr<const auth::TokenGrant> VerifyAzureSharedKey(const auth::TokenTable& tokens, const RequestHead& h,
                                                             std::string_view value, std::string_view account,
                                                             int64_t now_ms, int64_t skew_ms);

}  // namespace weightcache::http::doors
