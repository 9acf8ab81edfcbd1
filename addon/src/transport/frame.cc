#include "transport/frame.h"

#include <cstring>

#include "crc32c.h"

namespace weightcache {
namespace {

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian hosts only (x86-64, aarch64)
  return v;
}
uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void Store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void Store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Store64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

std::string TypeName(uint8_t t) {
  const char* name = nullptr;
  switch (t) {
    case kHello: name = "HELLO"; break;
    case kError: name = "ERROR"; break;
    case kAuth: name = "AUTH"; break;
    case kPing: name = "PING"; break;
    case kCancel: name = "CANCEL"; break;
    default: break;
  }
  std::string n = "frame type " + std::to_string(t);
  return name ? std::string(name) + " (" + n + ")" : n;
}

bool IsRequest(uint8_t type, uint16_t flags) {
  if (flags & kFlagResponse) return false;
  return type != kHello && type != kCancel && type != kError;
}

void EncodeHeader(FrameHeader& h, const uint8_t* meta, size_t meta_len, uint8_t out[kHeaderBytes]) {
  out[0] = kMagic0;
  out[1] = kMagic1;
  out[2] = h.version;
  out[3] = h.type;
  Store16(out + 4, h.flags);
  Store16(out + 6, 0);
  Store32(out + 8, h.request_id);
  Store32(out + 12, static_cast<uint32_t>(meta_len));
  Store64(out + 16, h.payload_length);
  Store32(out + 24, h.payload_crc);
  uint32_t crc = Crc32c(0, out, 28);
  if (meta_len) crc = Crc32c(crc, meta, meta_len);
  h.meta_length = static_cast<uint32_t>(meta_len);
  h.header_crc = crc;
  Store32(out + 28, crc);
}

FrameReader::~FrameReader() {
  if (payload_) release_(ctx_, payload_, header_.payload_length);
}

FrameReader::Span FrameReader::Want() {
  switch (state_) {
    case kStateHeader:
      return {raw_ + got_, kHeaderBytes - got_};
    case kStateMeta:
      return {meta_.data() + got_, meta_.size() - got_};
    case kStatePayload:
      return {payload_ + got_, static_cast<size_t>(header_.payload_length) - got_};
    default:
      return {nullptr, 0};
  }
}

FrameReader::Result FrameReader::Fail(std::string reason) {
  state_ = kStateFailed;
  error_ = std::move(reason);
  if (payload_) {
    release_(ctx_, payload_, header_.payload_length);
    payload_ = nullptr;
  }
  return kFail;
}

FrameReader::Result FrameReader::Refuse(const char* code, std::string reason) {
  refusal_code_ = code;
  return Fail(std::move(reason));
}

FrameReader::Result FrameReader::Advance(size_t n) {
  if (state_ == kStateFailed) return kFail;
  if (n > Want().len) return Fail("decoder advanced past its buffer");
  // Checksum each read's bytes right after the kernel wrote them, while they
  // are still in cache, instead of a second pass over the whole payload.
  if (state_ == kStatePayload) computed_crc_ = Crc32c(computed_crc_, payload_ + got_, n);
  got_ += n;
  switch (state_) {
    case kStateHeader:
      return got_ == kHeaderBytes ? OnHeader() : kNeedMore;
    case kStateMeta:
      return got_ == meta_.size() ? OnMeta() : kNeedMore;
    case kStatePayload:
      return got_ == header_.payload_length ? Complete() : kNeedMore;
    default:
      return kFail;
  }
}

FrameReader::Result FrameReader::OnHeader() {
  const uint8_t* p = raw_;
  if (p[0] != kMagic0 || p[1] != kMagic1) return Fail("bad magic (not a weightcache transport frame)");
  header_.version = p[2];
  header_.type = p[3];
  header_.flags = Load16(p + 4);
  header_.request_id = Load32(p + 8);
  header_.meta_length = Load32(p + 12);
  header_.payload_length = Load64(p + 16);
  header_.payload_crc = Load32(p + 24);
  header_.header_crc = Load32(p + 28);
  if (header_.type == 0) return Fail("frame type 0 is reserved (never valid)");
  if (header_.version != kProtocolVersion && header_.type != kHello && header_.type != kError) {
    return Fail("unsupported protocol version " + std::to_string(header_.version) + " in a data frame");
  }
  if (header_.flags & ~kFlagResponse) return Fail("reserved flag bits set");
  if (Load16(p + 6) != 0) return Fail("reserved header bytes not zero");
  if (header_.meta_length > kMaxMetaBytes) {
    return Fail("meta of " + std::to_string(header_.meta_length) + " bytes exceeds the limit of " +
                std::to_string(kMaxMetaBytes));
  }
  if (handshake_only_) {
    // Before the payload limit: a stranger gets the handshake's limits, not an authenticated peer's.
    if (header_.type != kHello && header_.type != kAuth) {
      return Refuse("UNAUTHORIZED", TypeName(header_.type) +
                                        " before authentication: only HELLO and AUTH are accepted until the "
                                        "handshake completes");
    }
    if (header_.meta_length > kHandshakeMaxMetaBytes || header_.payload_length != 0) {
      return Refuse("TOO_LARGE", std::string(header_.type == kHello ? "HELLO" : "AUTH") + " of " +
                                     std::to_string(header_.meta_length) + " meta and " +
                                     std::to_string(header_.payload_length) +
                                     " payload bytes before authentication: handshake frames carry at most " +
                                     std::to_string(kHandshakeMaxMetaBytes) + " meta bytes and no payload");
    }
  }
  if (header_.payload_length > max_payload_) {
    return Fail("payload of " + std::to_string(header_.payload_length) + " bytes exceeds maxFrameBytes " +
                std::to_string(max_payload_));
  }
  // Every request's content is its meta in protocol v1; only responses carry payloads.
  if (header_.payload_length != 0 && IsRequest(header_.type, header_.flags)) {
    return Fail("request of " + TypeName(header_.type) + " with a payload of " +
                std::to_string(header_.payload_length) + " bytes: requests carry none");
  }
  meta_.assign(header_.meta_length, 0);
  got_ = 0;
  state_ = kStateMeta;
  return header_.meta_length == 0 ? OnMeta() : kNeedMore;
}

FrameReader::Result FrameReader::OnMeta() {
  uint32_t crc = Crc32c(0, raw_, 28);
  if (!meta_.empty()) crc = Crc32c(crc, meta_.data(), meta_.size());
  if (crc != header_.header_crc) return Fail("header checksum mismatch");
  got_ = 0;
  if (header_.payload_length == 0) return Complete();
  // Allocate only now: a header that failed its checksum never costs memory.
  payload_ = alloc_(ctx_, static_cast<size_t>(header_.payload_length));
  if (!payload_) return Fail("cannot allocate " + std::to_string(header_.payload_length) + " bytes");
  computed_crc_ = 0;
  state_ = kStatePayload;
  return kNeedMore;
}

FrameReader::Result FrameReader::Complete() {
  if (!payload_) computed_crc_ = 0;
  state_ = kStateHeader;
  got_ = 0;
  return kFrame;
}

std::string FrameReader::Progress() const {
  switch (state_) {
    case kStateHeader:
      return std::to_string(got_) + " of " + std::to_string(kHeaderBytes) + " header bytes";
    case kStateMeta:
      return std::to_string(got_) + " of " + std::to_string(meta_.size()) + " meta bytes";
    case kStatePayload:
      return std::to_string(got_) + " of " + std::to_string(header_.payload_length) + " payload bytes";
    default:
      return "failed";
  }
}

}  // namespace weightcache
