#include "store/store_js.h"

#include <sys/mman.h>
#include <v8.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "store/nvme_index.h"
#include "store/store.h"

namespace weightcache::store {
namespace {

// What every Buffer of one store shares: the store itself (a Buffer may
// outlive the NativeStore object that made it), and what V8 has been told.
struct Shared {
  std::shared_ptr<Store> store;
  // V8 schedules collections by the external memory it is told about. A
  // chunk Buffer's bytes are budgeted by the store, so each Buffer's length
  // is taken back out of V8's count (it would otherwise force a full GC
  // every few dozen fills). What V8 must see is the memory only a
  // collection can give back: evicted chunks still held by unreachable
  // Buffers (retired bytes), weighted so that pressure builds before the
  // overflow allowance runs out.
  int64_t reported = 0;
  int64_t weight = 1;
  // Fill buffers outside the budget (allocateUncached) still held by a
  // Buffer: live while their answer is sent, then garbage until collected.
  // V8 schedules collections by its heap, not by these: under a flood of
  // uncached fills (a budget far smaller than what many readers hold) it let
  // hundreds of MiB of spent fill buffers wait. So after every
  // `collect_every` bytes of them allocated, while that much is held, the
  // store asks V8 for a full collection (a memory-pressure notification,
  // tens of ms on the JavaScript thread): spent fill buffers stay within
  // about that much beyond the live ones. Only a node whose readers hold
  // more evicted chunks than the overflow allowance fills uncached at all.
  int64_t collect_every = 32ll << 20;  // max(32 MiB, the store's overflow allowance)
  int64_t uncached = 0;
  int64_t allocated_since = 0;
  uint64_t collections = 0;

  void UncachedChanged(int64_t delta) {
    uncached += delta;
    if (delta <= 0) return;
    allocated_since += delta;
    if (allocated_since >= collect_every && uncached >= collect_every) {
      allocated_since = 0;
      collections++;
      v8::Isolate::GetCurrent()->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
    }
  }

  void SyncPressure(Napi::Env env) {
    int64_t want = static_cast<int64_t>(store->retired_bytes()) * weight;
    if (want != reported) {
      Napi::MemoryManagement::AdjustExternalMemory(env, want - reported);
      reported = want;
    }
  }
};

// What a JS Buffer over store memory holds: its reference.
struct View {
  store::Ref ref;
  std::shared_ptr<Shared> shared;
  int64_t length;
};

Napi::Buffer<uint8_t> ToBuffer(Napi::Env env, store::Ref ref, const std::shared_ptr<Shared>& shared, bool writable) {
  uint8_t* p = writable ? ref.writable_data() : const_cast<uint8_t*>(ref.data());
  size_t len = static_cast<size_t>(ref.size());
  auto* view = new View{std::move(ref), shared, static_cast<int64_t>(len)};
  auto buf = Napi::Buffer<uint8_t>::New(
      env, p, len,
      [](Napi::Env env, uint8_t*, View* v) {
        std::shared_ptr<Shared> shared = v->shared;
        int64_t length = v->length;
        delete v;  // drops the reference: may free the chunk
        Napi::MemoryManagement::AdjustExternalMemory(env, length);  // V8 subtracts it again when it sweeps
        shared->SyncPressure(env);
      },
      view);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(len));
  return buf;
}

// A Buffer over its own mapping, freed (munmap: back to the kernel at once,
// no allocator slack) when the Buffer is collected.
struct Uncached {
  void* p;
  size_t len;
  std::shared_ptr<Shared> shared;
};

Napi::Value UncachedBuffer(Napi::Env env, size_t len, const std::shared_ptr<Shared>& shared) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return env.Undefined();
  auto* u = new Uncached{p, len, shared};
  auto buf = Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(p), len,
      [](Napi::Env, uint8_t*, Uncached* u) {
        munmap(u->p, u->len);
        std::shared_ptr<Shared> shared = std::move(u->shared);
        int64_t length = static_cast<int64_t>(u->len);
        delete u;
        shared->UncachedChanged(-length);
      },
      u);
  shared->UncachedChanged(static_cast<int64_t>(len));
  return buf;
}

uint64_t Bytes(Napi::Env env, Napi::Value v, const char* what, uint64_t min) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("NativeStore: ") + what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min)) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(env, std::string("NativeStore: ") + what + " must be an integer ≥ " + std::to_string(min));
  }
  return static_cast<uint64_t>(d);
}

// Marks NativeStore objects, so StoreOf never unwraps another kind of object.
constexpr napi_type_tag kStoreTag = {0x7765696768746361ull, 0x73746f72656a7331ull};

class StoreJs : public Napi::ObjectWrap<StoreJs> {
 public:
  const std::shared_ptr<Store>& store() const { return store_; }

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeStore",
                       {
                           InstanceMethod<&StoreJs::Lookup>("lookup"),
                           InstanceMethod<&StoreJs::Contains>("contains"),
                           InstanceMethod<&StoreJs::Allocate>("allocate"),
                           InstanceMethod<&StoreJs::AllocateUncached>("allocateUncached"),
                           InstanceMethod<&StoreJs::Commit>("commit"),
                           InstanceMethod<&StoreJs::Erase>("erase"),
                           InstanceMethod<&StoreJs::Clear>("clear"),
                           InstanceMethod<&StoreJs::TakeEvicted>("takeEvicted"),
                           InstanceMethod<&StoreJs::TakeRetired>("takeRetired"),
                           InstanceMethod<&StoreJs::Stats>("stats"),
                           InstanceMethod<&StoreJs::NvmePut>("nvmePut"),
                           InstanceMethod<&StoreJs::NvmeRemove>("nvmeRemove"),
                           InstanceMethod<&StoreJs::NvmeClear>("nvmeClear"),
                           InstanceMethod<&StoreJs::NvmeStats>("nvmeStats"),
                           InstanceMethod<&StoreJs::NvmeTakeUsed>("nvmeTakeUsed"),
                       });
  }

  // new NativeStore({ maxBytes, overflowBytes?, correlatedMs?, keepEvicted?, maxEvicted? })
  explicit StoreJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StoreJs>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject())
      throw Napi::TypeError::New(env, "NativeStore(options): options must be an object");
    auto o = info[0].As<Napi::Object>();
    StoreOptions so;
    so.max_bytes = Bytes(env, o.Get("maxBytes"), "maxBytes", 1);
    if (o.Has("overflowBytes")) so.overflow_bytes = Bytes(env, o.Get("overflowBytes"), "overflowBytes", 0);
    if (o.Has("correlatedMs"))
      so.correlated_ms = static_cast<uint32_t>(Bytes(env, o.Get("correlatedMs"), "correlatedMs", 0));
    if (o.Has("keepEvicted")) so.keep_evicted = o.Get("keepEvicted").ToBoolean();
    if (o.Has("maxEvicted")) so.max_evicted = static_cast<size_t>(Bytes(env, o.Get("maxEvicted"), "maxEvicted", 0));
    if (o.Has("prefaultBytes")) so.prefault_bytes = Bytes(env, o.Get("prefaultBytes"), "prefaultBytes", 0);
    if (o.Has("prefaultCount"))
      so.prefault_count = static_cast<size_t>(Bytes(env, o.Get("prefaultCount"), "prefaultCount", 0));
    std::string error;
    store_ = Store::Create(so, &error);
    if (!store_) throw Napi::Error::New(env, "NativeStore: " + error);
    store_->AttachNvme(std::make_shared<NvmeIndex>());
    napi_type_tag_object(env, info.This(), &kStoreTag);
    shared_ = std::make_shared<Shared>();
    shared_->store = store_;
    // V8 collects when external memory grows by ~64 MiB: reach that at half the overflow.
    shared_->weight = std::max<int64_t>(1, static_cast<int64_t>((128ull << 20) / std::max<uint64_t>(so.overflow_bytes, 1)));
    shared_->collect_every = std::max<int64_t>(shared_->collect_every, static_cast<int64_t>(so.overflow_bytes));
  }

 private:
  ChunkId IdOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "NativeStore: a chunk is (objectId: 16-byte Buffer, index: number)");
    auto obj = info[0].As<Napi::Uint8Array>();
    if (obj.ByteLength() != kObjectIdBytes)
      throw Napi::RangeError::New(env, "NativeStore: an object id is 16 bytes, got " + std::to_string(obj.ByteLength()));
    double index = info[1].As<Napi::Number>().DoubleValue();
    if (!(index >= 0) || index > 4294967295.0 || index != static_cast<double>(static_cast<uint32_t>(index)))
      throw Napi::RangeError::New(env, "NativeStore: a chunk index is an integer in [0, 2^32)");
    ChunkId id;
    std::memcpy(id.object.data(), obj.Data(), kObjectIdBytes);
    id.index = static_cast<uint32_t>(index);
    return id;
  }

  // { serial, data, crc32c }: serial > 0 asks the caller to cache `data` as
  // the entry's one Buffer (lookup answers the serial alone from then on, and
  // takeRetired() says when to drop it); 0: the entry already left, don't cache.
  Napi::Value Chunk(Napi::Env env, store::Ref ref, Napi::Value data) {
    uint32_t crc = ref.crc32c();
    double serial = store_->MarkViewed(ref) ? static_cast<double>(ref.serial()) : 0;
    Napi::Object o = Napi::Object::New(env);
    o.Set("serial", Napi::Number::New(env, serial));
    o.Set("data", data.IsEmpty() ? ToBuffer(env, std::move(ref), shared_, false).As<Napi::Value>() : data);
    o.Set("crc32c", Napi::Number::New(env, crc));
    return o;
  }

  // lookup(objectId, index): undefined on a miss; on a hit (counted as a use),
  // the entry's serial when the caller already caches its Buffer, else
  // { serial, data, crc32c } (see Chunk).
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    store::Ref ref = store_->Lookup(IdOf(info));
    if (!ref) return info.Env().Undefined();
    if (Store::IsViewed(ref)) return Napi::Number::New(info.Env(), static_cast<double>(ref.serial()));
    return Chunk(info.Env(), std::move(ref), Napi::Value());
  }

  // contains(objectId, index): boolean — no use counted.
  Napi::Value Contains(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), store_->Contains(IdOf(info)));
  }

  // allocate(length): a writable Buffer of store memory to fill, or undefined when there is no room.
  Napi::Value Allocate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1) throw Napi::TypeError::New(env, "NativeStore.allocate(length)");
    uint64_t len = Bytes(env, info[0], "length", 1);
    store::Ref ref = store_->Allocate(len);
    if (!ref) return env.Undefined();
    return ToBuffer(env, std::move(ref), shared_, true);
  }

  // allocateUncached(length): a writable Buffer for a fill the budget has no
  // room for, outside the store (commit copies it if room appears), or
  // undefined when the kernel refuses the mapping. Limited to the budget: a
  // fill larger than the whole store is a caller's bug, not a chunk.
  Napi::Value AllocateUncached(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1) throw Napi::TypeError::New(env, "NativeStore.allocateUncached(length)");
    uint64_t len = Bytes(env, info[0], "length", 1);
    if (len > store_->options().max_bytes)
      throw Napi::RangeError::New(env, "NativeStore.allocateUncached: length " + std::to_string(len) +
                                           " is larger than the store's budget");
    return UncachedBuffer(env, static_cast<size_t>(len), shared_);
  }

  // commit(objectId, index, data, crc32c, label): { serial, data, crc32c }
  // (see Chunk), or undefined when refused. `data` from allocate() is
  // published in place (and returned as `data`); any other Buffer is copied.
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ChunkId id = IdOf(info);
    if (info.Length() < 5 || !info[2].IsTypedArray() || !info[3].IsNumber() || !info[4].IsString())
      throw Napi::TypeError::New(env, "NativeStore.commit(objectId, index, data, crc32c, label)");
    auto data = info[2].As<Napi::Uint8Array>();
    uint32_t crc = info[3].As<Napi::Number>().Uint32Value();
    std::string label = info[4].As<Napi::String>().Utf8Value();
    if (data.ByteLength() == 0) throw Napi::RangeError::New(env, "NativeStore.commit: a chunk has at least one byte");
    if (store::Ref pending = store_->PendingAt(data.Data(), data.ByteLength())) {
      if (store_->Commit(pending, id, crc, std::move(label))) return Chunk(env, std::move(pending), data);
    }
    store::Ref ref = store_->Insert(id, data.Data(), data.ByteLength(), crc, std::move(label));
    if (!ref) return env.Undefined();
    return Chunk(env, std::move(ref), Napi::Value());
  }

  // takeRetired(): serials of cached Buffers whose entries left the index (drop them).
  Napi::Value TakeRetired(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    // Called after every fill: the moment evictions may have retired memory.
    shared_->SyncPressure(env);
    std::vector<uint64_t> serials = store_->TakeRetiredViewed();
    Napi::Array out = Napi::Array::New(env, serials.size());
    for (size_t i = 0; i < serials.size(); i++)
      out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(serials[i])));
    return out;
  }

  Napi::Value Erase(const Napi::CallbackInfo& info) {
    bool had = store_->Erase(IdOf(info));
    shared_->SyncPressure(info.Env());
    return Napi::Boolean::New(info.Env(), had);
  }

  Napi::Value Clear(const Napi::CallbackInfo& info) {
    store_->Clear();
    shared_->SyncPressure(info.Env());
    return info.Env().Undefined();
  }

  // takeEvicted(): [{ label, data, crc32c }] — chunks evicted since the last call (keepEvicted).
  Napi::Value TakeEvicted(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<store::Ref> refs = store_->TakeEvicted();
    Napi::Array out = Napi::Array::New(env, refs.size());
    for (size_t i = 0; i < refs.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("label", Napi::String::New(env, refs[i].label()));
      o.Set("crc32c", Napi::Number::New(env, refs[i].crc32c()));
      o.Set("data", ToBuffer(env, std::move(refs[i]), shared_, false));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StoreStats s = store_->stats();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    set("capacityBytes", static_cast<double>(s.capacity_bytes));
    set("entries", static_cast<double>(s.entries));
    set("chargedBytes", static_cast<double>(s.charged_bytes));
    set("dataBytes", static_cast<double>(s.data_bytes));
    set("pendingBytes", static_cast<double>(s.pending_bytes));
    set("retiredBytes", static_cast<double>(s.retired_bytes));
    set("warmBytes", static_cast<double>(s.warm_bytes));
    set("uncachedBytes", static_cast<double>(shared_->uncached));
    set("uncachedCollections", static_cast<double>(shared_->collections));
    set("reservedBytes", static_cast<double>(s.reserved_bytes));
    set("hits", static_cast<double>(s.hits));
    set("misses", static_cast<double>(s.misses));
    set("inserts", static_cast<double>(s.inserts));
    set("copiedBytes", static_cast<double>(s.copied_bytes));
    set("evictions", static_cast<double>(s.evictions));
    set("refused", static_cast<double>(s.refused));
    set("prefaulted", static_cast<double>(s.prefaulted));
    set("demotionsDropped", static_cast<double>(s.demotions_dropped));
    set("outstandingRefs", static_cast<double>(s.outstanding_refs));
    set("smallBytes", static_cast<double>(s.small_bytes));
    set("mainBytes", static_cast<double>(s.main_bytes));
    return o;
  }

  // nvmePut(objectId, index, path, dataOffset, dataLength, dataCrc, key) -> published
  // The NVMe tier publishes a v2 chunk file the native doors may read.
  Napi::Value NvmePut(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ChunkId id = IdOf(info);
    if (info.Length() < 6 || !info[2].IsString())
      throw Napi::TypeError::New(env, "NativeStore.nvmePut(objectId, index, path, dataOffset, dataLength, dataCrc)");
    NvmeEntry e;
    e.path = info[2].As<Napi::String>().Utf8Value();
    if (e.path.empty() || e.path.size() > 4096) throw Napi::RangeError::New(env, "NativeStore.nvmePut: path must be 1..4096 bytes");
    e.expect.data_offset = static_cast<uint32_t>(Bytes(env, info[3], "nvmePut dataOffset", 1));
    e.expect.data_length = Bytes(env, info[4], "nvmePut dataLength", 0);
    uint64_t crc = Bytes(env, info[5], "nvmePut dataCrc", 0);
    if (crc > 0xffffffffull || e.expect.data_offset > nvme::kMaxDataOffset || e.expect.data_length > nvme::kMaxDataBytes)
      throw Napi::RangeError::New(env, "NativeStore.nvmePut: dataOffset, dataLength or dataCrc out of range");
    e.expect.data_crc = static_cast<uint32_t>(crc);
    if (info.Length() > 6 && info[6].IsString()) e.label = info[6].As<Napi::String>().Utf8Value();
    return Napi::Boolean::New(env, store_->nvme()->Put(id, std::move(e)));
  }

  // nvmeRemove(objectId, index) -> had: from now on no native read of that chunk file starts.
  Napi::Value NvmeRemove(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), store_->nvme()->Remove(IdOf(info)));
  }

  Napi::Value NvmeClear(const Napi::CallbackInfo& info) {
    store_->nvme()->Clear();
    return info.Env().Undefined();
  }

  // nvmeTakeUsed() -> keys of the chunk files the native doors read since the last call.
  Napi::Value NvmeTakeUsed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<std::string> keys = store_->nvme()->TakeUsed();
    Napi::Array out = Napi::Array::New(env, keys.size());
    for (uint32_t i = 0; i < keys.size(); i++) out.Set(i, Napi::String::New(env, keys[i]));
    return out;
  }

  // nvmeStats(): what the native doors' NVMe reads did (every I/O thread).
  Napi::Value NvmeStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    NvmeIndex& n = *store_->nvme();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    set("entries", static_cast<double>(n.size()));
    set("openFiles", static_cast<double>(n.files().size()));
    set("ranges", static_cast<double>(n.stats().ranges.load()));
    set("promoted", static_cast<double>(n.stats().promoted.load()));
    set("corrupt", static_cast<double>(n.stats().to_js_corrupt.load()));
    set("missing", static_cast<double>(n.stats().to_js_missing.load()));
    set("busy", static_cast<double>(n.stats().to_js_busy.load()));
    set("bufferBytes", static_cast<double>(n.stats().buffer_bytes.load()));
    set("readsInFlight", static_cast<double>(n.stats().reads_in_flight.load()));
    set("bytesRead", static_cast<double>(n.reader_stats().bytes_read.load()));
    set("bytesServed", static_cast<double>(n.reader_stats().bytes_served.load()));
    set("headerReads", static_cast<double>(n.reader_stats().header_reads.load()));
    return o;
  }

  std::shared_ptr<Store> store_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

void InitStoreJs(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeStore", StoreJs::Define(env));
}

std::shared_ptr<Store> StoreOf(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kStoreTag, &tagged) != napi_ok || !tagged) return nullptr;
  return StoreJs::Unwrap(v.As<Napi::Object>())->store();
}

}  // namespace weightcache::store
