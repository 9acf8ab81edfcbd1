#include "http/doors/s3.h"

#include <algorithm>
#include <random>

#include "http/fast_fields.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {
namespace {

// Most bytes of a container name (src/origin/names.ts MAX_CONTAINER_LENGTH).
constexpr size_t kMaxContainer = 255;
// Most bytes of a key (MAX_KEY_LENGTH): a longer one is JavaScript's to refuse.
constexpr size_t kMaxKey = 1024;

// validateContainer: a letter or digit, then letters, digits, '.', '_', '-'.
bool ValidContainer(std::string_view b) {
  if (b.empty() || b.size() > kMaxContainer) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c); };
  if (!alnum(b.front())) return false;
  return std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

// Plain segments ("a/b/c"): none empty, '.' or '..', every byte a plain pchar.
bool PlainSegments(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i < s.size() && s[i] != '/') {
      if (!PlainPchar(s[i])) return false;
      continue;
    }
    std::string_view seg = s.substr(start, i - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = i + 1;
  }
  return true;
}

}  // namespace

bool ParseS3Target(const S3Route& route, std::string_view rest, std::string_view host, S3Target& out,
                   std::string& host_lower) {
  if (rest.size() < 2 || rest.front() != '/') return false;
  rest.remove_prefix(1);
  if (!PlainSegments(rest)) return false;
  // door.ts address(): the Host without its port, lower case; `{bucket}.{baseDomain}` is virtual-host style.
  host_lower.assign(host);
  for (char& c : host_lower) c = AsciiLower(c);
  size_t colon = host_lower.rfind(':');
  if (colon != std::string::npos && colon + 1 < host_lower.size() &&
      std::all_of(host_lower.begin() + static_cast<std::ptrdiff_t>(colon) + 1, host_lower.end(), IsDigit)) {
    host_lower.resize(colon);
  }
  const std::string& bd = route.base_domain;
  if (!bd.empty() && host_lower.size() > bd.size() + 1 && host_lower.compare(host_lower.size() - bd.size(), bd.size(), bd) == 0 &&
      host_lower[host_lower.size() - bd.size() - 1] == '.') {
    out.bucket = std::string_view(host_lower).substr(0, host_lower.size() - bd.size() - 1);
    out.key = rest;
  } else {
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return false;  // the bucket itself: a listing
    out.bucket = rest.substr(0, slash);
    out.key = rest.substr(slash + 1);
  }
  if (!ValidContainer(out.bucket) || out.key.empty() || out.key.size() > kMaxKey) return false;
  if (!route.any_bucket && std::find(route.buckets.begin(), route.buckets.end(), out.bucket) == route.buckets.end()) {
    return false;  // NoSuchBucket: JavaScript's answer
  }
  return true;
}

std::string S3RequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789ABCDEF";
  uint64_t v = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; i--, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 15];
  return id;
}

}  // namespace weightcache::http::doors
