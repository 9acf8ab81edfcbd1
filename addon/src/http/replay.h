// Plays a byte stream through RequestParser and BodyDecoder the way a
// connection does — bytes arriving in pieces, the buffer growing (and moving)
// with each piece, pipelined requests one after another, the connection given
// up at the first error — and returns what was parsed, copied out. The C++
// tests, the fuzz target and the JavaScript test binding all use it, so the
// split-invariance they check is that of one code path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/parser.h"

namespace weightcache::http {

struct ReplayedRequest {
  bool complete = false;       // head and body parsed
  Error error = Error::kNone;  // why the connection would be closed
  uint64_t error_offset = 0;   // from the stream's first byte
  uint64_t start = 0;          // stream offset of the request's first byte
  uint64_t head_bytes = 0;
  uint64_t end = 0;            // stream offset after the body (complete requests)
  std::string method, target, scheme, authority, host, path, query;
  TargetForm form = TargetForm::kOrigin;
  bool has_host = false, has_query = false, keep_alive = false, expect_continue = false;
  uint8_t version_minor = 1;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// `cuts`: ascending offsets where a new piece starts (0 and out-of-range ones
// are ignored). Stops after `max_requests` complete requests, at the first
// error, or at the end of the stream (the last entry is then incomplete when
// a request had begun).
std::vector<ReplayedRequest> Replay(std::string_view stream, const ParserLimits& limits,
                                    const std::vector<size_t>& cuts, size_t max_requests = SIZE_MAX);

// One line per request, every field; equal strings mean equal parses.
std::string Canonical(const std::vector<ReplayedRequest>& requests);

}  // namespace weightcache::http
