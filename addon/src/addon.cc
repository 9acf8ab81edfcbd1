// The addon's export table, and nothing else: each concept lives in its own
// header (crc32c.h, and the transport's frame/connection/buffer-pool headers).
#include <napi.h>

#include "crc32c.h"
#include "transport_js.h"

namespace weightcache {
uint32_t Crc32cPortable(uint32_t crc, const uint8_t* data, size_t len);
}

namespace {

// crc32c(data: Uint8Array, seed?: number): number
Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32c(data, seed?): data must be a Uint8Array or Buffer");
  }
  auto arr = info[0].As<Napi::Uint8Array>();
  uint32_t seed = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "crc32c(data, seed?): seed must be a number");
    seed = info[1].As<Napi::Number>().Uint32Value();
  }
  return Napi::Number::New(env, weightcache::Crc32c(seed, arr.Data(), arr.ByteLength()));
}

// crc32cPortable: the table implementation, so tests can check both agree.
Napi::Value Crc32cPortableJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32cPortable(data, seed?): data must be a Uint8Array or Buffer");
  }
  auto arr = info[0].As<Napi::Uint8Array>();
  uint32_t seed = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(env, weightcache::Crc32cPortable(seed, arr.Data(), arr.ByteLength()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  exports.Set("crc32cPortable", Napi::Function::New(env, Crc32cPortableJs, "crc32cPortable"));
  exports.Set("crc32cImplementation", Napi::String::New(env, weightcache::Crc32cImplementation()));
  // The native transport (docs/wire-protocol.md); typed in src/transport/binding.ts.
  exports.Set("transportInit", Napi::Function::New(env, weightcache::TransportInit, "transportInit"));
  exports.Set("transportRef", Napi::Function::New(env, weightcache::TransportRef, "transportRef"));
  exports.Set("transportUnref", Napi::Function::New(env, weightcache::TransportUnref, "transportUnref"));
  exports.Set("transportListen", Napi::Function::New(env, weightcache::TransportListen, "transportListen"));
  exports.Set("transportCloseListener",
              Napi::Function::New(env, weightcache::TransportCloseListener, "transportCloseListener"));
  exports.Set("transportConnect", Napi::Function::New(env, weightcache::TransportConnect, "transportConnect"));
  exports.Set("transportSend", Napi::Function::New(env, weightcache::TransportSend, "transportSend"));
  exports.Set("transportClose", Napi::Function::New(env, weightcache::TransportClose, "transportClose"));
  exports.Set("transportStats", Napi::Function::New(env, weightcache::TransportStatsJs, "transportStats"));
  return exports;
}

}  // namespace

NODE_API_MODULE(weightcache, Init)
