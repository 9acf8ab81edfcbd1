// libFuzzer target for the HTTP/1.1 request parser (addon/src/http/): the
// code that parses every byte an HTTP client sends. npm test builds it with
// clang (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time
// (test/native/fuzz.test.ts); `npm run fuzz -- --seconds 600 http_parser_fuzzer`
// runs it longer.
//
// Input: byte 0 picks the limits (bit 0: tiny limits, so every limit is
// reached), byte 1 seeds how the stream is split into reads; the rest is the
// byte stream of a connection (pipelined requests). Besides what the
// sanitizers catch, it traps when
//   - the result of one split differs from that of the whole stream, or of
//     the stream read byte by byte (split invariance);
//   - a parsed request breaks an invariant (limits exceeded, a method that is
//     not a token, a body longer than its framing allows, offsets that do not add up).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chars.h"
#include "http/parser.h"
#include "http/replay.h"

using namespace weightcache::http;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckInvariants(std::string_view stream, const ParserLimits& limits, const std::vector<ReplayedRequest>& rs) {
  uint64_t at = 0;
  for (const ReplayedRequest& r : rs) {
    Check(r.start == at);
    if (r.error != Error::kNone) {
      Check(r.error_offset >= r.start && r.error_offset < stream.size());
      Check(StatusOf(r.error) >= 400);
      return;
    }
    if (!r.complete) return;
    Check(!r.method.empty());
    for (char c : r.method) Check(chars::Is(static_cast<uint8_t>(c), chars::kToken));
    Check(r.headers.size() <= limits.max_header_count);
    Check(r.head_bytes <= uint64_t{limits.max_request_line_bytes} + limits.max_header_bytes);
    Check(r.body.size() <= limits.max_body_bytes);
    if (r.framing == Framing::kContentLength) Check(r.body.size() == r.content_length);
    if (r.framing == Framing::kNone) Check(r.body.empty());
    Check(r.version_minor == 1 ? r.has_host : true);
    Check(r.form != TargetForm::kAsterisk || r.method == "OPTIONS");
    Check(r.method != "CONNECT");
    Check(r.target.find('#') == std::string::npos);
    for (const auto& [name, value] : r.headers) {
      Check(!name.empty());
      for (char c : value) Check(c != '\r' && c != '\n' && c != '\0');
    }
    Check(r.end >= r.start + r.head_bytes + r.body.size());
    at = r.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ParserLimits limits;
  if (data[0] & 1) {
    limits.max_request_line_bytes = 24 + (data[0] >> 1) % 64;
    limits.max_header_count = 1 + (data[0] >> 3) % 4;
    limits.max_header_bytes = 16 + (data[0] >> 2) % 96;
    limits.max_body_bytes = (data[0] >> 4) * 4;
  }
  uint32_t seed = data[1] * 2654435761u + 1;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  std::vector<ReplayedRequest> whole = Replay(stream, limits, {});
  CheckInvariants(stream, limits, whole);
  std::string want = Canonical(whole);

  std::vector<size_t> cuts;
  size_t max_piece = 1 + data[1] % 32;
  for (size_t at = 0;;) {
    seed = seed * 1103515245u + 12345u;
    at += 1 + (seed >> 16) % max_piece;
    if (at >= stream.size()) break;
    cuts.push_back(at);
  }
  Check(Canonical(Replay(stream, limits, cuts)) == want);
  if (stream.size() <= 1024) {
    std::vector<size_t> bytes;
    for (size_t i = 1; i < stream.size(); i++) bytes.push_back(i);
    Check(Canonical(Replay(stream, limits, bytes)) == want);
  }
  return 0;
}
