// Bearer tokens as the native fast path checks them: JavaScript hands over
// each token's SHA-256 digest (src/auth/tokens.ts keeps and compares the same
// digests) with its grant (admin, every container, or a list). A check
// hashes the presented token and compares it with EVERY digest in constant
// time, without an early exit, as TokenSet.check does: the time taken says
// nothing about which token matched or how much of one was right.
//
// The fast path only ever uses a check to say yes: a request whose token is
// missing, unknown or not allowed the container goes to JavaScript, which
// answers 401 or 403 exactly as it does for every door.
#pragma once
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sha256.h"

namespace weightcache::auth {

// As src/auth/tokens.ts MAX_TOKENS.
inline constexpr size_t kMaxTokens = 10'000;

struct TokenGrant {
  Digest digest{};
  bool admin = false;
  bool all_containers = false;
  std::vector<std::string> containers;
};

class TokenTable {
 public:
  // enabled false: auth is off (every request is allowed). Replaces what was there.
  void Replace(bool enabled, std::vector<TokenGrant> grants);
  bool enabled() const;
  // Whether `token` (the bearer token as sent) may read `container`.
  bool Allows(std::string_view token, std::string_view container) const;
  size_t size() const;

 private:
  struct State {
    bool enabled = false;
    std::vector<TokenGrant> grants;
  };
  mutable std::shared_mutex mu_;
  std::shared_ptr<const State> state_ = std::make_shared<State>();
};

// The token of an Authorization value "Bearer <token>" (scheme in any case,
// then white space, the token, optional trailing white space), as
// src/http/auth.ts reads it; empty when the value is not of that form or the
// token holds a byte outside ASCII (JavaScript hashes its UTF-8 form).
std::string_view BearerToken(std::string_view value);

}  // namespace weightcache::auth
