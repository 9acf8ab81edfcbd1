// One object read decided on an I/O thread, as src/read/object-read.ts
// decides it for every door: preconditions (If-Match, If-None-Match,
// If-Range by tag), the one range a Range header selects, and the chunks
// that cover it, looked up in the DRAM store with a reference on each.
// A front door's fast path maps its protocol's request onto a ReadAsk and
// the plan onto its protocol's answer; whatever the plan cannot decide
// exactly as JavaScript would is kDecline (JavaScript answers).
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
};

enum class Plan {
  kDecline,      // JavaScript answers (412, 416, several ranges, a date condition, an empty object, too many chunks)
  kMiss,         // a covered chunk is not in DRAM: JavaScript fills it
  kNotModified,  // If-None-Match matched: 304
  kContent,      // 200 or 206 (`partial`) of `range`; GET: `view` holds the slices and their references
};

struct ReadPlan {
  bool partial = false;
  ByteRange range;
  uint64_t length = 0;
  store::RangeView view;  // empty for HEAD (only the first chunk's presence is checked, as JavaScript does)
};

Plan PlanRead(store::Store& store, const store::VersionBinding& v, const ReadAsk& ask, ReadPlan& out);

}  // namespace weightcache::http::doors
