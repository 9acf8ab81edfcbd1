// JavaScript access to the request parser, for tests: the differential test
// against node:http and the split-invariance checks driven from vitest.
#pragma once
#include <napi.h>

namespace weightcache::http {

// httpReplay(bytes, limits?, cuts?, maxRequests?) -> ReplayedRequest[] (replay.h)
Napi::Value HttpReplayJs(const Napi::CallbackInfo& info);
// httpParserErrors() -> [{ name, status, description }] in table order (errors.h)
Napi::Value HttpParserErrorsJs(const Napi::CallbackInfo& info);

}  // namespace weightcache::http
