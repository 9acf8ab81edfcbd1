// The RESP door's request limits, the same numbers as src/resp/limits.ts
// (modelled on Redis: proto-max-bulk-len, PROTO_INLINE_MAX_SIZE,
// client-query-buffer-limit, Redis 7's limits before AUTH). The configurable
// ones come from the `resp` configuration block; the constants are Redis's.
#pragma once
#include <cstdint>

namespace weightcache::resp {

// Redis's PROTO_INLINE_MAX_SIZE: an inline command (or a header line) longer than this is refused.
constexpr uint64_t kMaxInlineBytes = 64 * 1024;
// Before AUTH succeeds: at most 10 arguments and 16 KiB bulks per command (Redis 7)...
constexpr int64_t kPreauthMaxArgs = 10;
constexpr int64_t kPreauthMaxBulkBytes = 16 * 1024;
// ...and at most this much of a stranger's input for one command.
constexpr uint64_t kPreauthQueryBytes = 16 * 1024;
// Longest digit string a length may have (as the JavaScript parser).
constexpr size_t kMaxLengthDigits = 18;

struct ParserLimits {
  uint32_t max_args = 4096;                    // resp.maxArgs
  uint64_t max_bulk_bytes = 512ull << 20;      // resp.maxBulkBytes
  uint64_t max_query_buffer_bytes = 8ull << 20; // resp.maxQueryBufferBytes
};

}  // namespace weightcache::resp
