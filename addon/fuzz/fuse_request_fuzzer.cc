// libFuzzer target for the FUSE request decoder (addon/src/fuse/request.cc),
// the code that parses every message read from /dev/fuse, and the dirent
// packer that lays out READDIR replies. npm test runs it for a bounded time
// from its seed corpus (test/native/fuzz.test.ts); longer by hand:
//
//   npm run fuzz -- --seconds 600 fuse_request_fuzzer
//
// Mode (first byte): raw bytes straight into Decode (garbage, with the
// header's len usually wrong), or a message with a well-formed header whose
// len matches, an opcode from the set the kernel sends and the rest of the
// input as arguments, so the fuzzer reaches every opcode's argument checks.
// Whatever Decode accepts must be self-consistent (checked below, a trap
// otherwise); the dirent packer must never write past its budget.
#include <linux/fuse.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuse/reply.h"
#include "fuse/request.h"

namespace {

const uint32_t kOps[] = {FUSE_INIT,   FUSE_LOOKUP,  FUSE_FORGET,     FUSE_BATCH_FORGET, FUSE_GETATTR,
                         FUSE_OPEN,   FUSE_OPENDIR, FUSE_READ,       FUSE_READDIR,      FUSE_READDIRPLUS,
                         FUSE_RELEASE, FUSE_RELEASEDIR, FUSE_INTERRUPT, FUSE_READLINK,   FUSE_STATFS,
                         FUSE_DESTROY, FUSE_WRITE,   FUSE_SETXATTR};

void Check(const uint8_t* msg, size_t len) {
  weightcache::fuse::Request r;
  const char* why = weightcache::fuse::Decode(msg, len, r);
  if (why) return;
  if (len < sizeof(fuse_in_header)) __builtin_trap();
  if (r.opcode == FUSE_LOOKUP) {
    const auto* base = reinterpret_cast<const char*>(msg);
    if (r.name.empty() || r.name.size() > 255) __builtin_trap();
    if (r.name.data() < base + sizeof(fuse_in_header) || r.name.data() + r.name.size() >= base + len) __builtin_trap();
    if (std::memchr(r.name.data(), 0, r.name.size()) || r.name.find('/') != std::string_view::npos) __builtin_trap();
  }
  if (r.opcode == FUSE_BATCH_FORGET && r.forgets.size() > weightcache::fuse::kMaxBatchForget) __builtin_trap();
  if (r.opcode == FUSE_FORGET && r.forgets.size() != 1) __builtin_trap();
}

void Pack(const uint8_t* data, size_t size) {
  // Names cut from the input (embedded NULs and all), a budget from its first bytes.
  if (size < 3) return;
  size_t budget = data[0] | (data[1] << 8);
  std::vector<std::string> names;
  for (size_t at = 2; at < size;) {
    size_t n = 1 + data[at] % 64;
    names.emplace_back(reinterpret_cast<const char*>(data + at), std::min(n, size - at));
    at += n;
  }
  std::vector<weightcache::fuse::Dirent> ents;
  for (size_t i = 0; i < names.size(); i++) ents.push_back({i + 2, static_cast<uint32_t>(i % 16), names[i]});
  auto out = weightcache::fuse::PackDirents(ents, data[2], budget);
  if (out.size() > budget || out.size() % 8 != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  if (mode % 3 == 0) {
    Check(data, size);
    return 0;
  }
  if (mode % 3 == 2) {
    Pack(data, size);
    return 0;
  }
  std::vector<uint8_t> msg(sizeof(fuse_in_header) + size - 1);
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(msg.size());
  h.opcode = kOps[data[0] % (sizeof kOps / sizeof kOps[0])];
  h.unique = 2;
  h.nodeid = 1;
  h.total_extlen = (mode & 0x80) ? data[0] >> 5 : 0;
  std::memcpy(msg.data(), &h, sizeof h);
  std::memcpy(msg.data() + sizeof h, data + 1, size - 1);
  Check(msg.data(), msg.size());
  return 0;
}
