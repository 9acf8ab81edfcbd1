// libFuzzer target for the frame decoder (FrameReader), the code that parses
// every byte a peer sends. npm test builds it with clang
// (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time from
// addon/fuzz/corpus/frame_fuzzer/ (test/native/fuzz.test.ts, through
// scripts/native-checks.mjs); `npm run fuzz -- --seconds 600 frame_fuzzer`
// runs it longer (docs/native-checks.md).
//
// Mode (first byte, bit 0): raw bytes straight into the decoder (checks that
// garbage is rejected without overreads), or a stream of well-formed frames
// built from the input, optionally with one byte flipped, so the fuzzer gets
// past the header checksum into the meta and payload states. The second byte
// picks how many bytes each read delivers, as short reads from a socket would,
// and (bit 6) handshake-only mode, the one an accepted connection is in before
// it authenticates: there, nothing may ever be allocated and only small
// HELLO/AUTH frames may come out (checked below, a trap otherwise).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "transport/frame.h"

namespace {

bool g_handshake_only = false;

uint8_t* Alloc(void*, size_t len) {
  if (g_handshake_only) __builtin_trap();  // a stranger must never make us allocate a payload
  return static_cast<uint8_t*>(std::malloc(len));
}
void Release(void*, uint8_t* p, size_t) { std::free(p); }

void Feed(const uint8_t* data, size_t size, size_t step, uint64_t max_payload) {
  weightcache::FrameReader reader(max_payload, nullptr, Alloc, Release);
  reader.set_handshake_only(g_handshake_only);
  size_t at = 0;
  while (at < size) {
    weightcache::FrameReader::Span want = reader.Want();
    if (!want.ptr || want.len == 0) __builtin_trap();  // a live reader always wants bytes
    size_t n = std::min({want.len, step, size - at});
    std::memcpy(want.ptr, data + at, n);
    at += n;
    auto r = reader.Advance(n);
    if (r == weightcache::FrameReader::kFail) return;
    if (r == weightcache::FrameReader::kFrame) {
      const auto& h = reader.header();
      if (g_handshake_only && ((h.type != weightcache::kHello && h.type != weightcache::kAuth) ||
                               h.meta_length > weightcache::kHandshakeMaxMetaBytes || h.payload_length != 0)) {
        __builtin_trap();
      }
      std::vector<uint8_t> meta = reader.TakeMeta();
      if (meta.size() != h.meta_length) __builtin_trap();
      uint8_t* payload = reader.TakePayload();
      if ((payload == nullptr) != (h.payload_length == 0)) __builtin_trap();
      std::free(payload);
    }
  }
}

std::vector<uint8_t> BuildFrames(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out;
  size_t at = 0;
  while (at + 6 <= size) {
    weightcache::FrameHeader h;
    // Mostly the connection's own types and a few message types, now and then any byte
    // (every type but 0 is framed: messages are registered in JavaScript, not known here).
    static const uint8_t kTypes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x10, 0x11, 0x20, 0x21, 0x22, 0x23, 0x24, 0x40};
    h.type = data[at] < 208 ? kTypes[data[at] % sizeof kTypes] : data[at];
    h.flags = data[at + 1] & 3;
    h.version = data[at + 2] % 3;
    size_t meta_len = data[at + 3];
    size_t payload_len = data[at + 4] | (data[at + 5] << 8);
    at += 6;
    meta_len = std::min(meta_len, size - at);
    const uint8_t* meta = data + at;
    at += meta_len;
    payload_len = std::min(payload_len, size - at);
    h.payload_length = payload_len;
    uint8_t header[weightcache::kHeaderBytes];
    weightcache::EncodeHeader(h, meta, meta_len, header);
    out.insert(out.end(), header, header + sizeof header);
    out.insert(out.end(), meta, meta + meta_len);
    out.insert(out.end(), data + at, data + at + payload_len);
    at += payload_len;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint8_t mode = data[0];
  size_t step = 1 + data[1] % 64;
  if (data[1] & 0x80) step = size;  // sometimes everything at once
  g_handshake_only = (data[1] & 0x40) != 0;
  uint64_t max_payload = 1 + data[2] * 256u;
  data += 3;
  size -= 3;
  if ((mode & 1) == 0) {
    Feed(data, size, step, max_payload);
    return 0;
  }
  std::vector<uint8_t> frames = BuildFrames(data, size);
  if ((mode & 2) && !frames.empty()) frames[(mode >> 2) * 131 % frames.size()] ^= static_cast<uint8_t>(mode | 1);
  Feed(frames.data(), frames.size(), step, max_payload);
  return 0;
}
