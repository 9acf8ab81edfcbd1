// JavaScript access to the native HTTP door (door.h): start, answer by id,
// stats, stop. Typed in src/http/native-binding.ts; used through
// src/http/native-door.ts.
#pragma once
#include <napi.h>

namespace weightcache::http {

// httpDoorStart(options, onEvents) -> { id, port }
Napi::Value HttpDoorStartJs(const Napi::CallbackInfo& info);
// httpDoorRespond(door, requestId, status, headers (flat name, value list), body (Uint8Array[]), options?)
Napi::Value HttpDoorRespondJs(const Napi::CallbackInfo& info);
// httpDoorSend(door, requestId, pieces (Uint8Array[]), flags): a piece of an answer JavaScript
//   frames itself (flags: 1 end, 2 close after it, 4 post a 'drain' event when the queue is low)
Napi::Value HttpDoorSendJs(const Napi::CallbackInfo& info);
// httpDoorFillDone(door, requestId, ok): JavaScript's fill of a parked miss (a 'fill' event) is
// done (ok) or failed; the request's thread plans it again, or hands it whole to JavaScript.
Napi::Value HttpDoorFillDoneJs(const Napi::CallbackInfo& info);
// httpDoorClose(door, conn): closes a connection (its unanswered requests get 'aborted')
Napi::Value HttpDoorCloseJs(const Napi::CallbackInfo& info);
Napi::Value HttpDoorAuthenticateJs(const Napi::CallbackInfo& info);
// httpDoorStats(door) -> counters
Napi::Value HttpDoorStatsJs(const Napi::CallbackInfo& info);
// httpDoorStop(door): closes the listeners and every connection, joins the threads
Napi::Value HttpDoorStopJs(const Napi::CallbackInfo& info);

}  // namespace weightcache::http
