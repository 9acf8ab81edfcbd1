#include "nvme/nvme_js.h"

#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "io/loop.h"
#include "nvme/chunk_format.h"
#include "nvme/chunk_reader.h"
#include "nvme/dir_lock.h"

namespace weightcache {
namespace {

std::string ErrName(int err) {
  const char* n = uv_err_name(-err);
  return n ? n : "E" + std::to_string(err);
}

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<uint64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer 0..2^32-1");
  return static_cast<uint32_t>(v);
}

uint64_t SizeArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 9007199254740991.0) || v != static_cast<double>(static_cast<uint64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative safe integer");
  return static_cast<uint64_t>(v);
}

// nvmeEncodeHeader(key: string, objectId: Uint8Array(16), index, data: Uint8Array, blockBytes)
//   -> { header: Buffer, dataCrc: number }
Napi::Value EncodeHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsTypedArray() || !info[3].IsTypedArray())
    throw Napi::TypeError::New(env, "nvmeEncodeHeader(key, objectId, index, data, blockBytes)");
  std::string key = info[0].As<Napi::String>().Utf8Value();
  auto oid = info[1].As<Napi::Uint8Array>();
  if (oid.ByteLength() != nvme::kObjectIdBytes)
    throw Napi::RangeError::New(env, "nvmeEncodeHeader: objectId must be 16 bytes");
  uint32_t index = U32Arg(info, 2, "nvmeEncodeHeader: index");
  auto data = info[3].As<Napi::Uint8Array>();
  uint32_t block_bytes = U32Arg(info, 4, "nvmeEncodeHeader: blockBytes");
  std::vector<uint8_t> out;
  std::string err;
  if (!nvme::Encode(reinterpret_cast<const uint8_t*>(key.data()), static_cast<uint32_t>(key.size()), oid.Data(),
                    index, data.Data(), data.ByteLength(), block_bytes, &out, &err))
    throw Napi::RangeError::New(env, "nvmeEncodeHeader: " + err);
  nvme::Header h;
  nvme::Decode(out.data(), out.size(), &h);
  Napi::Object r = Napi::Object::New(env);
  r.Set("header", Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size()));
  r.Set("dataCrc", Napi::Number::New(env, h.data_crc));
  return r;
}

// nvmeDecodeHeader(buf) -> { ok: true, key: Buffer, ... } | { ok: false, reason, dataOffset? }
// With reason 'truncated' and a dataOffset, the header is that long: read that much and decode again.
Napi::Value DecodeHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(env, "nvmeDecodeHeader(buf): buf must be a Uint8Array");
  auto buf = info[0].As<Napi::Uint8Array>();
  Napi::Object r = Napi::Object::New(env);
  uint32_t data_offset = 0;
  nvme::DecodeError e = nvme::DataOffset(buf.Data(), buf.ByteLength(), &data_offset);
  nvme::Header h;
  if (e == nvme::DecodeError::kNone) e = nvme::Decode(buf.Data(), buf.ByteLength(), &h);
  if (e != nvme::DecodeError::kNone) {
    r.Set("ok", false);
    r.Set("reason", nvme::DecodeErrorName(e));
    r.Set("checksum", nvme::IsChecksumFailure(e));
    if (data_offset) r.Set("dataOffset", data_offset);
    return r;
  }
  r.Set("ok", true);
  r.Set("key", Napi::Buffer<uint8_t>::Copy(env, h.key, h.key_length));
  r.Set("objectId", Napi::Buffer<uint8_t>::Copy(env, h.object_id, nvme::kObjectIdBytes));
  r.Set("index", h.index);
  r.Set("dataOffset", h.data_offset);
  r.Set("dataLength", Napi::Number::New(env, static_cast<double>(h.data_length)));
  r.Set("dataCrc", h.data_crc);
  r.Set("blockBytes", h.block_bytes);
  r.Set("blockCount", h.block_count);
  return r;
}

// nvmeLockDir(dir) -> fd; throws an Error with code ELOCKED (and holderPid) or the errno name.
Napi::Value LockDirJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "nvmeLockDir(dir)");
  nvme::DirLock l = nvme::LockDir(info[0].As<Napi::String>().Utf8Value());
  if (l.fd >= 0) return Napi::Number::New(env, l.fd);
  Napi::Error e = Napi::Error::New(env, l.error);
  e.Set("code", l.err == EWOULDBLOCK ? std::string("ELOCKED") : ErrName(l.err));
  if (l.holder > 0) e.Set("holderPid", Napi::Number::New(env, static_cast<double>(l.holder)));
  throw e;
}

Napi::Value UnlockDirJs(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsNumber()) nvme::UnlockDir(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// --- NvmeReader ---------------------------------------------------------------

// new NvmeReader({ queueDepth, threads, forceThreads, direct, openFiles, maxPending }, onDone)
// read(id, path, key, dataOffset, dataLength, dataCrc, offset, length, dest?)
// onDone(results): results is a flat array of [id, status, data, chunkCrc, code, reason] * n,
// status 0 ok, 1 missing, 2 corrupt, 3 error, 4 cancelled.
class NvmeReaderJs : public Napi::ObjectWrap<NvmeReaderJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NvmeReader",
                       {InstanceMethod("read", &NvmeReaderJs::Read), InstanceMethod("forget", &NvmeReaderJs::Forget),
                        InstanceMethod("stats", &NvmeReaderJs::Stats), InstanceMethod("close", &NvmeReaderJs::Close)});
  }

  explicit NvmeReaderJs(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<NvmeReaderJs>(info), files_(OptionU32(info, "openFiles", 256)) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "new NvmeReader(options, onDone)");
    Napi::Object o = info[0].As<Napi::Object>();
    io::LoopOptions lo;
    lo.queue_depth = OptionU32(info, "queueDepth", 32);
    lo.threads = OptionU32(info, "threads", 4);
    lo.force_threads = o.Has("forceThreads") && o.Get("forceThreads").ToBoolean();
    bool direct = !o.Has("direct") || o.Get("direct").ToBoolean();
    max_pending_ = OptionU32(info, "maxPending", 4096);
    loop_ = io::Loop::Create(lo, &fallback_reason_);
    if (!loop_) throw Napi::Error::New(env, "NvmeReader: cannot create an eventfd");
    // Read buffers are reused (the Buffers JS holds return to the pool when
    // collected); at most 64 MiB of them wait idle in the pool.
    pool_ = std::make_shared<BufferPool>(64u << 20);
    reader_ = std::make_unique<nvme::ChunkReader>(*loop_, files_, stats_, pool_, direct);
    on_done_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* uv = nullptr;
    napi_get_uv_event_loop(env, &uv);
    uv_ = new Handles();
    uv_->owner = this;
    uv_poll_init(uv, &uv_->poll, loop_->event_fd());
    uv_->poll.data = uv_;
    uv_prepare_init(uv, &uv_->prepare);
    uv_->prepare.data = uv_;
    uv_poll_start(&uv_->poll, UV_READABLE, OnPoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(&uv_->poll));  // ref'd only while reads are pending
    uv_prepare_start(&uv_->prepare, OnPrepare);
    uv_unref(reinterpret_cast<uv_handle_t*>(&uv_->prepare));
  }

  ~NvmeReaderJs() override { Shutdown(); }

 private:
  struct Handles {
    uv_poll_t poll;
    uv_prepare_t prepare;
    int open = 2;
    NvmeReaderJs* owner = nullptr;
  };

  struct PoolHint {
    std::shared_ptr<BufferPool> pool;
    size_t size;
    uint8_t* base;
  };

  struct Pending : nvme::ChunkRead {
    double id = 0;
    Napi::Reference<Napi::Uint8Array> dest_ref;
  };

  static uint32_t OptionU32(const Napi::CallbackInfo& info, const char* name, uint32_t dflt) {
    if (info.Length() < 1 || !info[0].IsObject()) return dflt;
    Napi::Value v = info[0].As<Napi::Object>().Get(name);
    if (v.IsUndefined()) return dflt;
    if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 1 || v.As<Napi::Number>().DoubleValue() > 1e6)
      throw Napi::RangeError::New(info.Env(), std::string("NvmeReader: ") + name + " must be 1..1000000");
    return v.As<Napi::Number>().Uint32Value();
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "NvmeReader: closed");
    if (info.Length() < 8 || !info[1].IsString() || !info[2].IsString())
      throw Napi::TypeError::New(env,
                                 "read(id, path, key, dataOffset, dataLength, dataCrc, offset, length, dest?)");
    if (pending_ >= max_pending_) {
      Napi::Error e = Napi::Error::New(env, "NvmeReader: " + std::to_string(pending_) + " reads already pending");
      e.Set("code", "EBUSY");
      throw e;
    }
    auto p = std::make_unique<Pending>();
    p->id = info[0].As<Napi::Number>().DoubleValue();
    p->path = info[1].As<Napi::String>().Utf8Value();
    p->key = info[2].As<Napi::String>().Utf8Value();
    p->expect.data_offset = U32Arg(info, 3, "read: dataOffset");
    p->expect.data_length = SizeArg(info, 4, "read: dataLength");
    p->expect.data_crc = U32Arg(info, 5, "read: dataCrc");
    p->offset = SizeArg(info, 6, "read: offset");
    p->length = SizeArg(info, 7, "read: length");
    if (p->offset > p->expect.data_length || p->length > p->expect.data_length - p->offset)
      throw Napi::RangeError::New(env, "read: offset + length is past the end of the chunk");
    if (info.Length() > 8 && info[8].IsTypedArray()) {
      auto dest = info[8].As<Napi::Uint8Array>();
      if (dest.ByteLength() < p->length) throw Napi::RangeError::New(env, "read: dest is shorter than length");
      p->dest = dest.Data();
      p->dest_ref = Napi::Persistent(dest);  // alive until the read completes
    }
    p->done = OnReadDone;
    p->user = this;
    pending_++;
    UpdateRef();
    reader_->Read(p.release());
    if (!finished_.empty()) {
      // Finished without I/O: deliver from the next poll, never re-entrantly.
      uint64_t one = 1;
      ssize_t w = write(loop_->event_fd(), &one, sizeof one);
      (void)w;
    }
    return env.Undefined();
  }

  Napi::Value Forget(const Napi::CallbackInfo& info) {
    if (info.Length() >= 1 && info[0].IsString()) files_.Erase(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    o.Set("backend", loop_ ? loop_->backend() : "closed");
    o.Set("fallbackReason", fallback_reason_);
    o.Set("direct", reader_ ? reader_->direct() : false);
    num("queueDepth", loop_ ? loop_->queue_depth() : 0);
    num("bytesRead", static_cast<double>(stats_.bytes_read.load()));
    num("bytesServed", static_cast<double>(stats_.bytes_served.load()));
    num("readsOk", static_cast<double>(stats_.reads_ok.load()));
    num("headerReads", static_cast<double>(stats_.header_reads.load()));
    num("corrupt", static_cast<double>(stats_.corrupt.load()));
    num("errors", static_cast<double>(stats_.errors.load()));
    num("bytesCopied", static_cast<double>(stats_.bytes_copied.load()));
    num("openFiles", static_cast<double>(files_.size()));
    num("pending", static_cast<double>(pending_));
    num("inFlight", loop_ ? loop_->in_flight() : 0);
    return o;
  }

  // Completes what is in flight (results are dropped: callers wait for their
  // reads before closing) and releases the ring, threads and files.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    if (loop_) loop_->Drain();  // buffers in flight must not be freed under the kernel
    for (Pending* p : finished_) delete p;
    finished_.clear();
    reader_.reset();
    loop_.reset();
    files_.Clear();
    if (uv_) {
      uv_->owner = nullptr;
      uv_poll_stop(&uv_->poll);
      uv_prepare_stop(&uv_->prepare);
      auto closed = [](uv_handle_t* h) {
        auto* hs = static_cast<Handles*>(h->data);
        if (--hs->open == 0) delete hs;
      };
      uv_close(reinterpret_cast<uv_handle_t*>(&uv_->poll), closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&uv_->prepare), closed);
      uv_ = nullptr;
    }
    pending_ = 0;
  }

  void UpdateRef() {
    if (!uv_) return;
    bool want = pending_ > 0;
    if (want == ref_) return;
    ref_ = want;
    auto* h = reinterpret_cast<uv_handle_t*>(&uv_->poll);
    if (want) uv_ref(h);
    else uv_unref(h);
  }

  static void OnReadDone(nvme::ChunkRead* r) {
    auto* self = static_cast<NvmeReaderJs*>(r->user);
    self->finished_.push_back(static_cast<Pending*>(r));
  }

  static void OnPrepare(uv_prepare_t* h) {
    auto* hs = static_cast<Handles*>(h->data);
    if (hs->owner && hs->owner->loop_ && hs->owner->loop_->queued() > 0) hs->owner->loop_->Flush();
  }

  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* hs = static_cast<Handles*>(h->data);
    NvmeReaderJs* self = hs->owner;
    if (!self || status < 0) return;
    self->loop_->Poll();
    if (!self->finished_.empty()) self->Deliver();
  }

  void Deliver() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    std::vector<Pending*> done;
    done.swap(finished_);
    Napi::Array out = Napi::Array::New(env, done.size() * 6);
    uint32_t at = 0;
    for (Pending* p : done) {
      out.Set(at++, Napi::Number::New(env, p->id));
      out.Set(at++, Napi::Number::New(env, static_cast<int>(p->status)));
      Napi::Value data = env.Undefined();
      if (p->status == nvme::ReadStatus::kOk) {
        if (p->dest) {
          data = p->dest_ref.Value();
        } else if (p->length == 0) {
          data = Napi::Buffer<uint8_t>::New(env, 0);
        } else {
          // The aligned read buffer becomes the JS Buffer in place: no copy. The
          // Buffer views the requested bytes; the finalizer returns the whole
          // block to the pool (which outlives the reader while Buffers remain).
          auto* hint = new PoolHint{p->buffer.pool(), p->buffer.size(), nullptr};
          hint->base = p->buffer.Release();
          data = Napi::Buffer<uint8_t>::New(
              env, const_cast<uint8_t*>(p->data), static_cast<size_t>(p->length),
              [](Napi::Env, uint8_t*, PoolHint* h) {
                h->pool->Release(h->base, h->size);
                delete h;
              },
              hint);
        }
      }
      out.Set(at++, data);
      out.Set(at++, Napi::Number::New(env, p->chunk_crc));
      out.Set(at++, p->err ? Napi::String::New(env, ErrName(p->err)) : env.Undefined());
      out.Set(at++, p->reason.empty() ? env.Undefined() : Napi::String::New(env, p->reason));
      delete p;
    }
    pending_ -= done.size();
    UpdateRef();
    try {
      on_done_.MakeCallback(Value(), {out});
    } catch (const Napi::Error& err) {
      // The dispatcher (src/tier/nvme-reader.ts) does not throw; if it ever
      // does, the reads are already delivered and the process goes on.
      if (!err.Message().empty()) fprintf(stderr, "weightcache nvme: completion handler threw: %s\n", err.what());
    }
    if (loop_ && loop_->queued() > 0) loop_->Flush();  // what the callback submitted starts now
  }

  nvme::OpenChunks files_;
  nvme::ReaderStats stats_;
  std::shared_ptr<BufferPool> pool_;
  std::unique_ptr<io::Loop> loop_;
  std::unique_ptr<nvme::ChunkReader> reader_;
  std::string fallback_reason_;
  Napi::FunctionReference on_done_;
  Handles* uv_ = nullptr;
  std::vector<Pending*> finished_;
  size_t pending_ = 0;
  size_t max_pending_ = 4096;
  bool ref_ = false;
  bool closed_ = false;
};

}  // namespace

void RegisterNvme(Napi::Env env, Napi::Object exports) {
  exports.Set("nvmeEncodeHeader", Napi::Function::New(env, EncodeHeader, "nvmeEncodeHeader"));
  exports.Set("nvmeDecodeHeader", Napi::Function::New(env, DecodeHeader, "nvmeDecodeHeader"));
  exports.Set("nvmeLockDir", Napi::Function::New(env, LockDirJs, "nvmeLockDir"));
  exports.Set("nvmeUnlockDir", Napi::Function::New(env, UnlockDirJs, "nvmeUnlockDir"));
  exports.Set("NvmeReader", NvmeReaderJs::Define(env));
  Napi::Object f = Napi::Object::New(env);
  f.Set("formatVersion", nvme::kFormatVersion);
  f.Set("fixedHeaderBytes", static_cast<double>(nvme::kFixedHeaderBytes));
  f.Set("maxKeyBytes", nvme::kMaxKeyBytes);
  f.Set("maxDataBytes", static_cast<double>(nvme::kMaxDataBytes));
  f.Set("maxDataOffset", nvme::kMaxDataOffset);
  f.Set("alignBytes", nvme::kAlignBytes);
  f.Set("defaultBlockBytes", nvme::kDefaultBlockBytes);
  f.Set("minBlockBytes", nvme::kMinBlockBytes);
  f.Set("maxBlockBytes", nvme::kMaxBlockBytes);
  exports.Set("nvmeFormat", f);
}

}  // namespace weightcache
