#include "fuse_js.h"

#include <dirent.h>
#include <linux/fuse.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "fuse/reply.h"
#include "fuse/session.h"
#include "store/store_js.h"

namespace weightcache {
namespace {

using fuse::Request;
using fuse::Session;

// What a worker thread hands the JS thread: a copy, since the read buffer is reused.
struct Posted {
  uint32_t opcode;
  uint64_t unique, nodeid, fh, offset;
  uint32_t size, flags, pid;
  std::string name;
  std::vector<fuse::Forget> forgets;
};

struct Mount {
  std::unique_ptr<Session> session;
  Napi::ThreadSafeFunction tsfn;
};

// Sessions by id; touched on the JS thread only (workers only see their own tsfn).
std::map<uint32_t, std::unique_ptr<Mount>> g_mounts;
uint32_t g_next_id = 1;

const char* OpName(uint32_t op) {
  switch (op) {
    case FUSE_LOOKUP: return "lookup";
    case FUSE_GETATTR: return "getattr";
    case FUSE_OPEN: return "open";
    case FUSE_READ: return "read";
    case FUSE_READDIR: return "readdir";
    case FUSE_READLINK: return "readlink";
    case FUSE_RELEASE: return "release";
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET: return "forget";
    default: return "unknown";
  }
}

void CallJs(Napi::Env env, Napi::Function fn, Posted* p) {
  std::unique_ptr<Posted> owned(p);
  if (!env || !fn) return;  // tearing down: the reaper answers EIO
  Napi::Object o = Napi::Object::New(env);
  o.Set("op", OpName(p->opcode));
  o.Set("unique", Napi::Number::New(env, static_cast<double>(p->unique)));
  o.Set("nodeid", Napi::Number::New(env, static_cast<double>(p->nodeid)));
  o.Set("pid", Napi::Number::New(env, p->pid));
  switch (p->opcode) {
    case FUSE_LOOKUP:
      o.Set("name", Napi::String::New(env, p->name));
      break;
    case FUSE_OPEN:
      o.Set("flags", Napi::Number::New(env, p->flags));
      break;
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_RELEASE:
    case FUSE_GETATTR:
      o.Set("fh", Napi::Number::New(env, static_cast<double>(p->fh)));
      o.Set("offset", Napi::Number::New(env, static_cast<double>(p->offset)));
      o.Set("size", Napi::Number::New(env, p->size));
      break;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET: {
      Napi::Array a = Napi::Array::New(env, p->forgets.size() * 2);
      for (size_t i = 0; i < p->forgets.size(); i++) {
        a.Set(static_cast<uint32_t>(2 * i), Napi::Number::New(env, static_cast<double>(p->forgets[i].nodeid)));
        a.Set(static_cast<uint32_t>(2 * i + 1), Napi::Number::New(env, static_cast<double>(p->forgets[i].nlookup)));
      }
      o.Set("forgets", a);
      break;
    }
    default:
      break;
  }
  fn.Call({o});
}

Mount& Need(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "fuse reply: (mount id, unique, ...) expected");
  }
  auto it = g_mounts.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == g_mounts.end() || !it->second->session) throw Napi::Error::New(info.Env(), "fuse: no such mount");
  return *it->second;
}

uint64_t Unique(const Napi::CallbackInfo& info) {
  return static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
}

uint64_t U64(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("fuse attr: ") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0)) throw Napi::RangeError::New(o.Env(), std::string("fuse attr: ") + key + " must be ≥ 0");
  return static_cast<uint64_t>(d);
}

fuse::Attr AttrOf(Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "fuse attr: an object expected");
  Napi::Object o = v.As<Napi::Object>();
  fuse::Attr a;
  a.ino = U64(o, "ino");
  a.size = U64(o, "size");
  a.mode = static_cast<uint32_t>(U64(o, "mode"));
  a.nlink = static_cast<uint32_t>(U64(o, "nlink"));
  a.mtime_ms = U64(o, "mtimeMs");
  a.uid = static_cast<uint32_t>(U64(o, "uid"));
  a.gid = static_cast<uint32_t>(U64(o, "gid"));
  return a;
}

uint64_t Ms(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "fuse: a timeout in ms expected");
  double d = info[i].As<Napi::Number>().DoubleValue();
  return d > 0 ? static_cast<uint64_t>(d) : 0;
}

// fuseMount(path, opts, onRequest): id. Throws with the errno text (EPERM, ENODEV, EBUSY...).
Napi::Value FuseMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction()) {
    throw Napi::TypeError::New(env, "fuseMount(path, options, onRequest)");
  }
  Napi::Object o = info[1].As<Napi::Object>();
  fuse::SessionOptions so;
  so.path = info[0].As<Napi::String>().Utf8Value();
  so.threads = static_cast<int>(U64(o, "threads"));
  so.max_read = static_cast<uint32_t>(U64(o, "maxRead"));
  so.max_readahead = so.max_read;
  so.max_background = static_cast<uint16_t>(std::min<uint64_t>(U64(o, "maxBackground"), 65535));
  so.timeout_ms = static_cast<uint32_t>(U64(o, "timeoutMs"));
  so.max_pending = static_cast<uint32_t>(U64(o, "maxPending"));
  so.allow_other = o.Get("allowOther").ToBoolean();
  so.uid = static_cast<uint32_t>(U64(o, "uid"));
  so.gid = static_cast<uint32_t>(U64(o, "gid"));
  if (o.Has("store") && !o.Get("store").IsUndefined() && !o.Get("store").IsNull()) {
    so.store = store::StoreOf(env, o.Get("store"));
    if (!so.store) throw Napi::TypeError::New(env, "fuseMount: options.store must be a NativeStore");
  }

  auto m = std::make_unique<Mount>();
  m->tsfn = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "weightcache:fuse", 0, 1);
  Napi::ThreadSafeFunction tsfn = m->tsfn;
  std::string err;
  m->session = Session::Start(
      so,
      [tsfn](Request&& r) mutable {
        auto* p = new Posted{r.opcode, r.unique, r.nodeid, r.fh, r.offset, r.size, r.flags, r.pid,
                             std::string(r.name), std::move(r.forgets)};
        if (tsfn.NonBlockingCall(p, CallJs) != napi_ok) delete p;  // closing: the reaper answers
      },
      &err);
  if (!m->session) {
    m->tsfn.Release();
    throw Napi::Error::New(env, err);
  }
  uint32_t id = g_next_id++;
  g_mounts[id] = std::move(m);
  return Napi::Number::New(env, id);
}

Napi::Value FuseUnmount(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fuseUnmount(id)");
  auto it = g_mounts.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == g_mounts.end()) return info.Env().Undefined();
  it->second->session->Stop();  // joins the workers: no post after this
  it->second->tsfn.Release();
  g_mounts.erase(it);
  return info.Env().Undefined();
}

Napi::Value FuseReplyError(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "fuseReplyError(id, unique, errno)");
  int e = info[2].As<Napi::Number>().Int32Value();
  if (e <= 0 || e > 4095) e = EIO;
  return Napi::Boolean::New(info.Env(), m.session->ReplyError(Unique(info), e));
}

Napi::Value FuseReplyEntry(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  fuse::Attr a = AttrOf(info[2]);
  fuse_entry_out e = fuse::EncodeEntry(a.ino, a, fuse::Timeout::FromMs(Ms(info, 3)), fuse::Timeout::FromMs(Ms(info, 4)));
  iovec iov{&e, sizeof e};
  return Napi::Boolean::New(info.Env(), m.session->Reply(Unique(info), &iov, 1));
}

Napi::Value FuseReplyAttr(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  fuse_attr_out o = fuse::EncodeAttrOut(AttrOf(info[2]), fuse::Timeout::FromMs(Ms(info, 3)));
  iovec iov{&o, sizeof o};
  return Napi::Boolean::New(info.Env(), m.session->Reply(Unique(info), &iov, 1));
}

// fuseReplyOpen(id, unique, fh, keepCache)
Napi::Value FuseReplyOpen(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  if (info.Length() < 4 || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "fuseReplyOpen(id, unique, fh, keepCache)");
  fuse_open_out o{};
  o.fh = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  // KEEP_CACHE: a snapshot file's bytes never change, so pages cached by an earlier open stay valid.
  o.open_flags = info[3].ToBoolean() ? FOPEN_KEEP_CACHE : 0;
  iovec iov{&o, sizeof o};
  return Napi::Boolean::New(info.Env(), m.session->Reply(Unique(info), &iov, 1));
}

// fuseReplyData(id, unique, buffers[]): the views are written by writev(2) before this returns.
Napi::Value FuseReplyData(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  if (info.Length() < 3 || !info[2].IsArray()) throw Napi::TypeError::New(info.Env(), "fuseReplyData(id, unique, buffers)");
  Napi::Array a = info[2].As<Napi::Array>();
  if (a.Length() > 512) throw Napi::RangeError::New(info.Env(), "fuseReplyData: at most 512 buffers");
  std::vector<iovec> iov;
  size_t total = 0;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsTypedArray()) throw Napi::TypeError::New(info.Env(), "fuseReplyData: buffers must be Uint8Arrays");
    auto b = v.As<Napi::Uint8Array>();
    if (b.ByteLength() == 0) continue;
    iov.push_back({b.Data(), b.ByteLength()});
    total += b.ByteLength();
  }
  if (total > m.session->max_read() && total > 64 * 1024) {
    throw Napi::RangeError::New(info.Env(), "fuseReplyData: more bytes than a READ may return");
  }
  return Napi::Boolean::New(info.Env(), m.session->Reply(Unique(info), iov.data(), static_cast<int>(iov.size())));
}

// fuseReplyDirents(id, unique, firstOffset, maxBytes, entries: [ino, type, name, ...] flattened)
Napi::Value FuseReplyDirents(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  if (info.Length() < 5 || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsArray()) {
    throw Napi::TypeError::New(info.Env(), "fuseReplyDirents(id, unique, firstOffset, maxBytes, entries)");
  }
  Napi::Array a = info[4].As<Napi::Array>();
  std::vector<std::string> names;
  std::vector<fuse::Dirent> ents;
  names.reserve(a.Length() / 3);
  for (uint32_t i = 0; i + 2 < a.Length(); i += 3) {
    names.push_back(a.Get(i + 2).As<Napi::String>().Utf8Value());
  }
  for (uint32_t i = 0, k = 0; i + 2 < a.Length(); i += 3, k++) {
    ents.push_back({static_cast<uint64_t>(a.Get(i).As<Napi::Number>().Int64Value()),
                    a.Get(i + 1).As<Napi::Number>().Uint32Value(), names[k]});
  }
  std::vector<uint8_t> packed =
      fuse::PackDirents(ents, static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()),
                        info[3].As<Napi::Number>().Uint32Value());
  iovec iov{packed.data(), packed.size()};
  return Napi::Boolean::New(info.Env(), m.session->Reply(Unique(info), &iov, packed.empty() ? 0 : 1));
}

// fuseBindFile(id, fh, objectId: 16-byte Uint8Array, size, chunkSize): READs of `fh` whose chunks
// are all in the mount's store are answered without JS (Session::Bind).
Napi::Value FuseBindFile(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    throw Napi::TypeError::New(env, "fuseBindFile(id, fh, objectId, size, chunkSize)");
  }
  auto obj = info[2].As<Napi::Uint8Array>();
  if (obj.ByteLength() != store::kObjectIdBytes) throw Napi::RangeError::New(env, "fuseBindFile: an object id is 16 bytes");
  double size = info[3].As<Napi::Number>().DoubleValue();
  double chunk = info[4].As<Napi::Number>().DoubleValue();
  if (!(size >= 0) || size > 9007199254740991.0 || !(chunk >= 1) || chunk > 4294967295.0) {
    throw Napi::RangeError::New(env, "fuseBindFile: size ≥ 0 and 1 ≤ chunkSize < 2^32");
  }
  fuse::BoundFile f;
  std::memcpy(f.object.data(), obj.Data(), store::kObjectIdBytes);
  f.size = static_cast<uint64_t>(size);
  f.chunk = static_cast<uint32_t>(chunk);
  m.session->Bind(static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()), f);
  return env.Undefined();
}

Napi::Value FuseUnbindFile(const Napi::CallbackInfo& info) {
  Mount& m = Need(info);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "fuseUnbindFile(id, fh)");
  m.session->Unbind(static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()));
  return info.Env().Undefined();
}

Napi::Value FuseStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "fuseStats(id)");
  auto it = g_mounts.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == g_mounts.end()) throw Napi::Error::New(env, "fuse: no such mount");
  const auto& s = it->second->session->stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("requests", Napi::Number::New(env, static_cast<double>(s.requests.load())));
  o.Set("posted", Napi::Number::New(env, static_cast<double>(s.posted.load())));
  o.Set("timeouts", Napi::Number::New(env, static_cast<double>(s.timeouts.load())));
  o.Set("lateReplies", Napi::Number::New(env, static_cast<double>(s.late_replies.load())));
  o.Set("protocolErrors", Napi::Number::New(env, static_cast<double>(s.protocol_errors.load())));
  o.Set("refused", Napi::Number::New(env, static_cast<double>(s.refused.load())));
  o.Set("fastReads", Napi::Number::New(env, static_cast<double>(s.fast_reads.load())));
  o.Set("fastBytes", Napi::Number::New(env, static_cast<double>(s.fast_bytes.load())));
  o.Set("pending", Napi::Number::New(env, static_cast<double>(it->second->session->pending())));
  o.Set("protocolMinor", Napi::Number::New(env, it->second->session->minor()));
  return o;
}

// fuseDetach(path): 0, or the errno of umount2(path, MNT_DETACH).
Napi::Value FuseDetach(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "fuseDetach(path)");
  return Napi::Number::New(info.Env(), fuse::DetachMount(info[0].As<Napi::String>().Utf8Value()));
}

void StopAll(void*) {
  for (auto& [id, m] : g_mounts) {
    m->session->Stop();
    m->tsfn.Release();
  }
  g_mounts.clear();
}

}  // namespace

void FuseExports(Napi::Env env, Napi::Object exports) {
  exports.Set("fuseMount", Napi::Function::New(env, FuseMount, "fuseMount"));
  exports.Set("fuseUnmount", Napi::Function::New(env, FuseUnmount, "fuseUnmount"));
  exports.Set("fuseReplyError", Napi::Function::New(env, FuseReplyError, "fuseReplyError"));
  exports.Set("fuseReplyEntry", Napi::Function::New(env, FuseReplyEntry, "fuseReplyEntry"));
  exports.Set("fuseReplyAttr", Napi::Function::New(env, FuseReplyAttr, "fuseReplyAttr"));
  exports.Set("fuseReplyOpen", Napi::Function::New(env, FuseReplyOpen, "fuseReplyOpen"));
  exports.Set("fuseReplyData", Napi::Function::New(env, FuseReplyData, "fuseReplyData"));
  exports.Set("fuseReplyDirents", Napi::Function::New(env, FuseReplyDirents, "fuseReplyDirents"));
  exports.Set("fuseBindFile", Napi::Function::New(env, FuseBindFile, "fuseBindFile"));
  exports.Set("fuseUnbindFile", Napi::Function::New(env, FuseUnbindFile, "fuseUnbindFile"));
  exports.Set("fuseStats", Napi::Function::New(env, FuseStats, "fuseStats"));
  exports.Set("fuseDetach", Napi::Function::New(env, FuseDetach, "fuseDetach"));
  // An exiting process unmounts: a mount left behind would answer ENOTCONN to every reader.
  napi_add_env_cleanup_hook(env, StopAll, nullptr);
}

}  // namespace weightcache
