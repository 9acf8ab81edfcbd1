// One I/O thread of the native RESP door (door.h): the handler of its event
// loop (net/event_loop.h). It accepts, reads, parses and bounds connections,
// posts whole commands to JavaScript and writes the replies JavaScript hands
// back, in order. Replies and acknowledgements arrive from the JavaScript
// thread through the inbox of net::WorkerThread and the loop's doorbell; events go out
// in one batch per wakeup. Commands answered from the native store (the fast
// path), their replies, timing and access-log lines: worker_fast.cc.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/door.h"
#include "net/histogram.h"
#include "resp/connection.h"
#include "resp/door.h"
#include "resp/fastpath.h"
#include "store/disk_reads.h"

namespace weightcache::resp {

// Start() and Submit(std::vector<Send>&) (from the JavaScript thread: taken, in order) come
// from net::WorkerThread.
class RespWorker final : public net::WorkerThread<Send> {
 public:
  using Door = RespDoor;
  RespWorker(RespDoor& door, uint32_t index, int listen_fd);
  ~RespWorker() override;  // stops and joins the thread, closes every socket, drops every pin

  // net::EventLoop::Handler
  void OnWake() override;
  void OnAccept(int fd, const sockaddr_storage& peer) override;
  void OnReady(uint64_t id, uint32_t events) override;
  void OnTick(int64_t now_ms) override;
  bool HasWork() const override { return !conns_.empty(); }
  void AfterEvents() override;
  // This thread's fast-path reply durations (any thread reads them).
  const net::LatencyHistogram& durations() const { return durations_; }

 private:
  // The seam of the fast path (fastpath.h): a command answered here (from the
  // native store, with the connection's grant checked natively) is never
  // posted. Only while no command posted before it is still running in
  // JavaScript: its reply goes after theirs, in pipeline order.
  bool TryServeNatively(RespConnection& c, const std::vector<std::string>& args);
  // Queues a fast-path reply to `args` (whose bytes were read at `started_ns`): timed once written.
  void QueueReply(RespConnection& c, RespAnswer& a, const std::vector<std::string>& args, int64_t started_ns);
  // A fast-path reply written (or abandoned, `aborted`): timed, and logged with the access log on.
  void FastDone(const RespConnection& c, RespConnection::FastReply& r, int64_t now_ns, bool aborted);
  // This wakeup's access records, in one event (bounded: net::AdmitAccess).
  void PostAccess();
  void PostCommand(RespConnection& c, std::vector<std::string>& args);
  // A fast-path reply's NVMe reads completed (store/disk_reads.h): its bytes, or JavaScript answers.
  static void OnDisk(void* self, uint64_t token, store::RangeStatus status, store::RangeView&& view);
  void DiskDone(uint64_t token, store::RangeStatus status, store::RangeView&& view);

  void OnReadable(RespConnection& c);
  void Parse(RespConnection& c);
  bool CanPost(const RespConnection& c) const;
  void Apply(Send& s);
  void Flush(RespConnection& c);
  void UpdateInterest(RespConnection& c);
  void Close(RespConnection& c, const std::string& reason);
  void Release(Piece& p);
  // Tells JavaScript the bytes written: connections it waits on (or all, on a tick).
  void Report(bool all);
  void Emit(DoorEvent&& e) { outbox_.push_back(std::move(e)); }
  uint64_t Wire(const RespConnection& c) const { return net::WireId(index_, c.id); }

  RespDoor& door_;
  const DoorOptions& opt_;
  uint32_t index_;
  std::unordered_map<uint64_t, std::unique_ptr<RespConnection>> conns_;
  std::vector<std::unique_ptr<RespConnection>> graveyard_;  // closed this wakeup; freed after it
  std::vector<uint64_t> dirty_;                             // connections with bytes written and not yet reported
  std::vector<DoorEvent> outbox_;                           // posted in one batch per wakeup
  std::vector<char> scratch_;                               // every read() of this thread lands here first
  uint64_t next_conn_ = net::EventLoop::kFirstId;
  // The fast path's NVMe reads (null without the fast path) and the replies waiting on them:
  // while one waits, its connection parses no further command (replies stay in order).
  struct DiskWait {
    uint64_t conn = 0;
    RespAnswer answer;               // head and sizes; the pieces arrive with the reads
    std::vector<std::string> args;   // what JavaScript gets if a read fails
    int64_t started_ns = 0;          // when the command's bytes were read
  };
  static constexpr uint64_t kDiskId = ~uint64_t{0};  // the disk reader's event fd in the loop
  std::unique_ptr<store::DiskReader> disk_;
  std::unordered_map<uint64_t, DiskWait> disk_waits_;
  uint64_t next_disk_ = 1;
  net::LatencyHistogram durations_;
  std::vector<net::AccessRecord> access_;  // posted once per wakeup
};

}  // namespace weightcache::resp
