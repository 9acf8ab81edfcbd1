#include "http/fastpath_js.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "http/doors/routes_js.h"
#include "store/store_js.h"

namespace weightcache::http {
namespace {

constexpr napi_type_tag kBindingsTag = {0x7763'5f62'696e'6473ull, 0x2545'f491'4f6c'dd1dull};
constexpr napi_type_tag kTokensTag = {0x7763'5f74'6f6b'656eull, 0x9e37'79b9'7f4a'7c16ull};

// Longest name or header value a binding may carry (names are bounded far below this by validateName).
constexpr size_t kMaxBindingString = 4096;

std::string Str(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string("NativeBindings: ") + what + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() > kMaxBindingString) throw Napi::RangeError::New(env, std::string("NativeBindings: ") + what + " is too long");
  return s;
}

double Num(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("NativeBindings: ") + what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0) throw Napi::RangeError::New(env, std::string("NativeBindings: ") + what + " must be ≥ 0");
  return d;
}

class BindingsJs : public Napi::ObjectWrap<BindingsJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeBindings",
                       {InstanceMethod<&BindingsJs::Set>("set"), InstanceMethod<&BindingsJs::Remove>("remove"),
                        InstanceMethod<&BindingsJs::RemovePrefix>("removePrefix"),
                        InstanceMethod<&BindingsJs::UsedExpiring>("usedExpiring"),
                        InstanceMethod<&BindingsJs::TakeServed>("takeServed"),
                        InstanceMethod<&BindingsJs::Size>("size")});
  }
  explicit BindingsJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BindingsJs>(info) {
    table_ = std::make_shared<store::BindingTable>();
    info.This().As<Napi::Object>().TypeTag(&kBindingsTag);
  }
  const std::shared_ptr<store::BindingTable>& table() const { return table_; }

 private:
  // set({name, objectId, etag, size, chunkSize, lastModified, contentType, contentMd5?, validForMs, measuredAtNs?}) -> installed
  Napi::Value Set(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "NativeBindings.set(binding)");
    auto o = info[0].As<Napi::Object>();
    auto b = std::make_shared<store::VersionBinding>();
    b->name = Str(env, o.Get("name"), "name");
    Napi::Value id = o.Get("objectId");
    if (!id.IsTypedArray() || id.As<Napi::Uint8Array>().ByteLength() != store::kObjectIdBytes) {
      throw Napi::TypeError::New(env, "NativeBindings: objectId must be a Uint8Array of 16 bytes");
    }
    std::memcpy(b->object.data(), id.As<Napi::Uint8Array>().Data(), store::kObjectIdBytes);
    b->etag = Str(env, o.Get("etag"), "etag");
    b->size = static_cast<uint64_t>(Num(env, o.Get("size"), "size"));
    b->chunk_size = static_cast<uint64_t>(Num(env, o.Get("chunkSize"), "chunkSize"));
    b->last_modified = Str(env, o.Get("lastModified"), "lastModified");
    b->content_type = Str(env, o.Get("contentType"), "contentType");
    Napi::Value md5 = o.Get("contentMd5");
    if (!md5.IsUndefined() && !md5.IsNull()) b->content_md5 = Str(env, md5, "contentMd5");
    // Header bytes JavaScript would send as they are: printable ASCII (and no quote inside an ETag).
    for (const std::string* s : {&b->etag, &b->last_modified, &b->content_type, &b->content_md5}) {
      for (char c : *s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e || (c == '"' && s == &b->etag)) return Napi::Boolean::New(env, false);
      }
    }
    double valid_ms = Num(env, o.Get("validForMs"), "validForMs");
    if (b->chunk_size == 0 || valid_ms <= 0) return Napi::Boolean::New(env, false);
    // Counted from when JavaScript measured validForMs (process.hrtime, the same CLOCK_MONOTONIC),
    // not from now: the time spent getting here must shorten the binding, never lengthen it.
    int64_t now = store::MonotonicNs(), from = now;
    Napi::Value at = o.Get("measuredAtNs");
    if (at.IsBigInt()) {
      bool lossless = false;
      int64_t ns = at.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless || ns <= 0 || ns > now) throw Napi::RangeError::New(env, "NativeBindings: measuredAtNs must be a past process.hrtime.bigint()");
      from = ns;
    } else if (!at.IsUndefined()) {
      throw Napi::TypeError::New(env, "NativeBindings: measuredAtNs must be a bigint");
    }
    b->bound_ns = from;
    b->deadline_ns = from + static_cast<int64_t>(std::min(valid_ms, 86'400'000.0) * 1e6);
    if (b->deadline_ns <= now) return Napi::Boolean::New(env, false);
    return Napi::Boolean::New(env, table_->Set(std::move(b)));
  }
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "NativeBindings.remove(name)");
    return Napi::Boolean::New(info.Env(), table_->Remove(info[0].As<Napi::String>().Utf8Value()));
  }
  Napi::Value RemovePrefix(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "NativeBindings.removePrefix(prefix)");
    return Napi::Number::New(info.Env(), static_cast<double>(table_->RemovePrefix(info[0].As<Napi::String>().Utf8Value())));
  }
  // usedExpiring(withinMs, max) -> names
  Napi::Value UsedExpiring(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      throw Napi::TypeError::New(env, "NativeBindings.usedExpiring(withinMs, max)");
    }
    double within = Num(env, info[0], "withinMs"), max = Num(env, info[1], "max");
    std::vector<std::string> names = table_->UsedExpiring(
        store::MonotonicNs(), static_cast<int64_t>(std::min(within, 86'400'000.0) * 1e6),
        static_cast<size_t>(std::min(max, static_cast<double>(store::kMaxBindings))));
    Napi::Array out = Napi::Array::New(env, names.size());
    for (uint32_t i = 0; i < names.size(); i++) out.Set(i, Napi::String::New(env, names[i]));
    return out;
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(table_->size()));
  }
  // takeServed() -> {names, etags, boundNs, usedNs (CLOCK_MONOTONIC ns, as numbers), dropped}
  Napi::Value TakeServed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<store::ServedReport> got = table_->TakeServed();
    Napi::Array names = Napi::Array::New(env, got.size()), etags = Napi::Array::New(env, got.size());
    Napi::Array bound = Napi::Array::New(env, got.size()), used = Napi::Array::New(env, got.size());
    for (uint32_t i = 0; i < got.size(); i++) {
      names.Set(i, Napi::String::New(env, got[i].name));
      etags.Set(i, Napi::String::New(env, got[i].etag));
      bound.Set(i, Napi::Number::New(env, static_cast<double>(got[i].bound_ns)));
      used.Set(i, Napi::Number::New(env, static_cast<double>(got[i].used_ns)));
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("names", names);
    o.Set("etags", etags);
    o.Set("boundNs", bound);
    o.Set("usedNs", used);
    o.Set("dropped", Napi::Number::New(env, static_cast<double>(table_->served_dropped())));
    return o;
  }

  std::shared_ptr<store::BindingTable> table_;
};

// Longest token handed over as a signing secret (a token file line is far shorter in practice).
constexpr size_t kMaxSecretBytes = 4096;

class TokensJs : public Napi::ObjectWrap<TokensJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTokens", {InstanceMethod<&TokensJs::Replace>("replace")});
  }
  explicit TokensJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokensJs>(info) {
    table_ = std::make_shared<auth::TokenTable>();
    info.This().As<Napi::Object>().TypeTag(&kTokensTag);
  }
  const std::shared_ptr<auth::TokenTable>& table() const { return table_; }

 private:
  // replace(enabled, [{digest: Uint8Array(32), admin, containers: string[] | null, secret?: string}])
  // `secret` is the token itself, the HMAC key of signed S3 requests: held in memory only.
  Napi::Value Replace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsBoolean() || !info[1].IsArray()) {
      throw Napi::TypeError::New(env, "NativeTokens.replace(enabled, grants)");
    }
    auto list = info[1].As<Napi::Array>();
    if (list.Length() > auth::kMaxTokens) throw Napi::RangeError::New(env, "NativeTokens: more than 10000 tokens");
    std::vector<auth::TokenGrant> grants;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value g = list.Get(i);
      if (!g.IsObject()) throw Napi::TypeError::New(env, "NativeTokens: each grant must be an object");
      auto o = g.As<Napi::Object>();
      Napi::Value d = o.Get("digest");
      if (!d.IsTypedArray() || d.As<Napi::Uint8Array>().ByteLength() != 32) {
        throw Napi::TypeError::New(env, "NativeTokens: digest must be a Uint8Array of 32 bytes (SHA-256)");
      }
      auth::TokenGrant t;
      std::memcpy(t.digest.data(), d.As<Napi::Uint8Array>().Data(), 32);
      t.admin = o.Get("admin").ToBoolean();
      Napi::Value cs = o.Get("containers");
      if (cs.IsNull() || cs.IsUndefined()) {
        t.all_containers = true;
      } else if (cs.IsArray()) {
        auto arr = cs.As<Napi::Array>();
        for (uint32_t k = 0; k < arr.Length(); k++) {
          Napi::Value c = arr.Get(k);
          if (!c.IsString()) throw Napi::TypeError::New(env, "NativeTokens: containers must be strings");
          t.containers.push_back(c.As<Napi::String>().Utf8Value());
        }
      } else {
        throw Napi::TypeError::New(env, "NativeTokens: containers must be a list of names or null (every container)");
      }
      Napi::Value secret = o.Get("secret");
      if (secret.IsString()) {
        t.secret = secret.As<Napi::String>().Utf8Value();
        if (t.secret.size() > kMaxSecretBytes) throw Napi::RangeError::New(env, "NativeTokens: a secret is longer than 4096 bytes");
      } else if (!secret.IsUndefined()) {
        throw Napi::TypeError::New(env, "NativeTokens: secret must be a string (the token) or absent");
      }
      grants.push_back(std::move(t));
    }
    table_->Replace(info[0].As<Napi::Boolean>().Value(), std::move(grants));
    return env.Undefined();
  }

  std::shared_ptr<auth::TokenTable> table_;
};

}  // namespace

void InitFastPathJs(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeBindings", BindingsJs::Define(env));
  exports.Set("NativeTokens", TokensJs::Define(env));
  doors::InitDoorRoutesJs(env, exports);
}

std::shared_ptr<store::BindingTable> BindingsOfJs(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kBindingsTag)) return nullptr;
  return BindingsJs::Unwrap(v.As<Napi::Object>())->table();
}

std::shared_ptr<FastPath> FastPathOfJs(Napi::Object o) {
  Napi::Env env = o.Env();
  auto fp = std::make_shared<FastPath>();
  fp->store = store::StoreOf(env, o.Get("store"));
  if (!fp->store) throw Napi::TypeError::New(env, "http door: fast.store must be a NativeStore");
  Napi::Value b = o.Get("bindings"), t = o.Get("tokens");
  if (!b.IsObject() || !b.As<Napi::Object>().CheckTypeTag(&kBindingsTag)) {
    throw Napi::TypeError::New(env, "http door: fast.bindings must be a NativeBindings");
  }
  if (!t.IsObject() || !t.As<Napi::Object>().CheckTypeTag(&kTokensTag)) {
    throw Napi::TypeError::New(env, "http door: fast.tokens must be a NativeTokens");
  }
  fp->bindings = BindingsJs::Unwrap(b.As<Napi::Object>())->table();
  fp->tokens = TokensJs::Unwrap(t.As<Napi::Object>())->table();
  Napi::Value mr = o.Get("maxRanges"), ka = o.Get("keepAliveTimeoutMs");
  if (!mr.IsNumber() || mr.As<Napi::Number>().DoubleValue() < 1) throw Napi::TypeError::New(env, "http door: fast.maxRanges must be ≥ 1");
  if (!ka.IsNumber() || ka.As<Napi::Number>().DoubleValue() < 0) throw Napi::TypeError::New(env, "http door: fast.keepAliveTimeoutMs must be ≥ 0");
  fp->max_ranges = mr.As<Napi::Number>().Uint32Value();
  fp->keep_alive_timeout_s = static_cast<uint32_t>(ka.As<Napi::Number>().DoubleValue() / 1000);
  // JavaScript answers kFill events (native-server.ts): misses are parked and filled, not handed over whole.
  fp->fill_misses = o.Get("fillMisses").ToBoolean().Value();
  Napi::Value d = o.Get("doors");
  if (!d.IsUndefined() && !d.IsNull() && !(fp->doors = doors::DoorRoutesOfJs(d))) {
    throw Napi::TypeError::New(env, "http door: fast.doors must be a NativeDoorRoutes");
  }
  return fp;
}

}  // namespace weightcache::http
