#include "http/doors/s3.h"

#include <algorithm>
#include <random>

#include "http/fast_fields.h"
#include "http/rfc9110.h"

namespace weightcache::http::doors {

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
  if (!ValidContainerName(out.bucket) || out.key.empty() || out.key.size() > kMaxKeyBytes) return false;
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
