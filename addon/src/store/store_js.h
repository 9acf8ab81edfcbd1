// The JS face of the chunk store: argument checking and conversion only.
// A chunk reaches JS as an external Buffer over the arena's memory (no copy)
// holding one reference, dropped by the Buffer's finalizer when V8 collects
// it. Typed in src/store/native.ts.
#pragma once
#include <napi.h>

namespace weightcache::store {

// Adds the NativeStore class to `exports`.
void InitStoreJs(Napi::Env env, Napi::Object exports);

}  // namespace weightcache::store
