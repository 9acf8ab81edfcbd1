#include "store/range.h"

#include <algorithm>
#include <cstdint>

namespace weightcache::store {

bool LookupRange(Store& store, const std::array<uint8_t, kObjectIdBytes>& object, uint64_t size,
                 uint64_t chunk_size, uint64_t start, uint64_t end, RangeView* out) {
  out->refs.clear();
  out->parts.clear();
  uint64_t first = start / chunk_size, last = end / chunk_size;
  // Chunk indexes are 32 bits: a range past chunk 2^32 - 1 (an object of 256 TiB or more at 64 KiB
  // chunks, or an origin that claims such a size) is not the fast path's to answer.
  if (last > UINT32_MAX) return false;
  out->refs.reserve(last - first + 1);
  out->parts.reserve(last - first + 1);
  for (uint64_t i = first; i <= last; i++) {
    ChunkId id;
    id.object = object;
    id.index = static_cast<uint32_t>(i);
    Ref ref = store.Lookup(id);
    uint64_t extent = std::min(chunk_size, size - i * chunk_size);
    if (!ref || ref.size() != extent) {
      out->refs.clear();
      out->parts.clear();
      return false;
    }
    uint64_t from = i == first ? start - i * chunk_size : 0;
    uint64_t to = i == last ? end - i * chunk_size + 1 : extent;
    out->parts.push_back({ref.data() + from, static_cast<size_t>(to - from)});
    out->refs.push_back(std::move(ref));
  }
  return true;
}

}  // namespace weightcache::store
