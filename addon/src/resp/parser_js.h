// The RESP request parser for tests (test/resp/native-parser.test.ts):
// respReplay(chunks, options) parses a stream delivered as `chunks`.
#pragma once
#include <napi.h>

namespace weightcache::resp {

Napi::Value RespReplayJs(const Napi::CallbackInfo& info);

}  // namespace weightcache::resp
