#include "http/doors/azure.h"

#include <random>

#include "http/rfc9110.h"

namespace weightcache::http::doors {

bool ParseAzureTarget(const AzureRoute& route, std::string_view rest, AzureTarget& out) {
  if (!PlainSegments(rest)) return false;
  size_t a = rest.find('/');
  if (a == std::string_view::npos) return false;  // the account itself: List Containers and the like
  size_t c = rest.find('/', a + 1);
  if (c == std::string_view::npos) return false;  // a container: its properties or a listing
  out.account = rest.substr(0, a);
  out.container = rest.substr(a + 1, c - a - 1);
  out.blob = rest.substr(c + 1);
  // door.ts: another account than azure.account is InvalidUri; an invalid container InvalidResourceName.
  if (!route.account.empty() && out.account != route.account) return false;
  return ValidContainerName(out.container) && !out.blob.empty() && out.blob.size() <= kMaxKeyBytes;
}

bool ReadAzureFields(const RequestHead& h, AzureFields& f) {
  const Header* md5 = nullptr;
  for (const Header& x : h.headers) {
    const Header** slot = nullptr;
    if (IEquals(x.name, "x-ms-range")) slot = &f.ms_range;
    else if (IEquals(x.name, "x-ms-version")) slot = &f.ms_version;
    else if (IEquals(x.name, "x-ms-range-get-content-md5")) slot = &md5;
    else continue;
    // door.ts reads each one's first value: a repeated one is JavaScript's.
    if (*slot != nullptr || !PlainValue(x.value)) return false;
    *slot = &x;
  }
  f.range_md5 = md5 != nullptr && md5->value == "true";  // only "true" exactly asks for it
  return f.ms_version == nullptr || !f.ms_version->value.empty();
}

bool TimeoutQuery(std::string_view query, std::string_view& seconds) {
  constexpr std::string_view kKey = "timeout=";
  if (query.substr(0, kKey.size()) != kKey) return false;
  seconds = query.substr(kKey.size());
  if (seconds.empty() || seconds.size() > 10) return false;
  for (char c : seconds) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

std::string AzureRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  uint64_t hi = rng(), lo = rng();
  // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx, y one of 8, 9, a, b (RFC 9562 version 4).
  hi = (hi & ~0xF000ull) | 0x4000ull;
  lo = (lo & ~(3ull << 62)) | (2ull << 62);
  std::string id;
  id.reserve(36);
  for (int i = 15; i >= 0; i--) {
    id.push_back(kHex[(hi >> (i * 4)) & 15]);
    if (i == 8 || i == 4) id.push_back('-');
  }
  id.push_back('-');
  for (int i = 15; i >= 0; i--) {
    id.push_back(kHex[(lo >> (i * 4)) & 15]);
    if (i == 12) id.push_back('-');
  }
  return id;
}

}  // namespace weightcache::http::doors
