#include "http/doors/azure_auth.h"

#include <algorithm>
#include <array>

#include "auth/sha256.h"
#include "http/doors/azure.h"
#include "http/fast_fields.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {
namespace {

// The parameters a SAS read may carry: any other (snapshot, comp, timeout, ...) is JavaScript's.
// `timeout` the SDKs may add; the door ignores it and no string-to-sign holds it.
constexpr std::array<std::string_view, 18> kSasParams = {"sv",  "ss",  "srt",  "sp",   "se",   "st",   "spr",
                                                         "sip", "sr",  "sig",  "si",   "ses",  "rscc", "rscd",
                                                         "rsce", "rscl", "rsct", "timeout"};

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

// The first token (in the table's order) whose HMAC-SHA256 of `to_sign`, in base64, is `sig`. An HMAC
// is 32 bytes: 44 characters. Each token's is computed and compared whole, whichever matches.
std::shared_ptr<const auth::TokenGrant> Match(const auth::TokenTable& tokens, const std::string& to_sign,
                                              std::string_view sig) {
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
  return Match(tokens, to_sign, sig);
}

bool ParseImfDate(std::string_view s, int64_t& ms) {
  // 0123456789012345678901234567 8
  // Sun, 06 Nov 1994 08:49:37 GMT
  static constexpr std::string_view kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // from 1970-01-01
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
      s[22] != ':' || s.substr(25) != " GMT") {
    return false;
  }
  int64_t d, y, h, mi, se;
  if (!Digits(s, 5, 2, d) || !Digits(s, 12, 4, y) || !Digits(s, 17, 2, h) || !Digits(s, 20, 2, mi) ||
      !Digits(s, 23, 2, se)) {
    return false;
  }
  auto m = std::find(std::begin(kMonths), std::end(kMonths), s.substr(8, 3));
  if (m == std::end(kMonths)) return false;
  std::string iso = std::to_string(y) + "-00-00T00:00:00Z";
  if (iso.size() != 20) return false;
  int64_t mo = (m - std::begin(kMonths)) + 1;
  iso[5] = static_cast<char>('0' + mo / 10), iso[6] = static_cast<char>('0' + mo % 10);
  iso[8] = s[5], iso[9] = s[6], iso[11] = s[17], iso[12] = s[18], iso[14] = s[20], iso[15] = s[21];
  iso[17] = s[23], iso[18] = s[24];
  if (!ParseSasTime(iso, ms)) return false;
  return kDays[(ms / 86'400'000) % 7] == s.substr(0, 3);
}

bool SharedKeyStringToSign(const RequestHead& h, std::string_view account, std::string& out) {
  // The canonicalized resource lists the query's parameters: only `timeout` is known here.
  std::string_view seconds;
  if (h.has_query && !h.query.empty() && !TimeoutQuery(h.query, seconds)) return false;
  const Header *range = nullptr, *if_match = nullptr, *if_none_match = nullptr;
  struct Ms {
    std::string name;   // lower case
    std::string value;  // the values trimmed, joined with ','
  };
  std::vector<Ms> ms;
  for (const Header& x : h.headers) {
    if (IEquals(x.name, "range")) range = &x;
    else if (IEquals(x.name, "if-match")) if_match = &x;
    else if (IEquals(x.name, "if-none-match")) if_none_match = &x;
    // The standard fields the fast path lets through are these (fast_fields.h) and Host,
    // Authorization, Connection, User-Agent, Accept, Accept-Encoding, none signed.
    if (x.name.size() < 5 || !IEquals(x.name.substr(0, 5), "x-ms-")) continue;
    if (!PlainValue(x.value)) return false;  // JavaScript's trim() knows more white space
    std::string name(x.name);
    for (char& c : name) c = AsciiLower(c);
    auto it = std::find_if(ms.begin(), ms.end(), [&](const Ms& m) { return m.name == name; });
    if (it == ms.end()) {
      if (ms.size() == kMaxSharedKeyMsHeaders) return false;
      ms.push_back({std::move(name), std::string(x.value)});
    } else {
      it->value.append(",").append(x.value);
    }
  }
  // storageHeaderOrder: names compared with '-' left out, then as they are.
  auto key = [](const std::string& n) {
    std::string k;
    for (char c : n) {
      if (c != '-') k.push_back(c);
    }
    return k;
  };
  std::sort(ms.begin(), ms.end(), [&](const Ms& a, const Ms& b) {
    std::string ka = key(a.name), kb = key(b.name);
    return ka != kb ? ka < kb : a.name < b.name;
  });
  auto v = [](const Header* x) { return x ? x->value : std::string_view(); };
  out.clear();
  // method, Content-Encoding, -Language, -Length, -MD5, -Type, Date (x-ms-date wins), If-Modified-Since,
  // If-Match, If-None-Match, If-Unmodified-Since, Range: the fast path lets only these three through.
  Join(out, {h.method, "", "", "", "", "", "", "", v(if_match), v(if_none_match), "", v(range), ""});
  for (const Ms& m : ms) out.append(m.name).append(":").append(m.value).append("\n");
  out.append("/").append(account).append(h.path);
  if (!seconds.empty()) out.append("\ntimeout:").append(seconds);
  return true;
}

std::shared_ptr<const auth::TokenGrant> VerifyAzureSharedKey(const auth::TokenTable& tokens, const RequestHead& h,
                                                             std::string_view value, std::string_view account,
                                                             int64_t now_ms, int64_t skew_ms) {
  constexpr std::string_view kScheme = "SharedKey ";
  if (value.substr(0, kScheme.size()) != kScheme) return nullptr;
  value.remove_prefix(kScheme.size());
  size_t colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || value.substr(0, colon) != account) return nullptr;
  const Header* date = nullptr;
  for (const Header& x : h.headers) {
    if (!IEquals(x.name, "x-ms-date")) continue;
    if (date) return nullptr;  // JavaScript reads the first: a repeated one is its to answer
    date = &x;
  }
  int64_t at = 0;
  if (!date || !ParseImfDate(date->value, at)) return nullptr;
  if (now_ms - at > skew_ms || at - now_ms > skew_ms) return nullptr;
  std::string to_sign;
  if (!SharedKeyStringToSign(h, account, to_sign)) return nullptr;
  return Match(tokens, to_sign, value.substr(colon + 1));
}

}  // namespace weightcache::http::doors
