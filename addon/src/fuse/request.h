// FUSE request decoding: one message as read(2) from /dev/fuse returned it,
// checked before anything trusts it. The kernel is the only writer of
// /dev/fuse, but a bug or a protocol revision must end in EIO for that one
// request, never in an overread: every length is checked against the bytes
// actually read (fuzzed by addon/fuzz/fuse_request_fuzzer.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace weightcache::fuse {

struct Forget {
  uint64_t nodeid;
  uint64_t nlookup;
};

struct Request {
  // fuse_in_header
  uint32_t opcode = 0;
  uint64_t unique = 0;
  uint64_t nodeid = 0;
  uint32_t uid = 0, gid = 0, pid = 0;
  // LOOKUP: the name (no NUL, no '/', 1..255 bytes). Points into the read buffer.
  std::string_view name;
  // OPEN, OPENDIR: open flags. READ, READDIR(PLUS), RELEASE(DIR), GETATTR (when set): the handle.
  uint32_t flags = 0;
  uint64_t fh = 0;
  uint64_t offset = 0;
  uint32_t size = 0;
  // FORGET (one entry) and BATCH_FORGET (several).
  std::vector<Forget> forgets;
  // INIT
  uint32_t init_major = 0, init_minor = 0, init_max_readahead = 0, init_flags = 0, init_flags2 = 0;
  // INTERRUPT: the request to interrupt.
  uint64_t interrupt_unique = 0;
};

// Most entries one BATCH_FORGET may carry (the kernel sends at most what fits in a page).
constexpr uint32_t kMaxBatchForget = 1u << 16;

// Decodes `len` bytes at `buf` into `out`. Returns nullptr when well formed,
// else a static string naming what was wrong. An opcode this filesystem does
// not know decodes (header only): the caller answers it ENOSYS.
const char* Decode(const uint8_t* buf, size_t len, Request& out);

}  // namespace weightcache::fuse
