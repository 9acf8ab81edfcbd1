// FUSE reply encoding: the bytes written back to /dev/fuse for one request.
// Each reply is a fuse_out_header followed by the opcode's out struct (or
// data); the header's len must equal the bytes written in one writev(2).
#pragma once

#include <linux/fuse.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace weightcache::fuse {

// What the control plane says about a node; everything else is fixed (read-only, owned by the mounter).
struct Attr {
  uint64_t ino = 0;
  uint64_t size = 0;
  uint32_t mode = 0;  // S_IFREG|0444, S_IFDIR|0555, S_IFLNK|0777
  uint32_t nlink = 1;
  uint64_t mtime_ms = 0;
  uint32_t uid = 0, gid = 0;
};

struct Timeout {
  uint64_t sec;
  uint32_t nsec;
  static Timeout FromMs(uint64_t ms) { return {ms / 1000, static_cast<uint32_t>((ms % 1000) * 1000000)}; }
};

fuse_attr EncodeAttr(const Attr& a);
fuse_entry_out EncodeEntry(uint64_t nodeid, const Attr& a, Timeout entry, Timeout attr);
fuse_attr_out EncodeAttrOut(const Attr& a, Timeout attr);

struct Dirent {
  uint64_t ino;
  uint32_t type;  // DT_DIR, DT_REG, DT_LNK
  std::string_view name;
};

// Packs entries[i...] as fuse_dirents, entry i getting offset first_offset + i + 1 (the cookie the
// kernel passes back to continue after it), while they fit in `max_bytes`. Returns the bytes.
std::vector<uint8_t> PackDirents(const std::vector<Dirent>& entries, uint64_t first_offset, size_t max_bytes);

}  // namespace weightcache::fuse
