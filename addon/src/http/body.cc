#include "http/body.h"

#include <algorithm>

#include "http/chars.h"

namespace weightcache::http {

namespace {
constexpr uint8_t CR = '\r';
constexpr uint8_t LF = '\n';
bool IsOws(uint8_t c) { return c == ' ' || c == '\t'; }
// A chunk size is 1 to 16 hex digits: 64 bits, and no unbounded run of leading zeros.
constexpr uint32_t kMaxSizeDigits = 16;
}  // namespace

void BodyDecoder::Start(Framing framing, uint64_t content_length) {
  remaining_ = 0;
  body_bytes_ = 0;
  offset_ = 0;
  overhead_ = 0;
  size_digits_ = 0;
  trailers_ = 0;
  error_ = Error::kNone;
  error_offset_ = 0;
  switch (framing) {
    case Framing::kNone:
      state_ = kDoneState;
      break;
    case Framing::kContentLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? kDoneState : kLength;
      break;
    case Framing::kChunked:
      state_ = kSize;
      break;
  }
}

BodyDecoder::Step BodyDecoder::Fail(Error e, size_t consumed) {
  error_ = e;
  error_offset_ = offset_ + consumed;
  offset_ += consumed;
  state_ = kFailedState;
  return {kFailed, consumed, {}};
}

BodyDecoder::Step BodyDecoder::Feed(const char* data, size_t n) {
  if (state_ == kDoneState) return {kDone, 0, {}};
  if (state_ == kFailedState) return {kFailed, 0, {}};
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  size_t i = 0;
  while (i < n) {
    if (state_ == kLength || state_ == kChunkData) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
      remaining_ -= take;
      body_bytes_ += take;
      if (remaining_ == 0) state_ = state_ == kLength ? kDoneState : kDataCR;
      offset_ += i + take;
      return {take > 0 ? kData : kNeedMore, i + take, std::string_view(data + i, take)};
    }
    const uint8_t c = p[i];
    // Extensions and trailers are bounded together, byte by byte (so the
    // error does not depend on the split); the CRLFs that end lines are framing.
    bool overhead = (state_ >= kExtBws && state_ <= kExtAfterValue && c != CR) ||
                    (state_ == kSizeMore && (c == ';' || IsOws(c))) ||
                    (state_ >= kTrailerName && state_ <= kTrailerValue && c != CR) ||
                    (state_ == kTrailerStart && c != CR);
    if (overhead && ++overhead_ > limits_.max_header_bytes) return Fail(Error::kChunkExtensionsTooLarge, i);
    switch (state_) {
      case kSize:
      case kSizeMore: {
        int v = chars::HexValue(c);
        if (v >= 0) {
          if (++size_digits_ > kMaxSizeDigits) return Fail(Error::kBadChunkSize, i);
          remaining_ = (remaining_ << 4) | static_cast<uint64_t>(v);
          if (remaining_ > limits_.max_body_bytes - body_bytes_) return Fail(Error::kBodyTooLarge, i);
          state_ = kSizeMore;
          break;
        }
        if (state_ == kSize) return Fail(Error::kBadChunkSize, i);
        if (c == CR) {
          state_ = kSizeLF;
        } else if (c == ';') {
          state_ = kExtNameStart;
        } else if (IsOws(c)) {
          state_ = kExtBws;
        } else if (c == LF) {
          return Fail(Error::kBareLF, i);
        } else {
          return Fail(Error::kBadChunkSize, i);
        }
        break;
      }
      // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string
      case kExtBws:  // whitespace that must lead to ";"
        if (c == ';') {
          state_ = kExtNameStart;
        } else if (!IsOws(c)) {
          return Fail(Error::kBadChunkExtension, i);
        }
        break;
      case kExtNameStart:
        if (chars::Is(c, chars::kToken)) {
          state_ = kExtName;
        } else if (!IsOws(c)) {
          return Fail(Error::kBadChunkExtension, i);
        }
        break;
      case kExtName:
      case kExtAfterName:  // whitespace after a name must lead to "=" or ";", not to the line's end
        if (state_ == kExtName && chars::Is(c, chars::kToken)) break;
        if (c == '=') {
          state_ = kExtValueStart;
        } else if (c == ';') {
          state_ = kExtNameStart;
        } else if (c == CR && state_ == kExtName) {
          state_ = kSizeLF;
        } else if (IsOws(c)) {
          state_ = kExtAfterName;
        } else {
          return Fail(c == LF ? Error::kBareLF : Error::kBadChunkExtension, i);
        }
        break;
      case kExtValueStart:
        if (c == '"') {
          state_ = kExtQuoted;
        } else if (chars::Is(c, chars::kToken)) {
          state_ = kExtToken;
        } else if (!IsOws(c)) {
          return Fail(Error::kBadChunkExtension, i);
        }
        break;
      case kExtToken:
        if (chars::Is(c, chars::kToken)) break;
        [[fallthrough]];
      case kExtAfterValue:
        if (c == ';') {
          state_ = kExtNameStart;
        } else if (c == CR) {
          state_ = kSizeLF;
        } else if (IsOws(c)) {
          state_ = kExtBws;
        } else {
          return Fail(c == LF ? Error::kBareLF : Error::kBadChunkExtension, i);
        }
        break;
      case kExtQuoted:
        // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text; quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        if (c == '"') {
          state_ = kExtAfterValue;
        } else if (c == '\\') {
          state_ = kExtQuotedPair;
        } else if (!chars::Is(c, chars::kFieldValue)) {
          return Fail(c == LF ? Error::kBareLF : Error::kBadChunkExtension, i);
        }
        break;
      case kExtQuotedPair:
        if (!chars::Is(c, chars::kFieldValue)) return Fail(Error::kBadChunkExtension, i);
        state_ = kExtQuoted;
        break;
      case kSizeLF:
        if (c != LF) return Fail(Error::kBareCR, i);
        size_digits_ = 0;
        state_ = remaining_ == 0 ? kTrailerStart : kChunkData;
        break;
      case kDataCR:
        if (c != CR) return Fail(Error::kBadChunkTerminator, i);
        state_ = kDataLF;
        break;
      case kDataLF:
        if (c != LF) return Fail(Error::kBadChunkTerminator, i);
        state_ = kSize;
        break;
      case kTrailerStart:
        if (c == CR) {
          state_ = kEndLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, i);
        } else if (IsOws(c)) {
          return Fail(Error::kObsFold, i);
        } else if (chars::Is(c, chars::kToken)) {
          if (++trailers_ > limits_.max_header_count) return Fail(Error::kTooManyHeaders, i);
          state_ = kTrailerName;
        } else {
          return Fail(Error::kBadHeaderName, i);
        }
        break;
      case kTrailerName:
        if (chars::Is(c, chars::kToken)) break;
        if (c == ':') {
          state_ = kTrailerValue;
        } else if (IsOws(c)) {
          return Fail(Error::kWhitespaceBeforeColon, i);
        } else {
          return Fail(Error::kBadHeaderName, i);
        }
        break;
      case kTrailerValue:
        if (c == CR) {
          state_ = kTrailerLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, i);
        } else if (!chars::Is(c, chars::kFieldValue)) {
          return Fail(Error::kBadHeaderValue, i);
        }
        break;
      case kTrailerLF:
        if (c != LF) return Fail(Error::kBareCR, i);
        state_ = kTrailerStart;
        break;
      case kEndLF:
        if (c != LF) return Fail(Error::kBareCR, i);
        state_ = kDoneState;
        offset_ += i + 1;
        return {kDone, i + 1, {}};
      case kLength:
      case kChunkData:
      case kDoneState:
      case kFailedState:
        break;
    }
    i++;
  }
  offset_ += n;
  return {kNeedMore, n, {}};
}

}  // namespace weightcache::http
