// The JS face of the transport: argument checking and conversion only. The
// I/O thread (io_loop.h) does the work; this file turns its events into JS
// calls on the main thread and JS calls into its commands.
#pragma once
#include <napi.h>

namespace weightcache {

Napi::Value TransportInit(const Napi::CallbackInfo& info);
Napi::Value TransportRef(const Napi::CallbackInfo& info);
Napi::Value TransportUnref(const Napi::CallbackInfo& info);
Napi::Value TransportListen(const Napi::CallbackInfo& info);
Napi::Value TransportCloseListener(const Napi::CallbackInfo& info);
Napi::Value TransportServeNative(const Napi::CallbackInfo& info);
Napi::Value TransportReceiveInto(const Napi::CallbackInfo& info);
Napi::Value TransportConnect(const Napi::CallbackInfo& info);
Napi::Value TransportSend(const Napi::CallbackInfo& info);
Napi::Value TransportClose(const Napi::CallbackInfo& info);
Napi::Value TransportStatsJs(const Napi::CallbackInfo& info);

}  // namespace weightcache
