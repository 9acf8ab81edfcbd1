// libFuzzer target for the RESP request parser (addon/src/resp/): the code
// that parses every byte a Redis client sends to the native RESP door. npm
// test builds it with clang (-fsanitize=fuzzer,address,undefined) and runs it
// for a bounded time (test/native/fuzz.test.ts); `npm run fuzz -- --seconds 600
// resp_parser_fuzzer` runs it longer.
//
// Input: byte 0 picks the limits (bit 0: tiny limits, so every limit is
// reached; bit 1: not authenticated, so the pre-auth limits apply), byte 1
// seeds how the stream is split into reads; the rest is the byte stream of a
// connection. Besides what the sanitizers catch, it traps when
//   - a command breaks a limit (too many arguments, a bulk too long, more
//     than the pre-auth limits allow before AUTH), or is empty;
//   - two splits of the same stream disagree on a command: a split can only
//     change *whether* a limit on bytes held is hit (as in the JavaScript
//     parser), so the commands of one run must be a prefix of the other's,
//     and equal when neither failed;
//   - re-encoding the commands as multibulk and parsing that does not give
//     the same commands back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/replay.h"

using namespace weightcache::resp;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckCommands(const Replayed& r, const ParserLimits& limits, bool authenticated) {
  for (const auto& cmd : r.commands) {
    Check(!cmd.empty());
    Check(cmd.size() <= limits.max_args);
    if (!authenticated) Check(cmd.size() <= static_cast<size_t>(kPreauthMaxArgs));
    for (const auto& a : cmd) Check(a.size() <= std::max<uint64_t>(limits.max_bulk_bytes, kMaxInlineBytes));
  }
  if (r.failed) Check(!r.error.reason.empty() && !r.error.message.empty());
}

// One run's commands are a prefix of the other's; equal when neither failed.
void CheckAgree(const Replayed& a, const Replayed& b) {
  size_t n = std::min(a.commands.size(), b.commands.size());
  for (size_t i = 0; i < n; i++) Check(a.commands[i] == b.commands[i]);
  if (!a.failed && !b.failed) Check(a.commands.size() == b.commands.size());
  if (a.commands.size() > b.commands.size()) Check(b.failed);
  if (b.commands.size() > a.commands.size()) Check(a.failed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ParserLimits limits;
  if (data[0] & 1) {
    limits.max_args = 1 + (data[0] >> 2) % 8;
    limits.max_bulk_bytes = (data[0] >> 3) * 3;
    limits.max_query_buffer_bytes = 8 + (data[0] >> 2) * 4;
  }
  const bool authenticated = (data[0] & 2) == 0;
  uint32_t seed = data[1] * 2654435761u + 1;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  Replayed whole = Replay(stream, limits, authenticated, {});
  CheckCommands(whole, limits, authenticated);

  std::vector<size_t> cuts;
  for (size_t at = 0; at < stream.size();) {
    seed = seed * 1103515245u + 12345u;
    at += 1 + (seed >> 16) % 16;
    cuts.push_back(at);
  }
  Replayed split = Replay(stream, limits, authenticated, cuts);
  CheckCommands(split, limits, authenticated);
  CheckAgree(whole, split);

  if (stream.size() <= 512) {
    std::vector<size_t> every;
    for (size_t i = 1; i < stream.size(); i++) every.push_back(i);
    Replayed bytes = Replay(stream, limits, authenticated, every);
    CheckAgree(whole, bytes);
  }

  // Round trip: what was parsed, encoded as multibulk, parses back to itself
  // (with limits wide enough for it: the encoding adds header bytes).
  std::string wire;
  for (const auto& cmd : whole.commands) {
    wire += "*" + std::to_string(cmd.size()) + "\r\n";
    for (const auto& a : cmd) wire += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  }
  Replayed again = Replay(wire, ParserLimits(), true, {});
  Check(!again.failed && again.commands == whole.commands);
  return 0;
}
