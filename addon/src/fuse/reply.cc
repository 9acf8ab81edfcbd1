#include "fuse/reply.h"

#include <cstddef>
#include <cstring>

namespace weightcache::fuse {

fuse_attr EncodeAttr(const Attr& a) {
  fuse_attr o{};
  o.ino = a.ino;
  o.size = a.size;
  o.blocks = (a.size + 511) / 512;
  o.atime = o.mtime = o.ctime = a.mtime_ms / 1000;
  o.atimensec = o.mtimensec = o.ctimensec = static_cast<uint32_t>((a.mtime_ms % 1000) * 1000000);
  o.mode = a.mode;
  o.nlink = a.nlink;
  o.uid = a.uid;
  o.gid = a.gid;
  o.blksize = 1u << 20;  // st_blksize: the I/O size cp and friends pick; one max_read
  return o;
}

fuse_entry_out EncodeEntry(uint64_t nodeid, const Attr& a, Timeout entry, Timeout attr) {
  fuse_entry_out e{};
  e.nodeid = nodeid;
  e.generation = 0;  // node ids are never reused within a mount
  e.entry_valid = entry.sec;
  e.entry_valid_nsec = entry.nsec;
  e.attr_valid = attr.sec;
  e.attr_valid_nsec = attr.nsec;
  e.attr = EncodeAttr(a);
  return e;
}

fuse_attr_out EncodeAttrOut(const Attr& a, Timeout attr) {
  fuse_attr_out o{};
  o.attr_valid = attr.sec;
  o.attr_valid_nsec = attr.nsec;
  o.attr = EncodeAttr(a);
  return o;
}

std::vector<uint8_t> PackDirents(const std::vector<Dirent>& entries, uint64_t first_offset, size_t max_bytes) {
  std::vector<uint8_t> out;
  uint64_t off = first_offset;
  for (const Dirent& d : entries) {
    size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + d.name.size());
    if (out.size() + rec > max_bytes) break;
    size_t at = out.size();
    out.resize(at + rec, 0);  // the alignment padding must be zeros
    fuse_dirent h{};
    h.ino = d.ino;
    h.off = ++off;
    h.namelen = static_cast<uint32_t>(d.name.size());
    h.type = d.type;
    std::memcpy(out.data() + at, &h, FUSE_NAME_OFFSET);
    std::memcpy(out.data() + at + FUSE_NAME_OFFSET, d.name.data(), d.name.size());
  }
  return out;
}

}  // namespace weightcache::fuse
