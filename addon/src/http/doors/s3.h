// The S3 door's GetObject / HeadObject on the native fast path (src/s3/door.ts):
// `GET|HEAD {path}/{bucket}/{key…}` (path-style) or `{path}/{key…}` with a
// Host `{bucket}.{baseDomain}` (virtual-host style), mapped to (bucket, key)
// exactly as the JavaScript door maps it and answered with its headers
// (x-amz-request-id, ETag, Last-Modified, Accept-Ranges, ...).
//
// With auth on, a request is answered here only when its SigV4 signature
// verifies natively (sigv4.h) and the signer's token may read the bucket;
// every failure goes to JavaScript, which answers the S3 error. With auth
// off (a loopback node, where the JavaScript door verifies nothing either)
// the I/O threads answer unsigned reads.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weightcache::http::doors {

struct S3Route {
  std::string path;                  // s3.path, e.g. "/s3"
  std::string base_domain;           // s3.baseDomain, lower case; empty: path-style only
  bool any_bucket = true;            // s3.buckets null
  std::vector<std::string> buckets;  // s3.buckets
  int64_t max_clock_skew_ms = 15 * 60 * 1000;  // s3.maxClockSkew
  int64_t (*clock_ms)() = nullptr;             // the wall clock signatures are checked at; null: the system's (tests fix it)
};

struct S3Target {
  std::string_view bucket;
  std::string_view key;
};

// The bucket and key of an object request: `rest` is the path after the
// door's prefix ('/' and on), `host` the Host field. False for anything but
// an object with plain segments (no '%', none empty, '.' or '..') in a
// bucket name the door accepts and knows.
bool ParseS3Target(const S3Route& route, std::string_view rest, std::string_view host, S3Target& out,
                   std::string& host_lower);

// x-amz-request-id: 16 upper-case hex digits, as the JavaScript door makes them.
std::string S3RequestId();

}  // namespace weightcache::http::doors
