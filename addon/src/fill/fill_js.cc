#include "fill/fill_js.h"

#include <uv.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fill/file_jobs.h"

namespace weightcache {
namespace {

std::string ErrName(int err) {
  const char* n = uv_err_name(-err);
  return n ? n : "E" + std::to_string(err);
}

double SafeInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 9007199254740991.0) || v != static_cast<double>(static_cast<uint64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative safe integer");
  return v;
}

// new FillFiles({ threads, maxQueued }, onDone)
// readVersioned(id, root, path, offset, length, dest, direct): one chunk of an fs origin file
// writeAtomic(id, path, tmp, header, data, fsync, direct): one chunk file, written then renamed
// onDone(results): flat [id, stage, code, bytes, before, after] * n; stage 'done' or the
// step that failed, code its errno name; before/after: [ino, size, mtimeNs, ctimeNs] as bigints.
class FillFilesJs : public Napi::ObjectWrap<FillFilesJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FillFiles",
                       {InstanceMethod("readVersioned", &FillFilesJs::ReadVersioned),
                        InstanceMethod("writeAtomic", &FillFilesJs::WriteAtomic),
                        InstanceMethod("stats", &FillFilesJs::Stats), InstanceMethod("close", &FillFilesJs::Close)});
  }

  explicit FillFilesJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FillFilesJs>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "new FillFiles({ threads, maxQueued }, onDone)");
    Napi::Object o = info[0].As<Napi::Object>();
    unsigned threads = Option(env, o, "threads", 1, 256);
    size_t max_queued = Option(env, o, "maxQueued", 1, 1 << 20);
    on_done_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* uv = nullptr;
    napi_get_uv_event_loop(env, &uv);
    async_ = new Async();
    async_->owner = this;
    uv_async_init(uv, &async_->handle, OnAsync);
    async_->handle.data = async_;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_->handle));  // ref'd only while jobs are pending
    shared_ = std::make_shared<Shared>();
    Async* a = async_;
    // Each finished job wakes the JS thread; uv_async_send coalesces the wake-ups.
    pool_ = std::make_unique<fill::JobPool>(threads, max_queued, [a] { uv_async_send(&a->handle); });
  }

  ~FillFilesJs() override { Shutdown(); }

 private:
  struct Async {
    uv_async_t handle;
    FillFilesJs* owner = nullptr;
  };
  struct Pending {
    double id = 0;
    bool is_read = true;
    fill::VersionedRead read;
    fill::AtomicWrite write;
    Napi::Reference<Napi::Uint8Array> keep[2];  // the buffers the job reads or writes
  };
  struct Shared {
    std::mutex mu;
    std::vector<Pending*> done;
  };

  static unsigned Option(Napi::Env env, Napi::Object o, const char* name, double lo, double hi) {
    Napi::Value v = o.Get(name);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("FillFiles: ") + name + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env, std::string("FillFiles: ") + name + " must be an integer " +
                                           std::to_string(static_cast<uint64_t>(lo)) + ".." +
                                           std::to_string(static_cast<uint64_t>(hi)));
    return static_cast<unsigned>(d);
  }

  void Post(Napi::Env env, Pending* p) {
    std::shared_ptr<Shared> shared = shared_;
    bool ok = pool_->Post([p, shared] {
      if (p->is_read) fill::RunVersionedRead(&p->read);
      else fill::RunAtomicWrite(&p->write);
      std::lock_guard<std::mutex> l(shared->mu);
      shared->done.push_back(p);
    });
    if (!ok) {
      delete p;
      Napi::Error e = Napi::Error::New(env, "FillFiles: " + std::to_string(pool_->max_queued()) +
                                                " jobs already waiting (" + std::to_string(pool_->threads()) +
                                                " threads busy)");
      e.Set("code", "EBUSY");
      throw e;
    }
    pending_++;
    UpdateRef();
  }

  Napi::Value ReadVersioned(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "FillFiles: closed");
    if (info.Length() < 7 || !info[1].IsString() || !info[2].IsString() || !info[5].IsTypedArray())
      throw Napi::TypeError::New(env, "readVersioned(id, root, path, offset, length, dest, direct)");
    auto p = std::make_unique<Pending>();
    p->id = SafeInt(info, 0, "readVersioned: id");
    p->read.root = info[1].As<Napi::String>().Utf8Value();
    p->read.path = info[2].As<Napi::String>().Utf8Value();
    p->read.offset = static_cast<uint64_t>(SafeInt(info, 3, "readVersioned: offset"));
    p->read.length = static_cast<size_t>(SafeInt(info, 4, "readVersioned: length"));
    if (p->read.root.empty() || p->read.root[0] != '/' || p->read.root.back() == '/')
      throw Napi::RangeError::New(env, "readVersioned: root must be absolute, without a trailing /");
    auto dest = info[5].As<Napi::Uint8Array>();
    if (dest.ByteLength() < p->read.length) throw Napi::RangeError::New(env, "readVersioned: dest is shorter than length");
    p->read.dest = dest.Data();
    p->read.direct = info[6].ToBoolean();
    p->keep[0] = Napi::Persistent(dest);
    Post(env, p.release());
    return env.Undefined();
  }

  Napi::Value WriteAtomic(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "FillFiles: closed");
    if (info.Length() < 7 || !info[1].IsString() || !info[2].IsString() || !info[3].IsTypedArray() ||
        !info[4].IsTypedArray())
      throw Napi::TypeError::New(env, "writeAtomic(id, path, tmp, header, data, fsync, direct)");
    auto p = std::make_unique<Pending>();
    p->is_read = false;
    p->id = SafeInt(info, 0, "writeAtomic: id");
    p->write.path = info[1].As<Napi::String>().Utf8Value();
    p->write.tmp = info[2].As<Napi::String>().Utf8Value();
    if (p->write.path.empty() || p->write.tmp.empty() || p->write.path == p->write.tmp)
      throw Napi::RangeError::New(env, "writeAtomic: path and tmp must be two different, non-empty paths");
    auto header = info[3].As<Napi::Uint8Array>();
    auto data = info[4].As<Napi::Uint8Array>();
    p->write.header = header.Data();
    p->write.header_len = header.ByteLength();
    p->write.data = data.Data();
    p->write.data_len = data.ByteLength();
    p->write.fsync = info[5].ToBoolean();
    p->write.direct = info[6].ToBoolean();
    p->keep[0] = Napi::Persistent(header);
    p->keep[1] = Napi::Persistent(data);
    Post(env, p.release());
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("threads", Napi::Number::New(env, pool_ ? pool_->threads() : 0));
    o.Set("maxQueued", Napi::Number::New(env, pool_ ? static_cast<double>(pool_->max_queued()) : 0));
    o.Set("queued", Napi::Number::New(env, pool_ ? static_cast<double>(pool_->queued()) : 0));
    o.Set("running", Napi::Number::New(env, pool_ ? pool_->running() : 0));
    o.Set("pending", Napi::Number::New(env, static_cast<double>(pending_)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    o.Set("directBytes", Napi::Number::New(env, static_cast<double>(direct_bytes_)));
    return o;
  }

  // Runs what was posted to the end (buffers the threads use stay referenced
  // until then), drops the results, and stops the threads.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    if (pool_) pool_->Stop();
    pool_.reset();
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      for (Pending* p : shared_->done) delete p;
      shared_->done.clear();
    }
    pending_ = 0;
    if (async_) {
      async_->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&async_->handle),
               [](uv_handle_t* h) { delete static_cast<Async*>(h->data); });
      async_ = nullptr;
    }
  }

  void UpdateRef() {
    if (!async_) return;
    bool want = pending_ > 0;
    if (want == ref_) return;
    ref_ = want;
    auto* h = reinterpret_cast<uv_handle_t*>(&async_->handle);
    if (want) uv_ref(h);
    else uv_unref(h);
  }

  static void OnAsync(uv_async_t* h) {
    auto* a = static_cast<Async*>(h->data);
    if (a->owner) a->owner->Deliver();
  }

  static Napi::Array StatArray(Napi::Env env, const fill::FileStat& s) {
    Napi::Array a = Napi::Array::New(env, 4);
    a.Set(0u, Napi::BigInt::New(env, s.ino));
    a.Set(1u, Napi::BigInt::New(env, s.size));
    a.Set(2u, Napi::BigInt::New(env, s.mtime_ns));
    a.Set(3u, Napi::BigInt::New(env, s.ctime_ns));
    return a;
  }

  void Deliver() {
    std::vector<Pending*> done;
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      done.swap(shared_->done);
    }
    if (done.empty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array out = Napi::Array::New(env, done.size() * 6);
    uint32_t at = 0;
    for (Pending* p : done) {
      fill::Stage stage = p->is_read ? p->read.stage : p->write.stage;
      int err = p->is_read ? p->read.err : p->write.err;
      if (stage == fill::Stage::kDone) {
        bytes_ += p->is_read ? p->read.bytes : p->write.header_len + p->write.data_len;
        direct_bytes_ += p->is_read ? p->read.direct_bytes : p->write.direct_bytes;
      }
      out.Set(at++, Napi::Number::New(env, p->id));
      out.Set(at++, Napi::String::New(env, fill::StageName(stage)));
      out.Set(at++, err ? Napi::Value(Napi::String::New(env, ErrName(err))) : env.Undefined());
      if (p->is_read && stage == fill::Stage::kDone) {
        out.Set(at++, Napi::Number::New(env, static_cast<double>(p->read.bytes)));
        out.Set(at++, StatArray(env, p->read.before));
        out.Set(at++, StatArray(env, p->read.after));
      } else {
        out.Set(at++, Napi::Number::New(env, 0));
        out.Set(at++, env.Undefined());
        out.Set(at++, env.Undefined());
      }
      delete p;
    }
    pending_ -= done.size();
    UpdateRef();
    try {
      on_done_.MakeCallback(Value(), {out});
    } catch (const Napi::Error& err) {
      // The dispatcher (src/fill/fill-files.ts) does not throw; if it ever does,
      // the results are already delivered and the process goes on.
      if (!err.Message().empty()) fprintf(stderr, "weightcache fill: completion handler threw: %s\n", err.what());
    }
  }

  std::unique_ptr<fill::JobPool> pool_;
  std::shared_ptr<Shared> shared_;
  Napi::FunctionReference on_done_;
  Async* async_ = nullptr;
  size_t pending_ = 0;
  uint64_t bytes_ = 0;         // read or written by jobs that completed
  uint64_t direct_bytes_ = 0;  // of which with O_DIRECT
  bool ref_ = false;
  bool closed_ = false;
};

}  // namespace

void RegisterFill(Napi::Env env, Napi::Object exports) { exports.Set("FillFiles", FillFilesJs::Define(env)); }

}  // namespace weightcache
