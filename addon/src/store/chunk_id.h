// ChunkId: how the store names a chunk. (object id, index), where the object
// id is the first 16 bytes of the SHA-256 of the versioned object's canonical
// tuple (src/chunk/name.ts objectId()). Fixed size, so a lookup hashes 20
// bytes and builds no string; an I/O thread that holds a name's version
// binding (which carries the object id) finds chunk i with no string work.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>

namespace weightcache::store {

inline constexpr size_t kObjectIdBytes = 16;

struct ChunkId {
  std::array<uint8_t, kObjectIdBytes> object{};
  uint32_t index = 0;

  bool operator==(const ChunkId& o) const { return index == o.index && object == o.object; }
};

// The object id is already a cryptographic hash: its first 8 bytes are
// uniform, so mixing in the index (odd multiplier, then a shift-xor) is all
// the hashing a chunk id needs. The top bits pick the index shard, the low
// bits the bucket inside it, so they must both be well mixed.
inline uint64_t HashOf(const ChunkId& id) {
  uint64_t h;
  std::memcpy(&h, id.object.data(), sizeof h);
  h ^= (uint64_t{id.index} + 1) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return h;
}

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const { return static_cast<size_t>(HashOf(id)); }
};

}  // namespace weightcache::store
