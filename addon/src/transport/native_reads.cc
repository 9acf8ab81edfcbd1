// READ_CHUNK answered on the transport's I/O thread from the native store
// (transport.nativeReads): a bound version's chunk from DRAM by writev, or
// from NVMe once its blocks are read through the thread's DiskReader and
// verified; anything else goes to JavaScript as an event (chunk_serve.h has
// the rules). The rest of the loop (accept, connect, read, frames, close) is
// io_loop.cc; the send side send.cc.
#include <sys/epoll.h>

#include "net/disk_wait.h"
#include "transport/io_loop.h"

namespace weightcache {
namespace {

// NVMe readers the I/O thread keeps (one per store its listeners serve from: one in a node); a
// store past them has its NVMe-only chunks answered by JavaScript.
constexpr size_t kMaxDiskReaders = 8;

}  // namespace

bool IoLoop::ServeNatively(Connection& c, Event& e) {
  // Only an accepted connection JavaScript has admitted (HELLO answered and, with a cluster secret,
  // AUTH verified): a stranger never gets native service, and its frames never get this far anyway.
  if (c.listener == 0 || c.preauth || c.reader.handshake_only()) return false;
  auto it = listeners_.find(c.listener);
  if (it == listeners_.end() || !it->second.chunks) return false;
  const std::shared_ptr<const transport::ChunkSource>& src = it->second.chunks;
  bool at_bound = disk_waits_.size() >= transport::kMaxTransportDiskReads;
  store::DiskReader* disk = at_bound ? nullptr : DiskFor(src->store->nvme());
  uint64_t token = next_disk_;
  transport::ChunkReply reply;
  switch (transport::ServeReadChunk(*src, e.meta.data(), e.meta.size(), store::MonotonicNs(), disk, token, &reply)) {
    case transport::ServeResult::kServed:
      break;
    case transport::ServeResult::kPending: {
      next_disk_++;
      ReleaseEventPayload(e);  // never anything: requests carry no payload
      DiskWait& w = disk_waits_[token];
      w.conn = c.id;
      w.request = std::move(e);
      w.reply = std::move(reply);
      w.src = src;
      stats_.native_nvme_waiting++;
      return true;
    }
    case transport::ServeResult::kPassUnbound:
      stats_.native_pass_unbound++;
      return false;
    case transport::ServeResult::kPassMiss:
      // With the reads at their bound no reader was asked: on NVMe, it is busy, not a miss.
      if (at_bound && reply.nvme_listed) stats_.native_pass_busy++;
      else stats_.native_pass_miss++;
      return false;
    case transport::ServeResult::kPassBusy:
      stats_.native_pass_busy++;
      return false;
    default:
      stats_.native_pass_other++;
      return false;
  }
  SendChunk(c, e.header, std::move(reply), src);
  ReleaseEventPayload(e);
  return true;
}

store::DiskReader* IoLoop::DiskFor(const std::shared_ptr<store::NvmeIndex>& index) {
  if (!index) return nullptr;
  for (Disk& d : disks_) {
    if (d.index == index.get()) return d.reader.get();
  }
  if (disks_.size() >= kMaxDiskReaders) return nullptr;
  Disk d;
  d.index = index.get();
  std::string why;
  d.reader = store::DiskReader::Create(index, OnDisk, this, &why);
  if (d.reader) {
    // Its completions wake this loop like a socket (OnReady with d.id).
    d.id = NextId();
    ev_.Add(d.reader->event_fd(), d.id, EPOLLIN);
  } else {
    std::fprintf(stderr, "weightcache transport: no NVMe reads on the I/O thread: %s\n", why.c_str());
  }
  disks_.push_back(std::move(d));
  return disks_.back().reader.get();
}

void IoLoop::OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  static_cast<IoLoop*>(self)->DiskDone(token, status, std::move(view));
}

void IoLoop::DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  DiskWait w;
  Connection* live = net::TakeDiskWait(disk_waits_, conns_, token, w);
  if (w.src) stats_.native_nvme_waiting--;
  if (!live) return;  // the peer went away meanwhile: the view's bytes are dropped with it
  Connection& c = *live;
  if (status == store::RangeStatus::kReady && view.pieces.size() == 1 &&
      transport::TakePiece(std::move(view.pieces[0]), &w.reply)) {
    stats_.native_nvme_served++;
    stats_.native_nvme_served_bytes += w.reply.length;
    SendChunk(c, w.request.header, std::move(w.reply), w.src);
    return;
  }
  // A block failed its CRC32C, or the file was gone or short: no byte of it is sent, and
  // JavaScript answers the request as if the I/O thread had never looked (it drops the
  // damaged chunk and refetches it).
  stats_.native_nvme_failed++;
  w.request.nvme_failed = true;
  Post(std::move(w.request));
}

void IoLoop::SendChunk(Connection& c, const FrameHeader& h, transport::ChunkReply&& reply,
                       const std::shared_ptr<const transport::ChunkSource>& src) {
  // The reply JavaScript would send (server-connection.ts respond): the request's type and id with
  // the RESPONSE flag, no meta, the bytes with their CRC32C (the stored one for a whole chunk).
  OutFrame f;
  f.h.type = h.type;
  f.h.flags = kFlagResponse;
  f.h.request_id = h.request_id;
  f.h.payload_length = reply.length;
  f.h.payload_crc = reply.crc;
  f.kind = OutFrame::kMemory;
  f.mem = reply.data;
  f.compute_crc = reply.compute_crc;
  f.ref = std::move(reply.ref);
  f.buffer = std::move(reply.buffer);
  f.store = src->store;
  stats_.native_chunk_refs++;
  stats_.native_served++;
  stats_.native_served_bytes += reply.length;
  Enqueue(c, std::move(f));
}

}  // namespace weightcache
