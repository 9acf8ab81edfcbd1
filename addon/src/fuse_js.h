// JavaScript bindings of the FUSE mount (addon/src/fuse/); typed in
// src/mount/binding.ts and used through src/mount/mount.ts.
#pragma once

#include <napi.h>

namespace weightcache {

void FuseExports(Napi::Env env, Napi::Object exports);

}  // namespace weightcache
