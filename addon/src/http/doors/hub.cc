#include "http/doors/hub.h"

#include <mutex>
#include <vector>

#include "http/fast_fields.h"

namespace weightcache::http::doors {

bool HubRevisions::Publish(std::shared_ptr<const HubRevision> r) {
  std::unique_lock lock(mu_);
  auto it = by_sha_.find(r->sha);
  size_t replaced = it == by_sha_.end() ? 0 : it->second->files.size();
  if (it == by_sha_.end() && by_sha_.size() >= kMaxHubRevisions) return false;
  if (files_ - replaced + r->files.size() > max_files_) return false;
  files_ = files_ - replaced + r->files.size();
  by_sha_[r->sha] = std::move(r);
  return true;
}

bool HubRevisions::Remove(std::string_view sha) {
  std::unique_lock lock(mu_);
  auto it = by_sha_.find(std::string(sha));
  if (it == by_sha_.end()) return false;
  files_ -= it->second->files.size();
  by_sha_.erase(it);
  return true;
}

std::shared_ptr<const HubRevision> HubRevisions::Lookup(std::string_view sha, int64_t now_ns) const {
  std::shared_lock lock(mu_);
  auto it = by_sha_.find(std::string(sha));
  if (it == by_sha_.end() || it->second->deadline_ns <= now_ns) return nullptr;
  return it->second;
}

size_t HubRevisions::size() const {
  std::shared_lock lock(mu_);
  return by_sha_.size();
}

bool IsSha(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool ParseHubTarget(std::string_view rest, HubTarget& out) {
  // Segment boundaries: offsets of each segment's first byte and its end.
  constexpr size_t kMaxSegments = 256;
  std::vector<std::string_view> segs;
  size_t start = 0;
  for (size_t i = 0; i <= rest.size(); i++) {
    if (i < rest.size() && rest[i] != '/') {
      if (!PlainPchar(rest[i])) return false;
      continue;
    }
    std::string_view s = rest.substr(start, i - start);
    if (s.empty() || s == "." || s == ".." || segs.size() == kMaxSegments) return false;
    segs.push_back(s);
    start = i + 1;
  }
  if (segs.empty() || segs[0] == "api") return false;
  size_t at = segs.size() > 2 && segs[2] == "resolve" ? 2 : segs.size() > 1 && segs[1] == "resolve" ? 1 : 0;
  if (at == 0 || segs.size() < at + 3) return false;
  const char* base = rest.data();
  auto span = [&](size_t from, size_t to) {  // segments [from, to) with their slashes
    size_t b = static_cast<size_t>(segs[from].data() - base);
    size_t e = static_cast<size_t>(segs[to - 1].data() - base) + segs[to - 1].size();
    return rest.substr(b, e - b);
  };
  out.repo = span(0, at);
  out.revision = segs[at + 1];
  out.file = span(at + 2, segs.size());
  return true;
}

}  // namespace weightcache::http::doors
