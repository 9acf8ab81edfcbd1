// The transport's send side on the I/O thread: frames queued per connection
// (header + meta owned, payload borrowed from pinned JS memory, native store
// memory or a chunk file) and written by writev / sendfile as far as the socket
// takes them, each frame's resources released once written or abandoned.
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "crc32c.h"
#include "transport/file_payload.h"
#include "transport/io_loop.h"

namespace weightcache {
namespace {

constexpr int kMaxIov = 64;

}  // namespace

void IoLoop::Enqueue(Connection& c, OutFrame&& f) {
  // File payloads are normally prepared on the libuv thread pool before they
  // get here (transport_js.cc); this is the fallback, never the hot path.
  if (f.kind == OutFrame::kFile && f.file_fd < 0) {
    PrepareFilePayload(f, stats_);
  } else if (f.kind == OutFrame::kMemory && f.compute_crc) {
    f.h.payload_crc = Crc32c(0, f.mem, static_cast<size_t>(f.h.payload_length));
    stats_.bytes_crc_computed += f.h.payload_length;
  }
  EncodeHeader(f.h, f.meta.data(), f.meta.size(), f.header);
  if (IsRequest(f.h.type, f.h.flags)) c.awaiting.insert(f.h.request_id);
  stats_.queued_bytes += static_cast<int64_t>(f.total_len());
  f.queued = true;
  c.out.push_back(std::move(f));
  Flush(c);
}

void IoLoop::Flush(Connection& c) {
  if (c.fd < 0 || c.connecting) return;
  while (!c.out.empty()) {
    OutFrame& front = c.out.front();
    if (front.kind == OutFrame::kFile && front.written >= front.prefix_len()) {
      uint64_t done = front.written - front.prefix_len();
      off_t off = static_cast<off_t>(front.file_offset + done);
      size_t want = static_cast<size_t>(std::min<uint64_t>(front.h.payload_length - done, 1u << 30));
      ssize_t n = sendfile(c.fd, front.file_fd, &off, want);
      if (n > 0) {
        stats_.bytes_sendfile += static_cast<uint64_t>(n);
        front.written += static_cast<uint64_t>(n);
        if (front.written == front.total_len()) {
          FinishFrame(c, front);
          c.out.pop_front();
        }
        continue;
      }
      if (n == 0) {
        Close(c, "chunk file " + front.path + " shrank while it was being sent");
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      Close(c, Errno("sendfile failed", errno));
      return;
    }
    iovec iov[kMaxIov];
    int cnt = 0;
    for (OutFrame& f : c.out) {
      if (cnt > kMaxIov - 3) break;
      uint64_t w = f.written;
      if (w < kHeaderBytes) iov[cnt++] = {f.header + w, kHeaderBytes - w};
      uint64_t moff = w > kHeaderBytes ? w - kHeaderBytes : 0;
      if (moff < f.meta.size()) iov[cnt++] = {f.meta.data() + moff, f.meta.size() - moff};
      if (f.kind == OutFrame::kFile) break;  // its payload goes by sendfile, after this prefix
      if (f.kind == OutFrame::kMemory && f.h.payload_length > 0) {
        uint64_t poff = w > f.prefix_len() ? w - f.prefix_len() : 0;
        iov[cnt++] = {const_cast<uint8_t*>(f.mem) + poff, static_cast<size_t>(f.h.payload_length - poff)};
      }
    }
    ssize_t n = writev(c.fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      Close(c, Errno("write failed", errno));
      return;
    }
    uint64_t left = static_cast<uint64_t>(n);
    while (left > 0 && !c.out.empty()) {
      OutFrame& f = c.out.front();
      uint64_t take = std::min(left, f.total_len() - f.written);
      if (f.kind == OutFrame::kMemory) {
        uint64_t from = std::max(f.written, f.prefix_len());
        uint64_t to = f.written + take;
        if (to > from) stats_.bytes_writev += to - from;
      }
      f.written += take;
      left -= take;
      if (f.written < f.total_len()) break;
      FinishFrame(c, f);
      c.out.pop_front();
    }
  }
  c.want_write = !c.out.empty();
  UpdateInterest(c);
  if (c.out.empty() && c.close_after_flush) Close(c, c.close_reason);
}

void IoLoop::FinishFrame(Connection& c, OutFrame& f) {
  stats_.frames_sent++;
  bool connection_level = f.h.type == kHello || (f.h.type == kError && f.h.request_id == 0);
  if ((f.h.flags & kFlagResponse) && !connection_level && c.inbound_pending > 0) {
    c.inbound_pending--;
    if (c.reading_paused && c.inbound_pending < c.limits.max_in_flight) {
      c.reading_paused = false;
      UpdateInterest(c);
    }
  }
  f.written = f.total_len();
  ReleaseFrame(f);
}

void IoLoop::ReleaseFrame(OutFrame& f) {
  if (f.queued) stats_.queued_bytes -= static_cast<int64_t>(f.total_len());
  f.queued = false;
  f.written = f.total_len();
  if (f.file_fd >= 0) {
    close(f.file_fd);
    f.file_fd = -1;
  }
  if (f.ref || f.buffer) {
    f.ref.reset();
    f.buffer.reset();
    f.store.reset();
    stats_.native_chunk_refs--;
  }
  if (f.pin) {
    Event e = Event::Make(Event::kRelease, 0);
    e.pin = f.pin;
    Post(std::move(e));
    f.pin = nullptr;
  }
}

}  // namespace weightcache
