// The Hugging Face Hub door's file downloads on the native fast path
// (src/hub/door.ts): `GET|HEAD {path}/{repo}/resolve/{sha}/{file}` mapped to
// (the Hub container, "{repo}/{file}", pinned to the file's version in that
// revision) exactly as the JavaScript door maps it, and answered with the
// JavaScript door's headers (X-Repo-Commit, ETag, X-Linked-Etag,
// X-Linked-Size, ...).
//
// A revision here is a listing snapshot JavaScript keeps (src/read/listings.ts):
// the Hub door publishes each one it resolves (sha → repo and each file's
// version, size, blob id and Content-Type) valid for `listing.retain` from
// that use, and removes it when the snapshot is dropped. `main` is never
// answered here: JavaScript lists the origin for it on every request.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace weightcache::http::doors {

// Most revisions the table holds; past it (or past its file bound) a publish is refused and JavaScript answers.
inline constexpr size_t kMaxHubRevisions = 4096;

struct HubFile {
  std::string etag;          // the version the revision lists (unquoted)
  uint64_t size = 0;
  std::string blob_id;       // X-Linked-Etag (revision.ts blobId)
  std::string content_type;  // contentTypeOf(path)
};

struct HubRevision {
  std::string sha;     // 40 lower-case hex
  std::string prefix;  // "org/name/": the repo's key prefix in the Hub container
  std::unordered_map<std::string, HubFile> files;  // by path in the repo
  int64_t deadline_ns = 0;                        // CLOCK_MONOTONIC
};

class HubRevisions {
 public:
  explicit HubRevisions(size_t max_files) : max_files_(max_files) {}
  // Installs or replaces a revision; false when a bound would be passed.
  bool Publish(std::shared_ptr<const HubRevision> r);
  bool Remove(std::string_view sha);
  std::shared_ptr<const HubRevision> Lookup(std::string_view sha, int64_t now_ns) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const HubRevision>> by_sha_;
  size_t files_ = 0;
  size_t max_files_;
};

// `{repo}/resolve/{revision}/{file}` (the path after the door's prefix and '/'),
// every segment plain (no '%', none empty, '.' or '..'), read as hub/door.ts
// reads it: the repo is "name" or "org/name" ("resolve" as the third segment wins).
struct HubTarget {
  std::string_view repo;
  std::string_view revision;
  std::string_view file;
};
bool ParseHubTarget(std::string_view rest, HubTarget& out);

// 40 lower-case hex digits: a commit sha (revision.ts SHA_RE).
bool IsSha(std::string_view s);

}  // namespace weightcache::http::doors
