// JavaScript's handle on the front doors' fast path (routes.h): the
// `NativeDoorRoutes` class (src/http/native-binding.ts) through which the Hub
// door publishes the revisions it resolves, and which the HTTP door's `fast`
// option takes as `doors`.
#pragma once
#include <napi.h>

#include <memory>

#include "http/doors/routes.h"

namespace weightcache::http::doors {

void InitDoorRoutesJs(Napi::Env env, Napi::Object exports);
// The routes of a NativeDoorRoutes object; null when `v` is not one.
std::shared_ptr<DoorRoutes> DoorRoutesOfJs(Napi::Value v);

}  // namespace weightcache::http::doors
