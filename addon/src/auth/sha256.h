// SHA-256 (FIPS 180-4), for the native fast path's token check: the addon
// needs only g++ and Node's headers, so it carries its own. Checked against
// the FIPS test vectors and node:crypto in addon/test/fastpath_test.cc.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace weightcache::auth {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(const void* data, size_t len);

}  // namespace weightcache::auth
