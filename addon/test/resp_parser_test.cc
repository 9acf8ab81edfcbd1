// Unit tests of the RESP request parser (addon/src/resp/), run by npm test
// (test/native/cpp.test.ts) twice: built plainly and under ASan+UBSan.
//
// Each case is replayed whole and must give the expected commands and error
// (the error text is what the client reads, and must be the JavaScript
// parser's: test/resp/native-parser.test.ts compares the two directly).
// Cases away from the size limits are also replayed split at every offset
// into two pieces and one byte at a time, and must give the same result.
// Then generated pipelines must parse to exactly what was encoded.
//
//   resp_parser_test                  run everything, exit 1 on any failure
//   resp_parser_test --write-corpus D write each case as a fuzz seed into D
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "resp/replay.h"
#include "check.h"

using namespace weightcache::resp;

namespace {


struct Case {
  std::string name;
  std::string input;
  std::string want;  // Canonical() of the expected result
  bool authenticated = true;
  ParserLimits limits;
  bool split_invariant = true;
};

std::string Hex(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += hex[c >> 4], out += hex[c & 15];
  return out;
}

// Expected output: commands as lists of arguments, then an optional error line.
std::string Want(const std::vector<std::vector<std::string>>& cmds, const std::string& error = "") {
  std::string s;
  for (const auto& c : cmds) {
    for (const auto& a : c) s += "[" + Hex(a) + "]";
    s += "\n";
  }
  if (!error.empty()) s += "error " + error + "\n";
  return s;
}

std::string Mb(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

std::vector<Case> Cases() {
  std::vector<Case> cs;
  auto add = [&](std::string name, std::string input, std::string want, bool auth = true) {
    Case c;
    c.name = std::move(name);
    c.input = std::move(input);
    c.want = std::move(want);
    c.authenticated = auth;
    cs.push_back(c);
  };
  add("multibulk", Mb({"GET", "a/b"}), Want({{"GET", "a/b"}}));
  add("pipeline", Mb({"PING"}) + Mb({"GETRANGE", "k", "0", "-1"}), Want({{"PING"}, {"GETRANGE", "k", "0", "-1"}}));
  add("binary args", Mb({std::string("\0\r\n$*", 5), ""}), Want({{std::string("\0\r\n$*", 5), ""}}));
  add("star zero and negative", "*0\r\n*-1\r\n" + Mb({"PING"}), Want({{"PING"}}));
  add("incomplete", "*2\r\n$3\r\nGET\r\n$1\r\n", Want({}));
  add("inline", "PING\r\n\r\n  GET  \"a b\" \nECHO 'x\\'y'\r\n", Want({{"PING"}, {"GET", "a b"}, {"ECHO", "x'y"}}));
  add("inline escapes", "SET \"\\x41\\n\\t\\q\" x\n", Want({{"SET", "A\n\tq", "x"}}));
  add("inline unbalanced", "GET \"a\n", Want({}, "unbalanced_quotes: unbalanced quotes in request"));
  add("inline quote then letter", "GET \"a\"b\n", Want({}, "unbalanced_quotes: unbalanced quotes in request"));
  add("resp3 type is inline", "%1\r\n", Want({{"%1"}}));
  add("too many args", "*4097\r\n", Want({}, "too_many_args: invalid multibulk length (4097 arguments; the limit is 4096)"));
  add("multibulk past INT_MAX", "*3000000000\r\n", Want({}, "multibulk_length: invalid multibulk length"));
  add("multibulk not a number", "*1x\r\n", Want({}, "multibulk_length: invalid multibulk length"));
  add("multibulk empty", "*\r\n", Want({}, "multibulk_length: invalid multibulk length"));
  add("multibulk bare LF", "*1\n", Want({}, "multibulk_header: invalid multibulk length"));
  add("multibulk 19 digits", "*0000000000000000001\r\n", Want({}, "multibulk_length: invalid multibulk length"));
  add("bulk negative", "*1\r\n$-1\r\n", Want({}, "bulk_length: invalid bulk length"));
  add("bulk too long", "*1\r\n$536870913\r\n", Want({}, "bulk_length: invalid bulk length"));
  add("bulk not a number", "*1\r\n$+1\r\n", Want({}, "bulk_length: invalid bulk length"));
  add("bulk bare LF", "*1\r\n$1\n", Want({}, "bulk_header: invalid bulk length"));
  add("nested array", "*1\r\n*1\r\n", Want({}, "expected_bulk: expected '$', got '*'"));
  add("control byte", std::string("*1\r\n\x01", 5), Want({}, "expected_bulk: expected '$', got '\\x01'"));
  add("space", "*1\r\n ", Want({}, "expected_bulk: expected '$', got '\\x20'"));
  add("bad terminator", "*1\r\n$1\r\nab\r\n", Want({}, "bulk_terminator: expected CRLF after bulk string"));
  add("good then bad", Mb({"PING"}) + "*1\r\n:1\r\n", Want({{"PING"}}, "expected_bulk: expected '$', got ':'"));
  add("preauth args", "*11\r\n", Want({}, "preauth_args: unauthenticated multibulk length"), false);
  add("preauth inline args", "a b c d e f g h i j k\n", Want({}, "preauth_args: unauthenticated multibulk length"), false);
  add("preauth bulk", "*1\r\n$16385\r\n", Want({}, "preauth_bulk: unauthenticated bulk length"), false);
  add("preauth fine", Mb({"AUTH", "token"}), Want({{"AUTH", "token"}}), false);
  add("authenticated 11 args", Mb({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}),
      Want({{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}}));
  {
    Case c;
    c.name = "too big inline";
    c.input = std::string(64 * 1024 + 1, 'a');
    c.want = Want({}, "inline_too_big: too big inline request");
    c.split_invariant = false;
    cs.push_back(c);
    c.name = "too big mbulk count string";
    c.input = "*" + std::string(64 * 1024, '1');
    c.want = Want({}, "multibulk_header_too_big: too big mbulk count string");
    cs.push_back(c);
    c.name = "query buffer";
    c.input = "*2\r\n$100\r\n" + std::string(100, 'x') + "\r\n$100\r\n";
    c.limits.max_query_buffer_bytes = 64;
    c.want = Want({}, "query_buffer: query buffer limit reached (64 bytes for one command)");
    cs.push_back(c);
    c.name = "preauth query buffer";
    c.limits = ParserLimits();
    c.authenticated = false;
    c.input = Mb({std::string(9000, 'a'), std::string(9000, 'b')});
    c.want = Want({}, "preauth_query_buffer: unauthenticated query buffer limit reached (16384 bytes for one command before AUTH)");
    cs.push_back(c);
  }
  return cs;
}

void Expect(const Case& c, const std::string& how, const Replayed& r) {
  g_checks++;
  std::string got = Canonical(r);
  if (got != c.want) {
    g_failures++;
    std::fprintf(stderr, "FAIL %s (%s):\n  got  %s\n  want %s\n", c.name.c_str(), how.c_str(), got.c_str(), c.want.c_str());
  }
}

void RunCase(const Case& c) {
  Expect(c, "whole", Replay(c.input, c.limits, c.authenticated, {}));
  if (!c.split_invariant || c.input.size() > 4096) return;
  for (size_t i = 0; i <= c.input.size(); i++) Expect(c, "split at " + std::to_string(i), Replay(c.input, c.limits, c.authenticated, {i}));
  std::vector<size_t> every;
  for (size_t i = 1; i < c.input.size(); i++) every.push_back(i);
  Expect(c, "byte by byte", Replay(c.input, c.limits, c.authenticated, every));
}

// Random pipelines of random binary arguments, cut at random points, parse to what was encoded.
void Generated(std::mt19937& rng, int n) {
  for (int k = 0; k < n; k++) {
    std::vector<std::vector<std::string>> cmds(1 + rng() % 6);
    std::string wire;
    for (auto& cmd : cmds) {
      cmd.resize(1 + rng() % 5);
      for (auto& a : cmd) {
        a.resize(rng() % 200);
        for (char& ch : a) ch = static_cast<char>(rng());
      }
      wire += Mb(cmd);
    }
    std::vector<size_t> cuts;
    for (int i = rng() % 8; i > 0; i--) cuts.push_back(rng() % (wire.size() + 1));
    Case c;
    c.name = "generated " + std::to_string(k);
    c.want = Want(cmds);
    Expect(c, "random cuts", Replay(wire, c.limits, true, cuts));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-corpus") == 0) {
    // Fuzz seeds: one control byte (limits and authentication, see resp_parser_fuzzer.cc), a split seed, the stream.
    int n = 0;
    for (const Case& c : Cases()) {
      if (c.input.size() > 4096) continue;
      std::string file = std::string(argv[2]) + "/seed-" + std::to_string(n++);
      FILE* f = std::fopen(file.c_str(), "wb");
      if (!f) {
        std::perror(file.c_str());
        return 2;
      }
      unsigned char control[2] = {static_cast<unsigned char>(c.authenticated ? 0 : 2), 0x35};
      std::fwrite(control, 1, 2, f);
      std::fwrite(c.input.data(), 1, c.input.size(), f);
      std::fclose(f);
    }
    std::printf("wrote %d seeds\n", n);
    return 0;
  }
  std::vector<Case> cs = Cases();
  for (const Case& c : cs) RunCase(c);
  std::mt19937 rng(20261206);
  Generated(rng, 500);
  std::printf("%zu cases, %d checks, %d failures\n", cs.size(), g_checks.load(), g_failures.load());
  return g_failures == 0 ? 0 : 1;
}
