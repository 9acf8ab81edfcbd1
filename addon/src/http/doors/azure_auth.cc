#include "http/doors/azure_auth.h"

#include <algorithm>
#include <array>

#include "auth/sha256.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {
namespace {

// The parameters a SAS read may carry: any other (snapshot, comp, timeout, ...) is JavaScript's.
constexpr std::array<std::string_view, 17> kSasParams = {"sv",  "ss",  "srt", "sp",   "se",   "st",   "spr",  "sip", "sr",
                                                         "sig", "si",  "ses", "rscc", "rscd", "rsce", "rscl", "rsct"};

// Each SAS parameter's value ('' when absent); false for an unknown, repeated or overlong one.
bool SasParams(const std::vector<QueryPair>& q, std::array<std::string_view, kSasParams.size()>& v) {
  std::array<bool, kSasParams.size()> seen{};
  for (const QueryPair& p : q) {
    auto it = std::find(kSasParams.begin(), kSasParams.end(), p.key);
    if (it == kSasParams.end() || p.value.size() > kMaxSasValueBytes) return false;
    size_t i = static_cast<size_t>(it - kSasParams.begin());
    if (seen[i]) return false;
    seen[i] = true;
    v[i] = p.value;
  }
  return true;
}

size_t Idx(std::string_view name) {
  return static_cast<size_t>(std::find(kSasParams.begin(), kSasParams.end(), name) - kSasParams.begin());
}

void Join(std::string& out, std::initializer_list<std::string_view> lines) {
  bool first = true;
  for (std::string_view l : lines) {
    if (!first) out.push_back('\n');
    out.append(l);
    first = false;
  }
}

int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool Digits(std::string_view s, size_t at, size_t n, int64_t& v) {
  v = 0;
  for (size_t i = at; i < at + n; i++) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

bool ParseSasTime(std::string_view s, int64_t& ms) {
  // 0123456789012345678 9
  // YYYY-MM-DDTHH:MM:SSZ
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z') {
    return false;
  }
  int64_t y, mo, d, h, mi, se;
  if (!Digits(s, 0, 4, y) || !Digits(s, 5, 2, mo) || !Digits(s, 8, 2, d) || !Digits(s, 11, 2, h) ||
      !Digits(s, 14, 2, mi) || !Digits(s, 17, 2, se)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || se > 59) {
    return false;
  }
  ms = ((DaysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + se * 1000;
  return true;
}

std::string Base64(const uint8_t* b, size_t len) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = static_cast<uint32_t>(b[i]) << 16;
    if (i + 1 < len) v |= static_cast<uint32_t>(b[i + 1]) << 8;
    if (i + 2 < len) v |= b[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < len ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < len ? kAlphabet[v & 63] : '=');
  }
  return out;
}

bool AzureSasStringToSign(const std::vector<QueryPair>& q, const AzureBlobName& n, std::string& out) {
  std::array<std::string_view, kSasParams.size()> v{};
  if (!SasParams(q, v)) return false;
  auto p = [&](std::string_view name) { return v[Idx(name)]; };
  // The restrictions the fast path cannot honour as JavaScript does: spr=https (it is plain HTTP) and
  // sip (the peer's address is JavaScript's to check); a malformed spr is JavaScript's error.
  if (!p("sip").empty() || !(p("spr").empty() || p("spr") == "https,http")) return false;
  if (p("sv") < kMinSasVersion || p("sig").empty()) return false;
  out.clear();
  if (!p("ss").empty() || !p("srt").empty()) {
    // Account SAS: the blob service and the object resource type (a read).
    if (p("ss").find('b') == std::string_view::npos || p("srt").find('o') == std::string_view::npos) return false;
    Join(out, {n.account, p("sp"), p("ss"), p("srt"), p("st"), p("se"), p("sip"), p("spr"), p("sv"), p("ses"), ""});
    return true;
  }
  std::string_view sr = p("sr");
  if (sr != "b" && sr != "c") return false;
  std::string resource = "/blob/";
  resource.append(n.account).append("/").append(n.container);
  if (sr == "b") resource.append("/").append(n.blob);
  Join(out, {p("sp"), p("st"), p("se"), resource, p("si"), p("sip"), p("spr"), p("sv"), sr, "" /* snapshot */, p("ses"),
             p("rscc"), p("rscd"), p("rsce"), p("rscl"), p("rsct")});
  return true;
}

std::shared_ptr<const auth::TokenGrant> VerifyAzureSas(const auth::TokenTable& tokens, const std::vector<QueryPair>& q,
                                                       const AzureBlobName& n, int64_t now_ms, int64_t skew_ms) {
  std::string to_sign;
  if (!AzureSasStringToSign(q, n, to_sign)) return nullptr;
  std::string_view sp, se, st, sig;
  for (const QueryPair& p : q) {
    if (p.key == "sp") sp = p.value;
    else if (p.key == "se") se = p.value;
    else if (p.key == "st") st = p.value;
    else if (p.key == "sig") sig = p.value;
  }
  int64_t expiry = 0, start = 0;
  if (!ParseSasTime(se, expiry) || (!st.empty() && !ParseSasTime(st, start))) return nullptr;
  if (now_ms > expiry || (!st.empty() && start - skew_ms > now_ms)) return nullptr;
  if (sp.find('r') == std::string_view::npos) return nullptr;
  // An HMAC-SHA256 is 32 bytes: 44 base64 characters. Each token's is computed and compared whole.
  if (sig.size() != 44) return nullptr;
  std::vector<std::shared_ptr<const auth::TokenGrant>> keys = tokens.SigningKeys();
  if (keys.size() > kMaxAzureSigningKeys) return nullptr;
  std::shared_ptr<const auth::TokenGrant> found;
  for (const auto& k : keys) {
    auth::Digest mac = auth::HmacSha256(k->secret.data(), k->secret.size(), to_sign.data(), to_sign.size());
    std::string b64 = Base64(mac.data(), mac.size());
    unsigned diff = 0;
    for (size_t i = 0; i < 44; i++) diff |= static_cast<unsigned char>(b64[i] ^ sig[i]);
    if (diff == 0 && !found) found = k;
  }
  return found;
}

}  // namespace weightcache::http::doors
