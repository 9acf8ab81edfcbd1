// One client connection of the native HTTP door, owned by one worker thread:
// the bytes read and not yet consumed, the parser state of the request being
// read, and the answers in request order (pipelined requests may be answered
// by JavaScript in any order; they are written in the order they came).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "http/body.h"
#include "http/door.h"
#include "http/parser.h"

namespace weightcache::http {

// One answer's place in the connection's output, created when its request is
// read (or for a refusal or a 100 Continue), filled when the answer arrives:
// at once (a head and body Buffers) or streamed in pieces (bytes framed by
// JavaScript, then an end). Bytes are released as soon as they are written,
// so a long streamed answer holds only what is queued, never what was sent.
struct Slot {
  uint64_t id = 0;           // 0: not a request's answer (100 Continue, a refusal)
  bool started = false;      // bytes of the answer may be queued: written once it is first
  bool complete = false;     // every byte is queued: the next answer may follow it
  bool counts = true;        // an answer to a request (in_flight), not an interim 100
  bool close_after = false;  // close once written
  bool disk = false;         // a fast-path answer waiting on its NVMe reads (JavaScript has not seen it)
  bool parked = false;       // a fast-path miss waiting for JavaScript to fill it (its request not posted)
  bool report_written = false;  // post a kDrain naming this answer once its last byte is written
  std::string head;
  size_t head_off = 0;       // bytes of head written
  std::deque<BodyPart> body;
  size_t part_off = 0;       // bytes of body.front() written
  uint64_t pending = 0;      // queued bytes not yet written
  // A fast-path answer: when its head was parsed (0: JavaScript's answer), and what the
  // request-duration histogram and the access log say of it.
  int64_t fast_started_ns = 0;
  uint64_t fast_bytes = 0;     // counted in DoorStats::fast_queued_bytes until the answer is written
  uint64_t posted_body = 0;    // the request's body bytes posted to JavaScript (HttpConnection::posted_body_bytes)
  int status = 0;
  uint64_t body_bytes = 0;
  const char* source = "dram";  // the answer's X-Cache-Source (a literal), for the access log
  std::string method, target;  // with the access log only
};
struct HttpConnection {
  HttpConnection(uint64_t id_, int fd_, std::string peer_, const ParserLimits& limits)
      : id(id_), fd(fd_), peer(std::move(peer_)), parser(limits), body(limits) {}

  uint64_t id;
  int fd;
  std::string peer;
  std::string address;         // AddressKey: what the per-address limit counts
  bool authenticated = true;   // presented a valid token (or auth is off); false counts in DoorStats::unauthenticated
  int64_t idle_since_ms = 0;   // when it last had no request being handled (idle-longest eviction)

  // Input: bytes [0, in_len) are unconsumed, starting at the current request's first byte.
  std::vector<char> in;
  size_t in_len = 0;
  RequestParser parser;
  BodyDecoder body;
  enum Phase { kHead, kBody, kDone } phase = kHead;  // kDone: reads no more (error, close, EOF)
  DoorEvent pending;  // the request being read: head copied out, body accumulating
  size_t consumed = 0; // bytes of `in` consumed by the body decoder so far

  // Output, in request order.
  std::deque<Slot> out;
  uint64_t out_bytes = 0;   // queued answer bytes not yet written
  uint32_t in_flight = 0;   // request slots not yet written completely
  uint64_t posted_body_bytes = 0;  // body bytes of requests posted to JavaScript, answers not yet written

  // Bytes written since JavaScript was last told (a 'drain' event carries them),
  // and whether it waits for the queue to empty before streaming more.
  uint64_t unreported_written = 0;
  bool want_drain = false;

  bool reading_paused = false;
  // A parsed head that is not the fast path's waits while an earlier request of the connection is
  // parked (worker_fill.cc): JavaScript must get the connection's requests in order. Parsed again
  // from in[0] once no slot is parked.
  bool held_for_fill = false;
  bool peer_closed = false;
  bool served_any = false;
  bool posted_any = false;  // a request went to JavaScript: it is told when the connection closes
  uint32_t interest = 0;
  int64_t header_deadline_ms = 0;  // 0: no head being waited for
  int64_t head_started_ms = 0;     // the current head's first byte arrived (0: not yet known)
  int64_t body_deadline_ms = 0;    // 0: no body being read; else its last byte is due by then
  int64_t last_progress_ms = 0;
};

}  // namespace weightcache::http
