// Bearer tokens as the native fast path checks them: JavaScript hands over
// each token's SHA-256 digest (src/auth/tokens.ts keeps and compares the same
// digests) with its grant (admin, every container, or a list). A check
// hashes the presented token and compares it with EVERY digest in constant
// time, without an early exit, as TokenSet.check does: the time taken says
// nothing about which token matched or how much of one was right.
//
// The S3 door's signatures (SigV4, http/doors/sigv4.h) are HMACs that only
// the secret itself can check: each grant also holds its token (the secret
// access key) and its public key id (the first 20 hex digits of the digest,
// src/auth/tokens.ts keyIdOf), in memory only, never logged or exported.
//
// The fast path only ever uses a check to say yes: a request whose token is
// missing, unknown or not allowed the container goes to JavaScript, which
// answers 401 or 403 exactly as it does for every door.
#pragma once
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
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
  // The token itself, as the HMAC secret of signed requests; empty: not handed over (bearer only).
  std::string secret;
};

// A token's public key id: hex of the first 10 bytes of its digest (keyIdOf).
std::string KeyIdOf(const Digest& d);

// Whether a grant may read `container` (src/auth/tokens.ts allows).
bool GrantAllows(const TokenGrant& g, std::string_view container);

// A number that changes whenever any TokenTable's tokens are replaced. Whatever is derived from a
// secret outside the table (the signing keys http/doors/sigv4.cc caches per thread) is dropped when
// it moves, so a removed token's secret and keys do not outlive the table that held them.
uint64_t TokenGeneration();

class TokenTable {
 public:
  // enabled false: auth is off (every request is allowed). Replaces what was there.
  void Replace(bool enabled, std::vector<TokenGrant> grants);
  bool enabled() const;
  // Whether `token` (the bearer token as sent) may read `container`.
  bool Allows(std::string_view token, std::string_view container) const;
  size_t size() const;
  // The grant whose key id this is and which carries its secret, or null (TokenSet.signingKey: the
  // last token with that id wins, as in its Map). The pointer keeps the grant alive past a Replace.
  std::shared_ptr<const TokenGrant> SigningKey(std::string_view key_id) const;
  // Every grant carrying its secret, in the table's order (TokenSet.signingKeys: Azure's SharedKey
  // and SAS name no key, so each is tried); empty with auth off. Each pointer keeps its grant alive.
  std::vector<std::shared_ptr<const TokenGrant>> SigningKeys() const;

 private:
  struct State {
    bool enabled = false;
    std::vector<TokenGrant> grants;
    std::unordered_map<std::string, size_t> by_key_id;
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
