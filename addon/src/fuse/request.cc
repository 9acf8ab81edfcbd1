#include "fuse/request.h"

#include <linux/fuse.h>

#include <algorithm>
#include <cstring>

namespace weightcache::fuse {
namespace {

template <typename T>
bool Load(const uint8_t* body, size_t body_len, T& out) {
  if (body_len < sizeof(T)) return false;
  std::memcpy(&out, body, sizeof(T));  // the read buffer carries no alignment promise
  return true;
}

}  // namespace

const char* Decode(const uint8_t* buf, size_t len, Request& out) {
  fuse_in_header h;
  if (len < sizeof h) return "message shorter than fuse_in_header";
  std::memcpy(&h, buf, sizeof h);
  if (h.len != len) return "header length differs from the bytes read";
  out.opcode = h.opcode;
  out.unique = h.unique;
  out.nodeid = h.nodeid;
  out.uid = h.uid;
  out.gid = h.gid;
  out.pid = h.pid;
  // Extensions (security context, supplementary groups) trail the arguments;
  // none is used here, but they are not part of the argument bytes.
  size_t ext = static_cast<size_t>(h.total_extlen) * 8;
  size_t body_len = len - sizeof h;
  if (ext > body_len) return "extension length past the message";
  body_len -= ext;
  const uint8_t* body = buf + sizeof h;

  switch (h.opcode) {
    case FUSE_INIT: {
      // 7.36+ kernels send 64 bytes; older ones 16 (flags2 absent). Major/minor at least.
      if (body_len < 8) return "INIT shorter than major+minor";
      uint32_t w[5] = {0, 0, 0, 0, 0};
      std::memcpy(w, body, std::min(body_len, sizeof w));
      out.init_major = w[0];
      out.init_minor = w[1];
      out.init_max_readahead = w[2];
      out.init_flags = w[3];
      out.init_flags2 = (body_len >= 20 && (w[3] & FUSE_INIT_EXT)) ? w[4] : 0;
      return nullptr;
    }
    case FUSE_LOOKUP: {
      // A NUL-terminated name filling the body (the kernel pads nothing after it).
      if (body_len < 2) return "LOOKUP without a name";
      const void* nul = std::memchr(body, 0, body_len);
      if (!nul) return "LOOKUP name not NUL-terminated";
      size_t n = static_cast<const uint8_t*>(nul) - body;
      if (n == 0) return "LOOKUP with an empty name";
      if (n > 255) return "LOOKUP name longer than 255 bytes";
      out.name = std::string_view(reinterpret_cast<const char*>(body), n);
      if (out.name.find('/') != std::string_view::npos) return "LOOKUP name contains '/'";
      return nullptr;
    }
    case FUSE_FORGET: {
      fuse_forget_in f;
      if (!Load(body, body_len, f)) return "FORGET shorter than fuse_forget_in";
      out.forgets.push_back({h.nodeid, f.nlookup});
      return nullptr;
    }
    case FUSE_BATCH_FORGET: {
      fuse_batch_forget_in b;
      if (!Load(body, body_len, b)) return "BATCH_FORGET shorter than fuse_batch_forget_in";
      if (b.count > kMaxBatchForget) return "BATCH_FORGET count past the limit";
      size_t need = sizeof b + static_cast<size_t>(b.count) * sizeof(fuse_forget_one);
      if (body_len < need) return "BATCH_FORGET entries past the message";
      out.forgets.reserve(b.count);
      for (uint32_t i = 0; i < b.count; i++) {
        fuse_forget_one one;
        std::memcpy(&one, body + sizeof b + i * sizeof one, sizeof one);
        out.forgets.push_back({one.nodeid, one.nlookup});
      }
      return nullptr;
    }
    case FUSE_GETATTR: {
      // Since 7.9 a fuse_getattr_in; FUSE_GETATTR_FH says whether fh is meaningful.
      fuse_getattr_in g;
      if (body_len == 0) return nullptr;
      if (!Load(body, body_len, g)) return "GETATTR shorter than fuse_getattr_in";
      if (g.getattr_flags & FUSE_GETATTR_FH) out.fh = g.fh;
      return nullptr;
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      fuse_open_in o;
      if (!Load(body, body_len, o)) return "OPEN shorter than fuse_open_in";
      out.flags = o.flags;
      return nullptr;
    }
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
      // fh, offset, size are the first 20 bytes in every protocol minor (24 before 7.9).
      if (body_len < 24) return "READ shorter than fuse_read_in";
      fuse_read_in r{};
      std::memcpy(&r, body, std::min(body_len, sizeof r));
      out.fh = r.fh;
      out.offset = r.offset;
      out.size = r.size;
      out.flags = body_len >= sizeof r ? r.flags : 0;
      if (r.offset > (UINT64_MAX >> 1)) return "READ offset past 2^63";
      return nullptr;
    }
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR: {
      if (body_len < 16) return "RELEASE shorter than fuse_release_in";
      fuse_release_in r{};
      std::memcpy(&r, body, std::min(body_len, sizeof r));
      out.fh = r.fh;
      out.flags = r.flags;
      return nullptr;
    }
    case FUSE_INTERRUPT: {
      fuse_interrupt_in i;
      if (!Load(body, body_len, i)) return "INTERRUPT shorter than fuse_interrupt_in";
      out.interrupt_unique = i.unique;
      return nullptr;
    }
    default:
      // READLINK, STATFS, DESTROY, FLUSH, ACCESS... carry nothing used here;
      // the rest is refused by opcode.
      return nullptr;
  }
}

}  // namespace weightcache::fuse
