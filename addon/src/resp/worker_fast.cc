// The fast path's part of a RESP I/O thread (fastpath.h): a command answered
// from the native store without JavaScript (DRAM from chunk memory, NVMe once
// its blocks are read and verified), its reply queued in the connection's
// order, and its timing and access-log line. The rest of the thread (accept,
// read, parse, hand over, write, close) is worker.cc.
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "net/disk_wait.h"
#include "resp/worker.h"

namespace weightcache::resp {

namespace {

// Fast-path replies with fewer value bytes are copied into one piece (as JavaScript's small
// replies are, door_js.cc); larger ones are written from chunk memory, referenced until written.
constexpr uint64_t kCopyRepliesBelow = 16 * 1024;
// Bytes of a key an access-log line shows (as JavaScript's, src/resp/connection.ts).
constexpr size_t kLoggedKeyBytes = 1024;

}  // namespace

bool RespWorker::TryServeNatively(RespConnection& c, const std::vector<std::string>& args) {
  if (!opt_.fast || !IsFastCommand(args)) return false;
  RespFastPath& fp = *opt_.fast;
  if (c.in_flight > 0) {
    fp.stats.busy++;  // an earlier command is still running in JavaScript: its reply comes first
    return false;
  }
  RespAnswer a;
  uint64_t token = next_disk_;
  RespFastResult r = StartRespFast(fp, args, c.grant.get(), a, disk_.get(), token);
  if (r == RespFastResult::kNo) return false;
  if (r == RespFastResult::kPending) {
    next_disk_++;
    c.disk_wait = token;
    DiskWait& w = disk_waits_[token];
    w.conn = c.id;
    w.answer = std::move(a);
    w.args = args;
    w.started_ns = c.read_ns;
    return true;
  }
  QueueReply(c, a, args, c.read_ns);
  return true;
}

void RespWorker::QueueReply(RespConnection& c, RespAnswer& a, const std::vector<std::string>& args,
                            int64_t started_ns) {
  RespFastPath& fp = *opt_.fast;
  RespConnection::FastReply reply;
  reply.started_ns = started_ns;
  if (opt_.access_log) {
    // As JavaScript logs a command: its name in upper case, its key (cut to 1 KiB), the value bytes.
    net::AccessRecord& r = reply.access;
    r.method = args[0];
    for (char& ch : r.method) {
      if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    }
    if (args.size() > 1) r.target = args[1].substr(0, kLoggedKeyBytes);
    r.peer = c.peer;
    r.bytes = a.body_bytes;
    for (const store::Piece& part : a.pieces) {
      if (part.from_disk) r.source = "nvme";
    }
  }
  auto queue = [&](Piece&& p) {
    c.out_bytes += p.len;
    door_.stats().buffered_bytes += static_cast<int64_t>(p.len);
    c.out.push_back(std::move(p));
    // std::string's small-buffer storage moves with it: point at the new home.
    if (!c.out.back().ref) c.out.back().data = c.out.back().own.data();
  };
  // Heads, CRLFs and small values gather in `own`, one piece each time a large value's
  // slices interrupt it; an array's elements (MGET) follow its head in order.
  std::string own;
  auto flush = [&] {
    if (own.empty()) return;
    Piece p;
    p.native = true;
    p.own = std::move(own);
    p.len = p.own.size();
    queue(std::move(p));
    own.clear();
  };
  auto emit = [&](RespAnswer& v) {
    const bool copy = v.pieces.empty() || v.body_bytes < kCopyRepliesBelow;
    // One allocation for head, value and CRLF (appending them one by one would grow it twice).
    own.reserve(own.size() + v.head.size() + (copy ? v.body_bytes : 0) + 2);
    own += v.head;
    if (copy) {
      // A small value is copied (its chunk references and read buffers end with `a`).
      for (const store::Piece& part : v.pieces) own.append(reinterpret_cast<const char*>(part.data), part.len);
    } else {
      flush();
      for (store::Piece& part : v.pieces) {
        Piece p;
        p.native = true;
        p.data = reinterpret_cast<const char*>(part.data);
        p.len = part.len;
        p.ref = std::move(part);
        fp.stats.chunk_refs++;
        queue(std::move(p));
      }
    }
    v.pieces.clear();
    if (v.bulk) own += "\r\n";
  };
  emit(a);
  for (RespAnswer& e : a.elements) emit(e);
  flush();
  c.out.back().ends_fast = true;  // every reply queues at least its head
  c.fast_replies.push_back(std::move(reply));
  c.unreported_served++;
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(c.id);
  }
}

void RespWorker::OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  static_cast<RespWorker*>(self)->DiskDone(token, status, std::move(view));
}

void RespWorker::DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view) {
  DiskWait wait;
  RespConnection* live = net::TakeDiskWait(disk_waits_, conns_, token, wait);
  if (!live) return;  // the view's pieces are dropped with it
  RespConnection& c = *live;
  if (c.disk_wait != token) return;
  c.disk_wait = 0;
  if (status == store::RangeStatus::kReady) {
    wait.answer.pieces = std::move(view.pieces);
    NoteRespHit(*opt_.fast, wait.answer);
    QueueReply(c, wait.answer, wait.args, wait.started_ns);
  } else {
    // A block failed its CRC32C, or the file was gone or short: no byte of it was sent, and
    // JavaScript runs the command as if the fast path had never looked (it drops and refetches).
    opt_.fast->stats.misses++;
    PostCommand(c, wait.args);
  }
  Flush(c);
  if (c.fd >= 0) Parse(c);  // commands read behind it go on
  UpdateInterest(c);        // and the socket is read again
}

void RespWorker::FastDone(const RespConnection&, RespConnection::FastReply& r, int64_t now_ns, bool aborted) {
  int64_t ns = now_ns - r.started_ns;
  durations_.Observe(ns);
  if (!opt_.access_log) return;
  r.access.duration_ms = static_cast<double>(ns) / 1e6;
  r.access.aborted = aborted;
  access_.push_back(std::move(r.access));
}

void RespWorker::PostAccess() {
  net::AdmitAccess(access_, door_.stats().access_pending, door_.stats().access_dropped);
  if (access_.empty()) return;
  DoorEvent e;
  e.kind = DoorEvent::kAccess;
  e.access.swap(access_);
  Emit(std::move(e));
}

}  // namespace weightcache::resp
