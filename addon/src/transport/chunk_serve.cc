#include "transport/chunk_serve.h"

#include <cstring>
#include <string>

#include "store/disk_reads.h"
#include "store/nvme_index.h"

namespace weightcache::transport {
namespace {

// A bounds-checked little-endian reader over a meta block (src/transport/codec.ts MetaReader).
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool U16(uint16_t* v) {
    if (n_ - at_ < 2) return false;
    *v = static_cast<uint16_t>(p_[at_] | (p_[at_ + 1] << 8));
    at_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    if (n_ - at_ < 4) return false;
    uint32_t x = 0;
    for (int i = 3; i >= 0; i--) x = (x << 8) | p_[at_ + static_cast<size_t>(i)];
    *v = x;
    at_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (n_ - at_ < 8) return false;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p_[at_ + static_cast<size_t>(i)];
    if (x > kMaxMetaU64) return false;
    *v = x;
    at_ += 8;
    return true;
  }
  bool Str(std::string_view* s) {
    uint16_t len;
    if (!U16(&len) || n_ - at_ < len) return false;
    *s = std::string_view(reinterpret_cast<const char*>(p_ + at_), len);
    at_ += len;
    return true;
  }
  bool AtEnd() const { return at_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
};

}  // namespace

bool ParseReadChunk(const uint8_t* p, size_t n, ReadChunkMeta* out) {
  Reader r(p, n);
  ReadChunkMeta m;
  if (!r.Str(&m.origin_id) || !r.Str(&m.container) || !r.Str(&m.key) || !r.Str(&m.etag)) return false;
  if (!r.U64(&m.size) || !r.U32(&m.chunk_size) || !r.U32(&m.index)) return false;
  if (!r.U64(&m.offset) || !r.U32(&m.length) || !r.U32(&m.flags)) return false;
  if ((m.flags & ~kReadLocalOnly) != 0) return false;  // STAND_IN (with its report) or unknown bits
  if (!r.AtEnd()) return false;
  *out = m;
  return true;
}

ServeResult ServeReadChunk(const ChunkSource& src, const uint8_t* meta, size_t meta_len, int64_t now_ns,
                           store::DiskReader* disk, uint64_t token, ChunkReply* out) {
  ReadChunkMeta m;
  if (!ParseReadChunk(meta, meta_len, &m)) return ServeResult::kPassMeta;
  // A container never holds '/', so "container/key" names one object; a request that
  // splits a name elsewhere is not the bound object, whatever its joined name.
  if (m.container.empty() || m.container.find('/') != std::string_view::npos || m.key.empty()) {
    return ServeResult::kPassUnbound;
  }
  if (m.origin_id != src.origin_id || m.chunk_size == 0) {
    return ServeResult::kPassUnbound;
  }
  std::string name;
  name.reserve(m.container.size() + 1 + m.key.size());
  name.append(m.container).append(1, '/').append(m.key);
  std::shared_ptr<const store::VersionBinding> b = src.bindings->Lookup(name, now_ns);
  if (!b || b->etag != m.etag || b->size != m.size || b->chunk_size != m.chunk_size) {
    return ServeResult::kPassUnbound;
  }
  // The range rules of src/transport/range.ts; a read JavaScript would refuse is its to refuse.
  uint64_t chunks = (m.size + m.chunk_size - 1) / m.chunk_size;
  if (m.index >= chunks) return ServeResult::kPassRange;
  uint64_t start = uint64_t{m.index} * m.chunk_size;
  uint64_t extent = std::min<uint64_t>(m.chunk_size, m.size - start);
  if (m.length == 0 || m.length > src.max_frame_bytes || m.offset > extent || m.length > extent - m.offset) {
    return ServeResult::kPassRange;
  }
  // The one read-path step below the doors (store/range.h): DRAM sliced at once, NVMe read and
  // verified block by block by `disk` (a whole chunk straight into DRAM store memory).
  store::RangeRequest rq;
  rq.object = b->object;
  rq.size = m.size;
  rq.chunk_size = m.chunk_size;
  rq.start = start + m.offset;
  rq.end = rq.start + m.length - 1;
  store::RangeView view;
  store::RangeStatus st = store::ReadRange(*src.store, disk, rq, &view, token);
  out->length = m.length;
  out->compute_crc = !view.whole_chunk;
  // A whole chunk's CRC32C: the stored one (DRAM), or the one its file's header holds and its
  // reader verifies the blocks against (NVMe): known before the bytes are.
  out->crc = view.whole_chunk ? view.whole_crc : 0;
  switch (st) {
    case store::RangeStatus::kReady:
      if (view.pieces.size() != 1 || !TakePiece(std::move(view.pieces[0]), out)) return ServeResult::kPassMiss;
      return ServeResult::kServed;
    case store::RangeStatus::kPending:
      return ServeResult::kPending;
    case store::RangeStatus::kBusy:
      return ServeResult::kPassBusy;
    case store::RangeStatus::kMiss:
      if (!disk && src.store->nvme()) {
        // Without a reader the index was not asked: say whether it holds the chunk (busy, not a miss).
        out->nvme_listed = src.store->nvme()->Find(store::ChunkId{b->object, m.index}) != nullptr;
      }
      break;
  }
  return ServeResult::kPassMiss;
}

bool TakePiece(store::Piece&& piece, ChunkReply* out) {
  if (!piece.data || piece.len != out->length) return false;
  out->data = piece.data;
  out->ref = std::move(piece.ref);
  out->buffer = std::move(piece.buffer);
  return static_cast<bool>(out->ref) || static_cast<bool>(out->buffer);
}

}  // namespace weightcache::transport
