// Runs the request parser over a byte stream cut into reads, as a connection
// would (after each read, every whole command is taken): the common ground of
// the JavaScript binding for tests (parser_js.cc), the C++ unit driver and the
// fuzz target.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"

namespace weightcache::resp {

struct Replayed {
  std::vector<std::vector<std::string>> commands;
  bool failed = false;
  ProtocolError error;
  size_t buffered = 0;  // bytes left unparsed at the end (a command still incomplete)
};

// `cuts`: offsets where one read ends and the next begins (any order, out-of-range ignored).
Replayed Replay(std::string_view stream, const ParserLimits& limits, bool authenticated, std::vector<size_t> cuts);

// One line per command (arguments hex-encoded) and the error, for comparisons.
std::string Canonical(const Replayed& r);

}  // namespace weightcache::resp
