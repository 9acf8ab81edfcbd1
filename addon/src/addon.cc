// The addon's export table, and nothing else: each concept lives in its own
// header (crc32c.h, store/ for the DRAM chunk store, nvme/ and io/ for the
// NVMe tier's chunk files and reads, http/ and resp/ for the native HTTP and RESP doors, and the
// transport's frame/connection/buffer-pool headers).
#include <napi.h>

#include <string>

#include "crc32c.h"
#include "fill/fill_js.h"
#include "fuse_js.h"
#include "http/door_js.h"
#include "http/fastpath_js.h"
#include "http/parser_js.h"
#include "nvme/nvme_js.h"
#include "resp/door_js.h"
#include "store/store_js.h"
#include "transport/transport_js.h"

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

bool ParseImpl(const std::string& name, weightcache::Crc32cImpl* out) {
  for (int i = 0; i < weightcache::kCrc32cImplCount; i++) {
    auto impl = static_cast<weightcache::Crc32cImpl>(i);
    if (name == weightcache::Crc32cName(impl)) {
      *out = impl;
      return true;
    }
  }
  return false;
}

// crc32cWith(implementation, data, seed?): one implementation by name, so tests
// can check they all agree and the microbenchmark can time each.
Napi::Value Crc32cWithJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32cWith(implementation, data, seed?): data must be a Uint8Array");
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  weightcache::Crc32cImpl impl;
  if (!ParseImpl(name, &impl)) throw Napi::RangeError::New(env, "crc32cWith: unknown implementation " + name);
  if (!weightcache::Crc32cAvailable(impl))
    throw Napi::RangeError::New(env, "crc32cWith: " + name + " is not available on this CPU");
  auto arr = info[1].As<Napi::Uint8Array>();
  uint32_t seed = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(env, weightcache::Crc32cWith(impl, seed, arr.Data(), arr.ByteLength()));
}

// crc32cCombine(crcA, crcB, lengthB): the CRC32C of A followed by B.
Napi::Value Crc32cCombineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "crc32cCombine(crcA, crcB, lengthB): numbers");
  }
  double len = info[2].As<Napi::Number>().DoubleValue();
  if (!(len >= 0 && len <= 9007199254740991.0)) throw Napi::RangeError::New(env, "crc32cCombine: bad lengthB");
  return Napi::Number::New(env, weightcache::Crc32cCombine(info[0].As<Napi::Number>().Uint32Value(),
                                                           info[1].As<Napi::Number>().Uint32Value(),
                                                           static_cast<uint64_t>(len)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  exports.Set("crc32cWith", Napi::Function::New(env, Crc32cWithJs, "crc32cWith"));
  exports.Set("crc32cCombine", Napi::Function::New(env, Crc32cCombineJs, "crc32cCombine"));
  exports.Set("crc32cImplementation", Napi::String::New(env, weightcache::Crc32cImplementation()));
  Napi::Array impls = Napi::Array::New(env);
  for (int i = 0; i < weightcache::kCrc32cImplCount; i++) {
    auto impl = static_cast<weightcache::Crc32cImpl>(i);
    if (weightcache::Crc32cAvailable(impl)) impls.Set(impls.Length(), weightcache::Crc32cName(impl));
  }
  exports.Set("crc32cImplementations", impls);
  // The NVMe tier's chunk files, verified reads and directory lock (nvme/nvme_js.h).
  weightcache::RegisterNvme(env, exports);
  weightcache::RegisterFill(env, exports);
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
  exports.Set("transportServeNative",
              Napi::Function::New(env, weightcache::TransportServeNative, "transportServeNative"));
  exports.Set("transportReceiveInto",
              Napi::Function::New(env, weightcache::TransportReceiveInto, "transportReceiveInto"));
  exports.Set("transportStats", Napi::Function::New(env, weightcache::TransportStatsJs, "transportStats"));
  // The DRAM chunk store (addon/src/store/); typed in src/store/native.ts.
  weightcache::store::InitStoreJs(env, exports);
  weightcache::http::InitFastPathJs(env, exports);
  // The native HTTP door's request parser, for tests (test/http/native-parser.test.ts).
  exports.Set("httpReplay", Napi::Function::New(env, weightcache::http::HttpReplayJs, "httpReplay"));
  exports.Set("httpParserErrors", Napi::Function::New(env, weightcache::http::HttpParserErrorsJs, "httpParserErrors"));
  // The native HTTP door's I/O threads (src/http/native-door.ts); not wired into the node yet.
  exports.Set("httpDoorStart", Napi::Function::New(env, weightcache::http::HttpDoorStartJs, "httpDoorStart"));
  exports.Set("httpDoorRespond", Napi::Function::New(env, weightcache::http::HttpDoorRespondJs, "httpDoorRespond"));
  exports.Set("httpDoorSend", Napi::Function::New(env, weightcache::http::HttpDoorSendJs, "httpDoorSend"));
  exports.Set("httpDoorFillDone", Napi::Function::New(env, weightcache::http::HttpDoorFillDoneJs, "httpDoorFillDone"));
  exports.Set("httpDoorClose", Napi::Function::New(env, weightcache::http::HttpDoorCloseJs, "httpDoorClose"));
  exports.Set("httpDoorAuthenticate",
              Napi::Function::New(env, weightcache::http::HttpDoorAuthenticateJs, "httpDoorAuthenticate"));
  exports.Set("httpDoorStats", Napi::Function::New(env, weightcache::http::HttpDoorStatsJs, "httpDoorStats"));
  exports.Set("httpDoorStop", Napi::Function::New(env, weightcache::http::HttpDoorStopJs, "httpDoorStop"));
  // The native RESP door: its request parser (for tests) and its I/O threads (src/resp/native-door.ts).
  weightcache::resp::InitDoorJs(env, exports);
  // The read-only FUSE mount (docs/mount.md); typed in src/mount/binding.ts.
  weightcache::FuseExports(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(weightcache, Init)
