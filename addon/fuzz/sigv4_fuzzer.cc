// libFuzzer target for SigV4 on the native side (addon/src/http/doors/sigv4.h):
// a signed S3 request's query, Authorization, X-Amz-Date, signed header list
// and values as a client sends them, verified against a table holding one
// token, and the pieces on their own (query decoding, the canonical query,
// the path re-encoding, the date). npm test builds it with clang
// (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time
// (test/native/fuzz.test.ts).
//
// Input: byte 0 moves the clock (signed, in minutes around the seeds' date);
// the rest is a request as a client sends it. Besides what the sanitizers
// catch, it traps when a verification is not deterministic (the second one
// comes from the thread's signing-key cache), a verified request carries no
// grant or one not the table's, the canonical query or a re-encoded path
// holds a byte an encoder never writes, or a decoded date is not the one the
// digits say.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sha256.h"
#include "auth/token_table.h"
#include "http/doors/sigv4.h"
#include "http/parser.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string kToken = "tok-signed-reads-0123456789abcdef";
constexpr int64_t kSeedNow = 1796565600000LL;  // 2026-12-06T14:00:00Z

auth::TokenTable& Table() {
  static auth::TokenTable* t = [] {
    auto* table = new auth::TokenTable();
    auth::TokenGrant g;
    g.digest = auth::Sha256(kToken.data(), kToken.size());
    g.secret = kToken;
    g.containers = {"models"};
    table->Replace(true, {g});
    return table;
  }();
  return *t;
}

bool Encoded(std::string_view s, bool slash_and_percent) {
  for (char c : s) {
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                 c == '_' || c == '~' || c == '%';
    if (!plain && !(slash_and_percent && (c == '/' || c == '&' || c == '='))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  int64_t now = kSeedNow + static_cast<int64_t>(static_cast<int8_t>(data[0])) * 60'000;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  // The pieces on their own.
  std::vector<QueryPair> q;
  if (DecodeQuery(in, q)) {
    Check(q.size() <= kMaxQueryParams);
    Check(Encoded(CanonicalQuery(q, {}), true));
  }
  std::string path = ReencodePath(in);
  Check(path == in || Encoded(path, true));
  int64_t ms = 0;
  if (ParseAmzDate(in.substr(0, 16), ms)) Check(ms >= 0 && ms % 1000 == 0);

  // A whole request.
  RequestParser p(ParserLimits{});
  if (p.Parse(in.data(), in.size()) != RequestParser::kDone) return 0;
  const RequestHead& h = p.head();
  SigV4Check a = VerifySigV4(Table(), h, now, 900'000);
  SigV4Check b = VerifySigV4(Table(), h, now, 900'000);
  Check(a.outcome == b.outcome && a.presigned == b.presigned);
  if (a.outcome == SigV4Outcome::kVerified) {
    Check(a.grant != nullptr && a.grant->secret == kToken);
    Check(auth::GrantAllows(*a.grant, "models") && !auth::GrantAllows(*a.grant, "other"));
  } else {
    Check(a.grant == nullptr);
  }
  return 0;
}
