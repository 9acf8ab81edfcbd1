// Frames the request body that follows a parsed head (RFC 9112 section 6 and
// 7): Content-Length, or the chunked coding with its extensions and trailers.
// Incremental and zero-copy like the head parser: Feed examines the bytes it
// is given and returns views of body data inside them, so a body is never
// copied to be decoded. The bytes of chunk framing, extensions and trailers
// are checked and dropped (trailers are not merged into the head; RFC 9110
// section 6.5 lets a recipient discard them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/parser.h"

namespace weightcache::http {

class BodyDecoder {
 public:
  explicit BodyDecoder(const ParserLimits& limits) : limits_(limits) {}

  // Starts the body of a head (its framing and Content-Length). kNone: no body, done at once.
  void Start(const RequestHead& head) { Start(head.framing, head.content_length); }
  void Start(Framing framing, uint64_t content_length);

  enum Status { kNeedMore, kData, kDone, kFailed };
  struct Step {
    Status status;
    size_t consumed;        // bytes of the input used; the next Feed starts after them
    std::string_view data;  // kData: body bytes, a view inside the input
  };
  // Examines [p, p + n) and returns at the first body data, the end of the
  // body, an error, or the end of the input (kNeedMore, everything consumed).
  // After kDone, the bytes past `consumed` belong to the next request.
  Step Feed(const char* p, size_t n);

  bool done() const { return state_ == kDoneState; }
  uint64_t body_bytes() const { return body_bytes_; }
  Error error() const { return error_; }
  uint64_t error_offset() const { return error_offset_; }  // from the body's first byte

 private:
  enum State : uint8_t {
    kLength, kSize, kSizeMore, kExtBws, kExtNameStart, kExtName, kExtAfterName, kExtValueStart,
    kExtToken, kExtQuoted, kExtQuotedPair, kExtAfterValue, kSizeLF, kChunkData, kDataCR, kDataLF,
    kTrailerStart, kTrailerName, kTrailerValue, kTrailerLF, kEndLF, kDoneState, kFailedState,
  };
  Step Fail(Error e, size_t consumed);

  ParserLimits limits_;
  State state_ = kDoneState;
  uint64_t remaining_ = 0;      // of the Content-Length body, or of the current chunk
  uint64_t body_bytes_ = 0;     // data delivered so far
  uint64_t offset_ = 0;         // bytes consumed so far (framing included)
  uint64_t overhead_ = 0;       // chunk-extension and trailer bytes so far
  uint32_t size_digits_ = 0;
  uint32_t trailers_ = 0;
  Error error_ = Error::kNone;
  uint64_t error_offset_ = 0;
};

}  // namespace weightcache::http
