// The JS face of the chunk store: argument checking and conversion only.
// A chunk reaches JS as an external Buffer over the arena's memory (no copy)
// holding one reference, dropped by the Buffer's finalizer when V8 collects
// it. Typed in src/store/native.ts.
#pragma once
#include <napi.h>

#include <memory>

#include "store/store.h"

namespace weightcache::store {

// Adds the NativeStore class to `exports`.
void InitStoreJs(Napi::Env env, Napi::Object exports);
// The store behind a NativeStore object; null when `v` is not one.
std::shared_ptr<Store> StoreOfJs(Napi::Value v);

}  // namespace weightcache::store
