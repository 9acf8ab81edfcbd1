// The wire frame (docs/wire-protocol.md): a fixed 32-byte header, a bounded
// meta block and an optional payload. FrameReader is the incremental decoder
// the connection drives from the socket; it never owns a socket, so the fuzzer
// (addon/fuzz/frame_fuzzer.cc) drives exactly the code production runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weightcache {

constexpr size_t kHeaderBytes = 32;
constexpr uint8_t kMagic0 = 0x57;  // 'W'
constexpr uint8_t kMagic1 = 0x43;  // 'C'
constexpr uint8_t kProtocolVersion = 1;
constexpr uint32_t kMaxMetaBytes = 64 * 1024;
constexpr uint16_t kFlagResponse = 1;
// Before a connection is authenticated only handshake frames (HELLO, AUTH) are
// read, each at most this much meta and no payload: a stranger must not make
// us allocate (docs/wire-protocol.md, "Before authentication").
constexpr uint32_t kHandshakeMaxMetaBytes = 4096;

// The addon knows only the connection's own frame types. Every other type
// (READ_CHUNK, the lease messages, ...) is a message registered in JavaScript
// by the part that owns it: the addon frames it, tells a request from a
// response by kFlagResponse, and bounds its size, so adding a message never
// touches native code. Type 0 is never valid.
enum FrameType : uint8_t {
  kHello = 0x01,
  kError = 0x02,
  kAuth = 0x03,
  kPing = 0x04,
  kCancel = 0x05,
};

// "PING (frame type 4)" for the connection's own types, "frame type 16" for the rest.
std::string TypeName(uint8_t type);
// A request expects exactly one response; HELLO, CANCEL and ERROR do not.
bool IsRequest(uint8_t type, uint16_t flags);

struct FrameHeader {
  uint8_t version = kProtocolVersion;
  uint8_t type = 0;
  uint16_t flags = 0;
  uint32_t request_id = 0;
  uint32_t meta_length = 0;
  uint64_t payload_length = 0;
  uint32_t payload_crc = 0;
  uint32_t header_crc = 0;
};

// Writes the 32 header bytes, computing header_crc over them and `meta`.
void EncodeHeader(FrameHeader& h, const uint8_t* meta, size_t meta_len, uint8_t out[kHeaderBytes]);

// The incremental decoder. Usage: read up to Want().len bytes into Want().ptr,
// then Advance(n). When Advance returns kFrame, take the frame with
// TakeMeta()/TakePayload(), and the reader is ready for the next header.
// kError is final: the stream cannot be resynchronised, the caller closes.
class FrameReader {
 public:
  // Allocates the payload destination; returns nullptr to refuse (e.g. out of memory).
  using Allocate = uint8_t* (*)(void* ctx, size_t len);
  using Release = void (*)(void* ctx, uint8_t* p, size_t len);

  FrameReader(uint64_t max_payload, void* ctx, Allocate alloc, Release release)
      : max_payload_(max_payload), ctx_(ctx), alloc_(alloc), release_(release) {}
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  enum Result { kNeedMore, kFrame, kFail };
  struct Span {
    uint8_t* ptr;
    size_t len;
  };

  Span Want();
  Result Advance(size_t n);

  const FrameHeader& header() const { return header_; }
  // The payload CRC as computed over the received bytes (valid on kFrame).
  uint32_t computed_payload_crc() const { return computed_crc_; }
  std::vector<uint8_t> TakeMeta() { return std::move(meta_); }
  // Ownership passes to the caller, who must Release it through the pool.
  uint8_t* TakePayload() {
    uint8_t* p = payload_;
    payload_ = nullptr;
    return p;
  }
  const std::string& error() const { return error_; }
  // Gives a half-received payload back to its allocator now (the connection is closing).
  void Abandon() { Fail("abandoned"); }
  // Handshake-only mode (an accepted connection before authentication): any
  // frame but HELLO/AUTH, or one over kHandshakeMaxMetaBytes or with a payload,
  // fails at its header with refusal_code() set, before anything is allocated.
  void set_handshake_only(bool on) { handshake_only_ = on; }
  bool handshake_only() const { return handshake_only_; }
  // After kFail: the CacheError code to answer with (an ERROR frame before the
  // close) when the failure is a refusal of a well-framed header; empty for
  // framing errors, which are never answered.
  const char* refusal_code() const { return refusal_code_; }
  // Bytes of the current frame received so far (for "closed mid-frame" reasons).
  bool mid_frame() const { return state_ != kStateHeader || got_ != 0; }
  std::string Progress() const;

 private:
  enum State { kStateHeader, kStateMeta, kStatePayload, kStateFailed };
  Result Fail(std::string reason);
  Result Refuse(const char* code, std::string reason);
  Result OnHeader();
  Result OnMeta();
  Result Complete();

  uint64_t max_payload_;
  void* ctx_;
  Allocate alloc_;
  Release release_;
  State state_ = kStateHeader;
  uint8_t raw_[kHeaderBytes] = {};
  size_t got_ = 0;
  FrameHeader header_;
  std::vector<uint8_t> meta_;
  uint8_t* payload_ = nullptr;
  uint32_t computed_crc_ = 0;
  std::string error_;
  bool handshake_only_ = false;
  const char* refusal_code_ = "";
};

}  // namespace weightcache
