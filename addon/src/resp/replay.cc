#include "resp/replay.h"

#include <algorithm>

namespace weightcache::resp {

Replayed Replay(std::string_view stream, const ParserLimits& limits, bool authenticated, std::vector<size_t> cuts) {
  Replayed out;
  RequestParser p(limits);
  p.set_authenticated(authenticated);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(stream.size());
  size_t prev = 0;
  std::vector<std::string> args;
  for (size_t cut : cuts) {
    if (cut < prev || cut > stream.size()) continue;
    p.Append(stream.data() + prev, cut - prev);
    prev = cut;
    for (;;) {
      RequestParser::Status s = p.Next(args);
      if (s == RequestParser::kCommand) {
        out.commands.push_back(args);
        continue;
      }
      if (s == RequestParser::kFailed) {
        out.failed = true;
        out.error = p.error();
        out.buffered = p.buffered();
        return out;
      }
      break;
    }
  }
  out.buffered = p.buffered();
  return out;
}

std::string Canonical(const Replayed& r) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (const auto& cmd : r.commands) {
    for (const auto& a : cmd) {
      s += '[';
      for (unsigned char c : a) s += hex[c >> 4], s += hex[c & 15];
      s += ']';
    }
    s += '\n';
  }
  if (r.failed) s += "error " + r.error.reason + ": " + r.error.message + "\n";
  return s;
}

}  // namespace weightcache::resp
