#include "http/doors/sigv4.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "auth/sha256.h"
#include "http/fast_fields.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// Signing keys a thread keeps (one per token, day and region: a few suffice).
constexpr size_t kSigningKeyCache = 8;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF): what decodeURIComponent accepts.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07;
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; k++) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// decodeURIComponent on printable ASCII input; false where it throws.
bool PercentDecode(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return ValidUtf8(out);
}

bool PrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// JavaScript's trim() for a plain value (SP and HTAB are the only white space it can hold).
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const QueryPair* Param(const std::vector<QueryPair>& q, std::string_view key) {
  for (const QueryPair& p : q) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

const Header* FirstHeader(const RequestHead& h, std::string_view name) {
  for (const Header& x : h.headers) {
    if (IEquals(x.name, name)) return &x;
  }
  return nullptr;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

struct Credential {
  std::string_view key_id, date, region;
};

// verify.ts parseCredential: ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request, the date the request's.
bool ParseCredential(std::string_view c, std::string_view amz_date, Credential& out) {
  std::vector<std::string_view> parts = Split(c, '/');
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[3] != "s3") return false;
  if (parts[1] != amz_date.substr(0, 8)) return false;
  out = {parts[0], parts[1], parts[2]};
  return true;
}

// verify.ts parseAuthorization on what follows "AWS4-HMAC-SHA256 ": comma-separated name=value, trimmed, the last wins.
bool ParseAuthorization(std::string_view rest, std::string_view& credential, std::string_view& signed_headers,
                        std::string_view& signature) {
  credential = signed_headers = signature = {};
  for (std::string_view part : Split(rest, ',')) {
    size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string_view name = Trim(part.substr(0, eq)), value = Trim(part.substr(eq + 1));
    if (name == "Credential") credential = value;
    else if (name == "SignedHeaders") signed_headers = value;
    else if (name == "Signature") signature = value;
  }
  return !credential.empty() && !signed_headers.empty() && !signature.empty();
}

using Key = auth::Digest;

Key Hmac(const Key& key, std::string_view data) { return auth::HmacSha256(key.data(), key.size(), data.data(), data.size()); }

// The calling thread's signing keys (one per token, day and region: a few suffice). Emptied, secrets
// overwritten, when the token generation moves (a TokenTable was replaced): keys are only ever looked
// up with a secret the current table holds, and a removed token's secret and keys are not kept.
struct SigningKeyCache {
  struct Entry {
    std::string secret, date, region;
    Key key;
  };
  std::vector<Entry> entries;
  size_t next = 0;
  uint64_t generation = 0;

  void Clear() {
    for (Entry& e : entries) {
      std::fill(e.secret.begin(), e.secret.end(), '\0');
      e.key.fill(0);
    }
    entries.clear();
    next = 0;
  }
  ~SigningKeyCache() { Clear(); }
};

SigningKeyCache& RawThreadCache() {
  thread_local SigningKeyCache cache;
  return cache;
}

size_t ThreadCacheEntries() { return RawThreadCache().entries.size(); }

SigningKeyCache& ThreadCache() {
  SigningKeyCache& cache = RawThreadCache();
  uint64_t g = auth::TokenGeneration();
  if (cache.generation != g) {
    cache.Clear();
    cache.generation = g;
  }
  return cache;
}

// sigv4.ts signingKey, cached per thread by (secret, date, region): a token's key changes daily.
Key SigningKey(const auth::TokenGrant& g, std::string_view date, std::string_view region) {
  SigningKeyCache& cache = ThreadCache();
  for (const SigningKeyCache::Entry& e : cache.entries) {
    if (e.date == date && e.region == region && e.secret == g.secret) return e.key;
  }
  std::string k0 = "AWS4" + g.secret;
  Key k = auth::HmacSha256(k0.data(), k0.size(), date.data(), date.size());
  std::fill(k0.begin(), k0.end(), '\0');
  k = Hmac(k, region);
  k = Hmac(k, "s3");
  k = Hmac(k, "aws4_request");
  SigningKeyCache::Entry e{g.secret, std::string(date), std::string(region), k};
  if (cache.entries.size() < kSigningKeyCache) {
    cache.entries.push_back(std::move(e));
  } else {
    std::fill(cache.entries[cache.next].secret.begin(), cache.entries[cache.next].secret.end(), '\0');
    cache.entries[cache.next] = std::move(e);
    cache.next = (cache.next + 1) % kSigningKeyCache;
  }
  return k;
}

void Hex(const auth::Digest& d, char out[64]) {
  static const char* kHex = "0123456789abcdef";
  for (size_t i = 0; i < d.size(); i++) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
}

// sigv4.ts canonicalHeaderValue of one value: trimmed, runs of spaces collapsed.
void AppendHeaderValue(std::string& s, std::string_view v) {
  v = Trim(v);
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == ' ' && i + 1 < v.size() && v[i + 1] == ' ') continue;
    s.push_back(v[i]);
  }
}

// verify.ts check(): true when `given` is the signature of one of the request's URIs.
bool SignatureMatches(const RequestHead& h, const auth::TokenGrant& g, const Credential& cred, std::string_view amz_date,
                      std::string_view signed_headers, const std::string& query, std::string_view payload_hash,
                      std::string_view given, bool& malformed) {
  malformed = false;
  std::vector<std::string_view> names = Split(signed_headers, ';');
  if (names.size() > kMaxSignedHeaders) {
    malformed = true;
    return false;
  }
  bool has_host = false;
  std::string headers, list;
  for (size_t i = 0; i < names.size(); i++) {
    std::string name(names[i]);
    for (char& c : name) c = AsciiLower(c);
    has_host |= name == "host";
    headers.append(name).push_back(':');
    bool first = true;
    for (const Header& x : h.headers) {
      if (!IEquals(x.name, name)) continue;
      if (!PlainValue(x.value)) {
        malformed = true;  // JavaScript's trim() knows more white space than SP and HTAB
        return false;
      }
      if (!first) headers.push_back(',');
      AppendHeaderValue(headers, x.value);
      first = false;
    }
    headers.push_back('\n');
    if (i > 0) list.push_back(';');
    list.append(name);
  }
  if (!has_host) {
    malformed = true;  // JavaScript: AuthorizationHeaderMalformed
    return false;
  }
  // Hex signatures are 64 lower-case digits: any other length cannot match, whatever the secret.
  if (given.size() != 64) return false;
  Key key = SigningKey(g, cred.date, cred.region);
  std::string scope;
  scope.append(cred.date).append("/").append(cred.region).append("/s3/aws4_request");
  std::string uris[2] = {std::string(h.path), ReencodePath(h.path)};
  int tries = uris[1] == uris[0] ? 1 : 2;
  uint8_t ok = 0;
  for (int t = 0; t < tries; t++) {
    std::string creq;
    creq.reserve(h.method.size() + uris[t].size() + query.size() + headers.size() + list.size() + payload_hash.size() + 8);
    creq.append(h.method).append("\n").append(uris[t]).append("\n").append(query).append("\n");
    creq.append(headers).append("\n").append(list).append("\n").append(payload_hash);
    char creq_hex[64];
    Hex(auth::Sha256(creq.data(), creq.size()), creq_hex);
    std::string to_sign;
    to_sign.append(kAlgorithm).append("\n").append(amz_date).append("\n").append(scope).append("\n");
    to_sign.append(creq_hex, 64);
    char sig[64];
    Hex(Hmac(key, to_sign), sig);
    // Constant time: every byte compared, no early exit.
    uint8_t diff = 0;
    for (size_t i = 0; i < 64; i++) diff |= static_cast<uint8_t>(sig[i] ^ given[i]);
    ok |= static_cast<uint8_t>(diff == 0);
  }
  return ok != 0;
}

SigV4Check Fail(SigV4Check c, SigV4Outcome o) {
  c.outcome = o;
  c.grant.reset();
  return c;
}

// Only digits, 1 to 7 of them: what Number() reads as the same integer JavaScript checks.
bool Seconds(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 7) return false;
  out = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

void ForgetStaleSigningKeys() { ThreadCache(); }

size_t CachedSigningKeysForTest() { return ThreadCacheEntries(); }

bool DecodeQuery(std::string_view raw, std::vector<QueryPair>& out) {
  out.clear();
  if (!PrintableAscii(raw)) return false;
  for (std::string_view part : Split(raw, '&')) {
    if (part.empty()) continue;
    if (out.size() == kMaxQueryParams) return false;
    size_t eq = part.find('=');
    QueryPair p;
    std::string_view k = eq == std::string_view::npos ? part : part.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (!PercentDecode(k, p.key) || !PercentDecode(v, p.value)) return false;
    out.push_back(std::move(p));
  }
  return true;
}

void UriEncode(std::string_view bytes, bool keep_slash, std::string& out) {
  static const char* kHex = "0123456789ABCDEF";
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                 c == '_' || c == '~' || (keep_slash && c == '/');
    if (plain) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

std::string CanonicalQuery(const std::vector<QueryPair>& pairs, std::string_view skip) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(pairs.size());
  for (const QueryPair& p : pairs) {
    if (!skip.empty() && p.key == skip) continue;
    std::pair<std::string, std::string> e;
    UriEncode(p.key, false, e.first);
    UriEncode(p.value, false, e.second);
    enc.push_back(std::move(e));
  }
  std::sort(enc.begin(), enc.end());  // by key, then value: byte order is JavaScript's order on ASCII
  std::string out;
  for (size_t i = 0; i < enc.size(); i++) {
    if (i > 0) out.push_back('&');
    out.append(enc[i].first).append("=").append(enc[i].second);
  }
  return out;
}

std::string ReencodePath(std::string_view path) {
  std::string out, seg;
  std::vector<std::string_view> parts = Split(path, '/');
  for (size_t i = 0; i < parts.size(); i++) {
    if (!PrintableAscii(parts[i]) || !PercentDecode(parts[i], seg)) return std::string(path);
    if (i > 0) out.push_back('/');
    UriEncode(seg, false, out);
  }
  return out;
}

bool ParseAmzDate(std::string_view s, int64_t& ms) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  for (size_t i = 0; i < 15; i++) {
    if (i != 8 && !IsDigit(s[i])) return false;
  }
  auto num = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (s[at + i] - '0');
    return v;
  };
  int y = num(0, 4), mo = num(4, 2), d = num(6, 2), hh = num(9, 2), mi = num(11, 2), se = num(13, 2);
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap ? 1 : 0) || hh > 23 || mi > 59 ||
      se > 59) {
    return false;
  }
  // Days since 1970-01-01 (the civil-from-days inverse, proleptic Gregorian, as Date.UTC).
  int yy = mo <= 2 ? y - 1 : y;
  int era = yy / 400;
  int yoe = yy - era * 400;
  int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  ms = ((days * 24 + hh) * 60 + mi) * 60'000LL + se * 1000LL;
  return true;
}

SigV4Check VerifySigV4(const auth::TokenTable& tokens, const RequestHead& h, int64_t now_ms, int64_t max_skew_ms) {
  ForgetStaleSigningKeys();
  SigV4Check c;
  if (h.has_query && !DecodeQuery(h.query, c.query)) return Fail(std::move(c), SigV4Outcome::kMalformed);
  // verify.ts authenticate(): an X-Amz-Algorithm parameter makes it a presigned request, whatever else it holds.
  std::string_view amz_date, credential, signed_headers, signature, payload_hash;
  std::string canonical_query;
  if (Param(c.query, "X-Amz-Algorithm") != nullptr) {
    c.presigned = true;
    // A repeated signing parameter: JavaScript reads the first; the native side does not guess.
    for (std::string_view k : {"X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature",
                               "X-Amz-SignedHeaders", "X-Amz-Credential", "X-Amz-Content-Sha256"}) {
      if (std::count_if(c.query.begin(), c.query.end(), [&](const QueryPair& p) { return p.key == k; }) > 1) {
        return Fail(std::move(c), SigV4Outcome::kMalformed);
      }
    }
    const QueryPair* alg = Param(c.query, "X-Amz-Algorithm");
    const QueryPair* date = Param(c.query, "X-Amz-Date");
    const QueryPair* exp = Param(c.query, "X-Amz-Expires");
    const QueryPair* sig = Param(c.query, "X-Amz-Signature");
    const QueryPair* sh = Param(c.query, "X-Amz-SignedHeaders");
    const QueryPair* cred = Param(c.query, "X-Amz-Credential");
    const QueryPair* ph = Param(c.query, "X-Amz-Content-Sha256");
    int64_t at = 0, expires = 0;
    if (alg->value != kAlgorithm || !date || !ParseAmzDate(date->value, at) || !exp || !Seconds(exp->value, expires) ||
        expires < 1 || expires > kMaxPresignedExpiryS || !sig || sig->value.empty() || !sh || sh->value.empty() || !cred) {
      return Fail(std::move(c), SigV4Outcome::kMalformed);
    }
    if (now_ms > at + expires * 1000 || at - now_ms > max_skew_ms) return Fail(std::move(c), SigV4Outcome::kOutOfWindow);
    amz_date = date->value;
    credential = cred->value;
    signed_headers = sh->value;
    signature = sig->value;
    payload_hash = ph ? std::string_view(ph->value) : kUnsignedPayload;
    canonical_query = CanonicalQuery(c.query, "X-Amz-Signature");
  } else {
    const Header* auth = FirstHeader(h, "authorization");
    if (!auth) return Fail(std::move(c), SigV4Outcome::kUnsigned);
    std::string_view v = auth->value;
    if (!PlainValue(v) || v.size() <= kAlgorithm.size() || v.substr(0, kAlgorithm.size()) != kAlgorithm ||
        v[kAlgorithm.size()] != ' ' ||
        !ParseAuthorization(v.substr(kAlgorithm.size() + 1), credential, signed_headers, signature)) {
      return Fail(std::move(c), SigV4Outcome::kMalformed);
    }
    const Header* date = FirstHeader(h, "x-amz-date");
    int64_t at = 0;
    if (!date || !PlainValue(date->value) || !ParseAmzDate(date->value, at)) return Fail(std::move(c), SigV4Outcome::kMalformed);
    if (now_ms - at > max_skew_ms || at - now_ms > max_skew_ms) return Fail(std::move(c), SigV4Outcome::kOutOfWindow);
    const Header* ph = FirstHeader(h, "x-amz-content-sha256");
    if (!ph || !PlainValue(ph->value)) return Fail(std::move(c), SigV4Outcome::kMalformed);
    amz_date = date->value;
    payload_hash = ph->value;
    canonical_query = CanonicalQuery(c.query, {});
  }
  Credential cred;
  if (!ParseCredential(credential, amz_date, cred)) return Fail(std::move(c), SigV4Outcome::kMalformed);
  std::shared_ptr<const auth::TokenGrant> g = tokens.SigningKey(cred.key_id);
  if (!g) return Fail(std::move(c), SigV4Outcome::kUnknownKey);
  bool malformed = false;
  if (!SignatureMatches(h, *g, cred, amz_date, signed_headers, canonical_query, payload_hash, signature, malformed)) {
    return Fail(std::move(c), malformed ? SigV4Outcome::kMalformed : SigV4Outcome::kMismatch);
  }
  c.outcome = SigV4Outcome::kVerified;
  c.grant = std::move(g);
  return c;
}

}  // namespace weightcache::http::doors
