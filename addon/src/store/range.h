// The chunks of one object that cover a byte range, as a door sends them:
// one Ref per chunk (held until the answer is written, so eviction cannot
// free the bytes under the send) and the slice of each chunk the range
// covers. Used by every native door that answers from the store (the HTTP
// and RESP fast paths).
#pragma once
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "store/chunk_id.h"
#include "store/store.h"

namespace weightcache::store {

struct RangeView {
  std::vector<Ref> refs;
  std::vector<std::pair<const uint8_t*, size_t>> parts;
};

// Bytes [start, end] (inclusive, end < size) of an object of `size` bytes
// stored in chunks of `chunk_size`. False when a covered chunk is not in the
// store whole; `out` is then empty (the references taken so far are dropped).
bool LookupRange(Store& store, const std::array<uint8_t, kObjectIdBytes>& object, uint64_t size,
                 uint64_t chunk_size, uint64_t start, uint64_t end, RangeView* out);

}  // namespace weightcache::store
