// The RESP door's request parser (client → server framing), the native twin
// of src/resp/request-parser.ts: multibulk (`*N\r\n` then N `$len\r\n<bytes>\r\n`)
// and inline commands (a line not starting with '*'), incremental, bounded by
// limits.h, and failing with exactly the JavaScript parser's errors (the
// client sees the text: `-ERR Protocol error: <message>`), so the two doors
// answer a broken stream alike. test/resp/native-parser.test.ts checks it
// against the JavaScript parser and redis-parser on random streams cut at
// random points; addon/fuzz/resp_parser_fuzzer.cc fuzzes it.
//
// Bytes are appended as they arrive (Append, or Tail + Commit to read into the
// parser's own buffer); Next() cuts out the next whole command. The buffer
// holds only bytes not yet cut out, and is given back when it empties (past
// 4 KiB), so an idle connection holds none. Complete
// arguments are cut out as soon as they are whole, and every length is
// checked against the limits as soon as its header line is read, before any
// of its bytes are awaited. After kFailed the parser is unusable (the
// connection answers the error and closes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "resp/limits.h"

namespace weightcache::resp {

struct ProtocolError {
  std::string reason;   // a short stable label for the metric (no client bytes in it)
  std::string message;  // what the client is told after "Protocol error: "
};

class RequestParser {
 public:
  enum Status { kCommand, kNeedMore, kFailed };

  explicit RequestParser(const ParserLimits& limits) : limits_(limits) {}

  // Whether the client has authenticated (or no auth is configured): lifts the pre-auth limits.
  void set_authenticated(bool v) { authenticated_ = v; }
  bool authenticated() const { return authenticated_; }

  void Append(const char* data, size_t len);
  // Room for at least `min` more bytes at the end of the buffer; Commit(n) after writing n there.
  char* Tail(size_t min, size_t* room);
  void Commit(size_t n) { len_ += n; }

  // kCommand: `args` holds the next command (replacing what it held). kNeedMore:
  // more bytes are needed. kFailed: error() says why.
  Status Next(std::vector<std::string>& args);

  // Bytes received and not yet handed out as commands.
  size_t buffered() const { return len_ - pos_; }
  const ProtocolError& error() const { return error_; }
  const ParserLimits& limits() const { return limits_; }

 private:
  enum Line { kLineReady, kLineMore, kLineFailed };
  Status NeedMore();
  Status Fail(const char* reason, std::string message);
  Status FailPreauthTooBig();
  Line LineEnd(const char* what, const char* reason, size_t* nl);
  Line LengthLine(bool multibulk, int64_t* n);
  Status Inline(std::vector<std::string>& args);
  void Compact();

  ParserLimits limits_;
  bool authenticated_ = true;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  // The multibulk being read (args_active_), its arguments so far and what is left of it.
  bool args_active_ = false;
  std::vector<std::string> args_;
  int64_t args_left_ = 0;
  uint64_t arg_bytes_ = 0;  // bytes of the arguments already cut out: they count against the query buffer
  int64_t bulk_len_ = -1;   // length of the bulk whose header was read, -1 when a header is next
  bool failed_ = false;
  ProtocolError error_;
};

}  // namespace weightcache::resp
