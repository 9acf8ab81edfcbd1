// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the native fast
// path's token check and the front doors' signatures (SigV4): the addon needs
// only g++ and Node's headers, and its C++ drivers and fuzzers link nothing
// else, so it carries its own. Checked against the FIPS and RFC 4231 test
// vectors and node:crypto in addon/test/fastpath_test.cc and sigv4_test.cc.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace weightcache::auth {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(const void* data, size_t len);

// HMAC-SHA256 of `data` under `key` (any length; a key longer than a block is hashed first).
Digest HmacSha256(const void* key, size_t key_len, const void* data, size_t len);

}  // namespace weightcache::auth
