// The JS face of the chunk store: argument checking and conversion only.
// A chunk reaches JS as an external Buffer over the arena's memory (no copy)
// holding one reference, dropped by the Buffer's finalizer when V8 collects
// it. Typed in src/store/native.ts.
#pragma once
#include <napi.h>

#include <memory>

namespace weightcache::store {

class Store;

// Adds the NativeStore class to `exports`.
void InitStoreJs(Napi::Env env, Napi::Object exports);

// The store behind a NativeStore object (checked by its type tag); null for anything else.
std::shared_ptr<Store> StoreOf(Napi::Env env, Napi::Value v);

}  // namespace weightcache::store
