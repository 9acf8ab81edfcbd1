// The fast path's JavaScript side (typed in src/http/native-binding.ts):
// NativeBindings (version bindings, store/bindings.h) and NativeTokens
// (token digests and scopes, auth/token_table.h), and reading the door's
// `fast` option into a FastPath.
#pragma once
#include <napi.h>

#include <memory>

#include "http/fastpath.h"

namespace weightcache::http {

void InitFastPathJs(Napi::Env env, Napi::Object exports);
// `fast`: { store: NativeStore, bindings: NativeBindings, tokens: NativeTokens, maxRanges, keepAliveTimeoutMs }.
std::shared_ptr<FastPath> FastPathOfJs(Napi::Object fast);
// The table of a NativeBindings object (the one both doors' fast paths read), or null if `v` is not one.
std::shared_ptr<store::BindingTable> BindingsOfJs(Napi::Value v);

}  // namespace weightcache::http
