// The native RESP door's fast path: GET, GETRANGE, STRLEN, EXISTS and MGET
// answered on the I/O thread, without JavaScript, from the native DRAM
// store (store/store.h) and the version bindings the coherence layer
// publishes (store/bindings.h) — the same store and the same binding table
// the native HTTP door's fast path reads (http/fastpath.h).
//
// A command is answered here only when the answer is, byte for byte, the one
// the JavaScript door would give (src/resp/commands/get.ts, getrange.ts,
// meta.ts through src/resp/reply.ts): the key is an unpinned name with a
// valid binding, the connection's grant (handed over by JavaScript when AUTH
// succeeds; every container with auth off) allows its container, the reply
// fits resp.maxGetBytes and every chunk it covers is in the native store (in
// DRAM, or on NVMe: read on the thread, see StartRespFast); for MGET and
// EXISTS of several keys, every key is such a hit, MGET's values in DRAM (one
// missing key makes the whole command JavaScript's: it is nil or uncounted
// there). Everything else (a missing key, an error, a pin, a miss) goes to
// JavaScript unchanged. Reply bytes of a hit are the same in RESP2
// and RESP3 (a bulk string or an integer), so the protocol does not matter.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/bindings.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache::resp {

// Most chunks one fast-path reply references (as the HTTP fast path's
// kMaxFastPathChunks); a longer range is answered by JavaScript.
inline constexpr uint64_t kMaxFastChunks = 64;
// JavaScript numbers hold integers exactly up to 2^53: a GETRANGE index past
// it is compared after rounding there, so it is JavaScript's to answer.
inline constexpr int64_t kMaxExactIndex = int64_t{1} << 53;
// Most keys of one MGET or EXISTS answered here (resp.maxArgs bounds what arrives at all).
inline constexpr size_t kMaxFastKeys = 1024;

// What a connection's token may read: JavaScript's session grant, copied when AUTH succeeds.
struct RespGrant {
  bool all = false;  // admin, or every container
  std::vector<std::string> containers;
  bool Allows(std::string_view container) const;
};

struct RespFastStats {
  std::atomic<uint64_t> hits{0};          // answered on the I/O thread
  std::atomic<uint64_t> body_bytes{0};    // value bytes of those replies
  std::atomic<uint64_t> no_binding{0};    // to JavaScript: no valid binding for the key
  std::atomic<uint64_t> misses{0};        // to JavaScript: a chunk in neither DRAM nor NVMe, a failed or refused NVMe read
  std::atomic<uint64_t> nvme_hits{0};     // of the hits: with bytes read from NVMe
  std::atomic<uint64_t> nvme_body_bytes{0};  // of body_bytes: read from NVMe
  std::atomic<uint64_t> unauthorised{0};  // to JavaScript: not authenticated, or the grant excludes the container
  std::atomic<uint64_t> other{0};         // to JavaScript: a GET/GETRANGE/STRLEN/EXISTS the fast path does not answer
  std::atomic<uint64_t> busy{0};          // to JavaScript: an earlier command of the connection was still running there
  std::atomic<int64_t> chunk_refs{0};     // chunk references and NVMe read buffers held by replies not yet written
};

struct RespFastPath {
  std::shared_ptr<store::Store> store;
  std::shared_ptr<store::BindingTable> bindings;
  uint64_t max_get_bytes = 512ull << 20;  // resp.maxGetBytes
  RespFastStats stats;
};

// One reply: `head` ("$n\r\n" or ":n\r\n"), then `pieces` (slices of chunk
// memory or NVMe read buffers, each holding what keeps its bytes), then "\r\n" when `bulk`.
// An array (MGET): `head` is "*n\r\n", `pieces` empty, and the n `elements`
// (bulk replies of DRAM slices) follow; `body_bytes` is then the sum of theirs.
struct RespAnswer {
  std::string head;
  std::vector<store::Piece> pieces;
  bool bulk = false;
  uint64_t body_bytes = 0;
  std::vector<RespAnswer> elements;
};

enum class RespFastResult {
  kNo,       // JavaScript answers
  kAnswer,   // `out` is the whole reply
  kPending,  // `out` holds the head; the value's pieces are being read from NVMe (store/disk_reads.h)
};

// Whether `args` is a command the fast path may answer at all (GET, GETRANGE,
// STRLEN, EXISTS, MGET in any case); the others are not counted in its statistics.
bool IsFastCommand(const std::vector<std::string>& args);

// Answers `args` into `out` (true), or leaves it to JavaScript (false, `out`
// untouched, every reference taken released). `grant` null: not authenticated.
bool TryRespFast(RespFastPath& fp, const std::vector<std::string>& args, const RespGrant* grant, RespAnswer& out);
// TryRespFast with chunks only on NVMe read by `disk` (kPending: its callback gets the pieces for `token`).
// A pending reply is counted as a hit by the caller once its bytes are there (NoteRespHit).
RespFastResult StartRespFast(RespFastPath& fp, const std::vector<std::string>& args, const RespGrant* grant,
                             RespAnswer& out, store::DiskReader* disk, uint64_t token);
void NoteRespHit(RespFastPath& fp, const RespAnswer& a);

// Redis's string2ll as src/resp/commands/types.ts parseInteger reads it
// (an optional '-', no leading zeros, at most 18 digits). False: not an integer.
bool ParseRespInteger(std::string_view s, int64_t& v);

// src/resp/commands/getrange.ts redisRange: the inclusive range to send, or false for "".
bool RedisRange(int64_t size, int64_t start, int64_t end, int64_t& from, int64_t& to);

}  // namespace weightcache::resp
