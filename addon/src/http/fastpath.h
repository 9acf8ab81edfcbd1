// The native door's fast path: a GET or HEAD of /v1/objects/{container}/{key}
// answered on the I/O thread, without JavaScript, when the name's version
// binding (store/bindings.h) is valid, the token (if auth is on) may read the
// container (auth/token_table.h), and every chunk the answer covers is in the
// native store: in DRAM (store/store.h), or on NVMe (store/nvme_index.h), read
// by the I/O thread's DiskReader without blocking it (store/range.h). The answer is the JavaScript door's, byte for
// byte (src/http/objects.ts through node's ServerResponse): same status line,
// the same headers in the same order, the same body, sent from chunk memory
// (writev) with a reference on each chunk until its bytes are written.
//
// Anything the fast path does not answer exactly as JavaScript would goes to
// JavaScript unchanged (docs/native-http-door.md lists what takes which path).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_table.h"
#include "http/parser.h"
#include "http/rfc9110.h"
#include "store/bindings.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache::http {
namespace doors {
struct DoorRoutes;  // doors/routes.h: the front doors' object reads on the fast path
}

// Most chunks one fast-path answer references; a larger range is answered by
// JavaScript (which streams it with a bounded read-ahead).
inline constexpr uint64_t kMaxFastPathChunks = 64;

// Misses parked on the I/O threads while JavaScript fills them (FastPath::fill_misses):
// at most this many per thread and in all; past either, JavaScript answers the
// request whole, as it did before misses were parked.
inline constexpr size_t kMaxParkedFillsPerThread = 256;
inline constexpr int64_t kMaxParkedFills = 1024;
// Fills one request may ask for (a name to resolve, then its chunks, then once more if
// a chunk was evicted before the answer was planned): then JavaScript answers it whole.
inline constexpr uint32_t kMaxFillAttempts = 3;
// Most chunks a parked miss waits for before its first byte is sent: a larger miss goes to
// JavaScript whole, which streams it as its chunks arrive (a parked range is sent only once
// every chunk it covers is resident).
inline constexpr uint64_t kMaxFillChunks = 16;
// ... and at most this share of the DRAM budget (1/kFillDramShare): the chunks a parked range
// needs must still be resident when it is planned again, not evicted by its own later chunks.
inline constexpr uint64_t kFillDramShare = 8;

struct FastPathStats {
  std::atomic<uint64_t> hits{0};             // answered on the fast path (200, 206, 304)
  std::atomic<uint64_t> body_bytes{0};       // body bytes of those answers
  std::atomic<uint64_t> body_hits{0};        // of the hits: GETs with a body (object reads, as JavaScript counts them)
  std::atomic<uint64_t> not_modified{0};     // of the hits: 304
  std::atomic<uint64_t> no_binding{0};       // to JavaScript: no valid binding for the name
  std::atomic<uint64_t> misses{0};           // to JavaScript: a chunk in neither DRAM nor NVMe, a failed or refused NVMe read
  std::atomic<uint64_t> nvme_hits{0};        // of the body hits: the first chunk read from NVMe (source nvme)
  std::atomic<uint64_t> nvme_body_bytes{0};  // of body_bytes: read from NVMe
  std::atomic<uint64_t> unauthorised{0};     // to JavaScript: token missing, unknown or out of scope
  std::atomic<uint64_t> other{0};            // to JavaScript: a request the fast path does not answer
  std::atomic<uint64_t> busy{0};             // to JavaScript: an earlier request of the connection was still there
  std::atomic<int64_t> chunk_refs{0};        // chunk references and NVMe read buffers held by answers not yet written
  // Misses JavaScript filled (fill_misses): parked (each fill asked for), resumed (answered
  // on the fast path once filled), fallback (handed whole to JavaScript after a fill failed
  // or did not make the answer plannable), overflow (not parked: at a parked-request limit,
  // JavaScript answered), timeouts (no fill within the request timeout: 504).
  std::atomic<uint64_t> fill_parked{0};
  std::atomic<uint64_t> fill_resumed{0};
  std::atomic<uint64_t> fill_fallback{0};
  std::atomic<uint64_t> fill_overflow{0};
  std::atomic<uint64_t> fill_timeouts{0};
  std::atomic<int64_t> fill_waiting{0};      // requests parked now, all threads
  // Of the resumed body answers whose first chunk was in DRAM: those whose fill fetched that
  // chunk, by where from (FillSource), and their bytes not read from NVMe. They are counted in
  // body_hits / body_bytes too; JavaScript moves them to the fill's source (as its own reads count).
  std::atomic<uint64_t> fill_source_hits[3] = {};
  std::atomic<uint64_t> fill_source_bytes[3] = {};
};

// Where a parked miss's fill found the range's first chunk: what the answer's X-Cache-Source
// says (JavaScript's read reports the first chunk's source), not the DRAM it is answered from.
enum FillSource { kFillOrigin = 0, kFillPeer = 1, kFillNvme = 2 };
// "origin" / "peer" / "nvme" → FillSource; anything else (DRAM, resolve only) → -1.
int FillSourceOf(std::string_view s);

struct FastPath {
  std::shared_ptr<store::Store> store;
  std::shared_ptr<store::BindingTable> bindings;
  std::shared_ptr<auth::TokenTable> tokens;
  uint32_t max_ranges = 16;               // http.maxRanges: a Range header is read exactly as JavaScript reads it
  uint32_t keep_alive_timeout_s = 65;     // Keep-Alive: timeout=… (node's)
  std::shared_ptr<doors::DoorRoutes> doors;  // null: requests outside /v1/objects/ go to JavaScript
  // A miss of /v1/objects (no binding, or a chunk in no tier) is parked and JavaScript asked to
  // fill it (kFill), then answered here; false: JavaScript answers misses whole.
  bool fill_misses = false;
  FastPathStats stats;
};

// One answer: its head and its body as slices of chunk memory or NVMe read
// buffers, each piece holding what keeps its bytes alive.
// What JavaScript is asked to make resident for a parked miss (FastResult::kFill).
struct FillAsk {
  std::string name;  // "container/key"
  std::string pin;   // ?version= (quotes stripped), or empty
  std::string etag;  // the binding's version the chunks belong to (empty: resolve the name only)
  int64_t first = -1, last = -1;  // the chunk indexes the range covers (-1: resolve the name only)
};

struct FastAnswer {
  std::string head;
  std::vector<store::Piece> pieces;
  uint64_t body_bytes = 0;
  bool close = false;
  bool head_only = false;
  // A front door's answer (doors/routes.h): its door's counters, counted with the hit (NoteFastHit)
  // instead of the objects door's body_hits / nvme_hits. Null: the objects door's answer.
  std::atomic<uint64_t>* door_hits = nullptr;
  std::atomic<uint64_t>* door_body_hits = nullptr;
  std::atomic<uint64_t>* door_nvme_body_hits = nullptr;
  FillAsk fill;  // kFill
  std::string etag;  // kAnswer / kPending of /v1/objects: the version answered
  int fill_source = -1;              // a resumed miss: the FillSource its answer reports (see NoteFillSource)
  const char* source_name = nullptr;  // set by NoteFillSource: the X-Cache-Source it wrote
};

enum class FastResult {
  kNo,       // JavaScript answers
  kAnswer,   // `out` is the whole answer
  kPending,  // `out` holds the head; the body's pieces are being read from NVMe (see StartFastPath)
  kFill,     // a miss JavaScript may fill (fp.fill_misses): `out.fill` says what; then plan again
};

// Answers `h` on the fast path into `out`, or leaves it to JavaScript (kNo,
// `out` untouched, every reference taken released). `date` is the current
// IMF-fixdate (node's Date header, cached per second by the caller). With a
// `disk` reader, chunks only on NVMe are read: kPending, and the reader's
// callback later gets the pieces (token) or a miss, which the caller then
// sends to JavaScript. A hit is counted (NoteFastHit) once its bytes are there.
FastResult StartFastPath(FastPath& fp, const RequestHead& h, std::string_view date, FastAnswer& out,
                         store::DiskReader* disk, uint64_t token);
// Counts an answered hit (StartFastPath does for kAnswer; the caller for a completed kPending).
void NoteFastHit(FastPath& fp, const FastAnswer& a);
// A resumed miss answered with its first chunk from DRAM (`a.fill_source` set): its
// X-Cache-Source says where the fill got that chunk, and it is counted there. Call once the
// answer is complete (its head built, NoteFastHit done).
void NoteFillSource(FastPath& fp, FastAnswer& a);
// DRAM only: StartFastPath without a disk reader; true when answered.
bool TryFastPath(FastPath& fp, const RequestHead& h, std::string_view date, FastAnswer& out);

}  // namespace weightcache::http
