#include "store/range.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "store/disk_reads.h"

namespace weightcache::store {

void ReadBuffer::reset() {
  if (counter_) {
    counter_->fetch_sub(charge_, std::memory_order_relaxed);
    thread_->fetch_sub(charge_, std::memory_order_relaxed);
  }
  b_.Reset();
  charge_ = 0;
  counter_ = nullptr;
  thread_ = nullptr;
}

namespace {

// The blocks a read of [from, to) of a chunk covers, in whole 4 KiB units: what its buffer holds.
int64_t ChargeOf(uint64_t from, uint64_t to) {
  constexpr uint64_t kUnit = nvme::kAlignBytes;
  uint64_t a = from / kUnit * kUnit, b = (to + kUnit - 1) / kUnit * kUnit;
  return static_cast<int64_t>(b - a + kUnit);  // + one unit: a block size above 4 KiB can round further
}

}  // namespace

RangeStatus ReadRange(Store& store, DiskReader* disk, const RangeRequest& rq, RangeView* out, uint64_t token) {
  *out = RangeView();
  uint64_t cs = rq.chunk_size;
  uint64_t first = rq.start / cs, last = rq.end / cs;
  // Chunk indexes are 32 bits: a range past chunk 2^32 - 1 (an object of 256 TiB or more at 64 KiB
  // chunks, or an origin that claims such a size) is not the fast path's to answer.
  if (last > UINT32_MAX) return RangeStatus::kMiss;
  out->pieces.reserve(last - first + 1);
  std::vector<std::shared_ptr<const NvmeEntry>> entries;  // of the NVMe pieces, in order
  std::vector<size_t> on_disk;
  int64_t charge = 0;
  for (uint64_t i = first; i <= last; i++) {
    ChunkId id;
    id.object = rq.object;
    id.index = static_cast<uint32_t>(i);
    uint64_t extent = std::min(cs, rq.size - i * cs);
    uint64_t from = i == first ? rq.start - i * cs : 0;
    uint64_t to = i == last ? rq.end - i * cs + 1 : extent;
    Piece p;
    p.len = static_cast<size_t>(to - from);
    p.chunk_length = extent;
    Ref ref = store.Lookup(id);
    if (ref && ref.size() == extent) {
      p.data = ref.data() + from;
      p.chunk_crc = ref.crc32c();
      p.ref = std::move(ref);
    } else {
      std::shared_ptr<const NvmeEntry> e = disk ? disk->index().Find(id) : nullptr;
      if (!e || e->expect.data_length != extent) {
        out->pieces.clear();
        return RangeStatus::kMiss;
      }
      p.from_disk = true;
      p.chunk_crc = e->expect.data_crc;
      disk->index().NoteUsed(e);  // a hit: the tier's LRU order hears of it (TakeUsed)
      if (!rq.locate_only) {
        charge += ChargeOf(from, to);
        on_disk.push_back(out->pieces.size());
        entries.push_back(std::move(e));
      }
    }
    out->pieces.push_back(std::move(p));
  }
  out->first_from_disk = out->pieces[0].from_disk;
  out->whole_chunk = out->pieces.size() == 1 && out->pieces[0].whole_chunk();
  out->whole_crc = out->whole_chunk ? out->pieces[0].chunk_crc : 0;
  if (on_disk.empty()) return RangeStatus::kReady;
  if (!disk->Fits(charge)) {
    disk->index().stats().to_js_busy++;
    out->pieces.clear();
    return RangeStatus::kBusy;
  }
  auto* pending = new DiskReader::Pending();
  pending->token = token;
  pending->view = std::move(*out);
  out->pieces.clear();
  out->first_from_disk = pending->view.first_from_disk;
  out->whole_chunk = pending->view.whole_chunk;
  out->whole_crc = pending->view.whole_crc;
  std::vector<DiskReader::Read*> reads;
  reads.reserve(on_disk.size());
  for (size_t k = 0; k < on_disk.size(); k++) {
    size_t at = on_disk[k];
    uint64_t i = first + at;
    const NvmeEntry& e = *entries[k];
    auto* r = new DiskReader::Read();
    r->range = pending;
    r->piece = at;
    r->path = e.path;
    r->expect = e.expect;
    r->expect.by_id = true;
    std::memcpy(r->expect.object_id, rq.object.data(), kObjectIdBytes);
    r->expect.index = static_cast<uint32_t>(i);
    r->offset = i == first ? rq.start - i * cs : 0;
    r->length = pending->view.pieces[at].len;
    r->charge = ChargeOf(r->offset, r->offset + r->length);
    if (pending->view.pieces[at].whole_chunk()) {
      // A whole chunk goes to DRAM, read straight into store memory (no copy), as JavaScript
      // promotes one; without room there it is read into a buffer like any other piece.
      r->fill = store.Allocate(r->length);
      if (r->fill) {
        r->dest = r->fill.writable_data();
        r->store = &store;
        r->id.object = rq.object;
        r->id.index = static_cast<uint32_t>(i);
        r->label = e.label;
      }
    }
    reads.push_back(r);
  }
  disk->Start(pending, reads);
  return RangeStatus::kPending;
}

bool LookupRange(Store& store, const std::array<uint8_t, kObjectIdBytes>& object, uint64_t size,
                 uint64_t chunk_size, uint64_t start, uint64_t end, RangeView* out) {
  RangeRequest rq;
  rq.object = object;
  rq.size = size;
  rq.chunk_size = chunk_size;
  rq.start = start;
  rq.end = end;
  return ReadRange(store, nullptr, rq, out, 0) == RangeStatus::kReady;
}

}  // namespace weightcache::store
