// One object read decided on an I/O thread, as src/read/object-read.ts
// decides it for every door: preconditions (If-Match, If-None-Match,
// If-Range by tag), the one range a Range header selects, and the chunks
// that cover it, read through store::ReadRange (DRAM slices with a
// reference on each; with a disk reader, verified NVMe blocks, possibly
// pending). The `/v1/objects` fast path (fastpath.cc) and every front door's
// map their protocol's request onto a ReadAsk and the plan onto their
// protocol's answer; whatever the plan cannot decide exactly as JavaScript
// would is kDecline (JavaScript answers).
#pragma once
#include <cstdint>

#include "http/parser.h"
#include "http/rfc9110.h"
#include "store/bindings.h"
#include "store/range.h"
#include "store/store.h"

namespace weightcache::http::doors {

struct ReadAsk {
  const Header* if_match = nullptr;
  const Header* if_none_match = nullptr;
  const Header* if_range = nullptr;
  const Header* range = nullptr;
  bool head_only = false;
  // Most ranges the door answers at once (a Range with more is the whole object, as range.ts reads it).
  uint32_t max_ranges = 1;
  // Most chunks one answer references (kMaxFastPathChunks).
  uint64_t max_chunks = 64;
  // NVMe-only chunks are read by this thread's reader (null: DRAM only); kPending hands the view
  // to its callback with `token`.
  store::DiskReader* disk = nullptr;
  uint64_t token = 0;
};

enum class Plan {
  kDecline,      // JavaScript answers (412, 416, several ranges, a date condition, an empty object, too many chunks)
  kMiss,         // a covered chunk is in neither tier (or the thread's disk bounds are reached): JavaScript
  kNotModified,  // If-None-Match matched: 304
  kContent,      // 200 or 206 (`partial`) of `range`; GET: `view` holds the slices and their references
  kPending,      // as kContent, but NVMe reads are under way: the pieces come to the disk reader's callback
};

struct ReadPlan {
  bool partial = false;
  ByteRange range;
  uint64_t length = 0;
  // The chunks the range covers (set for kMiss too: what a fill must make resident).
  uint64_t first_chunk = 0, last_chunk = 0;
  // For HEAD only the first chunk's presence is checked (as JavaScript does) and no piece is kept;
  // first_from_disk / whole_chunk / whole_crc are set either way.
  store::RangeView view;
};

Plan PlanRead(store::Store& store, const store::VersionBinding& v, const ReadAsk& ask, ReadPlan& out);

}  // namespace weightcache::http::doors
