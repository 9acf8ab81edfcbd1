// libFuzzer target for Azure SAS and SharedKey on the native side
// (addon/src/http/doors/azure_auth.h): a SAS query as a client sends it,
// decoded and verified against a table holding one token (AccountKey =
// base64 of it), for a blob name taken from the input too; an input starting
// with "GET " or "HEAD " is a whole request whose Authorization is checked as
// SharedKey; and the SAS and IMF date forms on their own. npm test builds it with
// clang (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time
// (test/native/fuzz.test.ts).
//
// Input: byte 0 moves the clock (signed, in minutes around the seeds' date);
// then a request, or a line with the blob name and the rest the query. Besides what the
// sanitizers catch, it traps when a verification is not deterministic, a
// verified SAS carries no grant or one not the table's, its signature is not
// 44 characters, its string-to-sign does not name the account (or, for
// SharedKey, end with the path), or a decoded time is not the one its digits
// say.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sha256.h"
#include "auth/token_table.h"
#include "http/doors/azure_auth.h"
#include "http/doors/sigv4.h"
#include "http/parser.h"

using namespace weightcache;
using namespace weightcache::http;
using namespace weightcache::http::doors;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string kToken = "azure-sas-token-0123456789abcdef";
constexpr int64_t kSeedNow = 1796567400000LL;  // 2026-12-06T14:30:00Z

auth::TokenTable& Table() {
  static auth::TokenTable* t = [] {
    auto* table = new auth::TokenTable();
    table->Replace(true, {{auth::Sha256(kToken.data(), kToken.size()), false, true, {}, kToken}});
    return table;
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 1) return 0;
  int64_t now = kSeedNow + static_cast<int64_t>(static_cast<int8_t>(input[0])) * 60'000;
  std::string_view rest(reinterpret_cast<const char*>(input + 1), size - 1);
  size_t nl = rest.find('\n');
  std::string_view blob = nl == std::string_view::npos ? std::string_view("llama/model.bin") : rest.substr(0, nl);
  std::string_view query = nl == std::string_view::npos ? rest : rest.substr(nl + 1);
  AzureBlobName name{"acct", "models", blob};
  int64_t ms = 0;
  if (ParseSasTime(rest.substr(0, 20), ms)) {
    Check(ms >= 0 && ms % 1000 == 0);
    std::string_view s = rest.substr(0, 20);
    Check(((ms / 1000) % 60) == (s[17] - '0') * 10 + (s[18] - '0'));
  }
  if (ParseImfDate(rest.substr(0, 29), ms)) Check(ms >= 0 && ms % 1000 == 0);
  if (rest.substr(0, 4) == "GET " || rest.substr(0, 5) == "HEAD ") {
    RequestParser p(ParserLimits{});
    if (p.Parse(rest.data(), rest.size()) != RequestParser::kDone) return 0;
    std::string to_sign;
    if (SharedKeyStringToSign(p.head(), "acct", to_sign)) {
      Check(to_sign.size() >= p.head().path.size() + 5);
      Check(to_sign.compare(to_sign.size() - p.head().path.size(), std::string::npos, p.head().path) == 0);
    }
    const Header* auth = p.head().Find("authorization");
    std::string_view value = auth ? auth->value : std::string_view();
    auto a = VerifyAzureSharedKey(Table(), p.head(), value, "acct", now, 15 * 60 * 1000);
    auto b = VerifyAzureSharedKey(Table(), p.head(), value, "acct", now, 15 * 60 * 1000);
    Check((a == nullptr) == (b == nullptr));
    if (a) Check(a->secret == kToken && value.size() == 10 + 5 + 44);
    return 0;
  }
  std::vector<QueryPair> q;
  if (!DecodeQuery(query, q)) return 0;
  std::string to_sign;
  if (AzureSasStringToSign(q, name, to_sign)) {
    Check(to_sign.find("acct") != std::string::npos);
  }
  auto a = VerifyAzureSas(Table(), q, name, now, 15 * 60 * 1000);
  auto b = VerifyAzureSas(Table(), q, name, now, 15 * 60 * 1000);
  Check((a == nullptr) == (b == nullptr));
  if (a) {
    Check(a->secret == kToken && a->all_containers);
    std::string_view sig;
    for (const QueryPair& p : q) {
      if (p.key == "sig") sig = p.value;
    }
    Check(sig.size() == 44);
  }
  return 0;
}
