// The native RESP door's JavaScript binding (typed in src/resp/native-binding.ts,
// used through src/resp/native-door.ts).
#pragma once
#include <napi.h>

namespace weightcache::resp {

void InitDoorJs(Napi::Env env, Napi::Object exports);

}  // namespace weightcache::resp
