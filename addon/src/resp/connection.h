// One client connection of the native RESP door, owned by one worker thread:
// the parser (which holds the bytes read and not yet parsed), the commands
// posted to JavaScript and not yet finished, and the reply bytes in the order
// JavaScript handed them over (it runs one connection's commands strictly in
// order, so that is pipeline order).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "net/access.h"
#include "resp/door.h"
#include "resp/parser.h"

namespace weightcache::resp {

struct RespConnection {
  RespConnection(uint64_t id_, int fd_, std::string peer_, const ParserLimits& limits)
      : id(id_), fd(fd_), peer(std::move(peer_)), parser(limits) {}

  uint64_t id;
  int fd;
  std::string peer;
  RequestParser parser;
  std::vector<std::string> args;  // scratch for the command being cut out

  // kReading: parsing commands. kFailed: a protocol error was posted; input is
  // read and dropped while JavaScript answers it. kEnding: JavaScript said
  // end: the queued replies go out, then kLinger: the write side is shut and
  // input read and dropped until the client closes or close_grace_ms passes
  // (so the client reads the last reply instead of a reset).
  enum State { kReading, kFailed, kEnding, kLinger } state = kReading;
  bool peer_closed = false;     // the client sent FIN: replies queued go out, then the connection closes
  bool reading_paused = false;  // at a bound: the socket is not read (its bytes wait in the kernel)
  uint32_t interest = 0;
  int64_t linger_deadline_ms = 0;

  // Commands posted to JavaScript and not yet finished, and their argument bytes.
  uint32_t in_flight = 0;
  std::deque<uint64_t> posted_sizes;
  uint64_t posted_bytes = 0;

  // Replies, in order; out.front() is written from out_off.
  std::deque<Piece> out;
  size_t out_off = 0;
  uint64_t out_bytes = 0;
  // Bytes written and not yet told to JavaScript: carried by the connection's next kCommand
  // event, or a kWritten event — at once while JavaScript waits for them (want_report: its
  // replies passed their high-water mark), else at the next tick (≤ 50 ms).
  uint64_t unreported_written = 0;
  bool dirty = false;        // in the worker's list of connections with unreported bytes
  bool want_report = false;  // until the queue is empty
  // Fast path: what the connection's token may read (null: not authenticated), and the commands
  // answered on the thread not yet told to JavaScript (they count as activity for its idle timeout).
  std::shared_ptr<const RespGrant> grant;
  uint64_t unreported_served = 0;
  uint64_t disk_wait = 0;  // a fast-path reply waiting on NVMe reads (its token): nothing after it is parsed
  // When the last bytes were read (the commands parsed from them arrived then: a fast-path reply's
  // duration runs from here to its last byte written), and the fast-path replies queued and not yet
  // written, oldest first (each ends at a piece marked ends_fast).
  int64_t read_ns = 0;
  struct FastReply {
    int64_t started_ns = 0;
    net::AccessRecord access;  // filled only with the access log on (duration and aborted at the end)
  };
  std::deque<FastReply> fast_replies;
};

}  // namespace weightcache::resp
