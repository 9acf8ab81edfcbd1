#include "resp/parser_js.h"

#include <string>
#include <vector>

#include "resp/replay.h"

namespace weightcache::resp {

namespace {

uint64_t LimitArg(Napi::Object o, const char* key, uint64_t dflt, uint64_t min, uint64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max))) {
    throw Napi::RangeError::New(o.Env(), std::string("respReplay: ") + key + " must be a number in " +
                                             std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<uint64_t>(d);
}

}  // namespace

// respReplay(chunks: Uint8Array[], {maxArgs, maxBulkBytes, maxQueryBufferBytes, authenticated})
//   → {commands: Buffer[][], error: {reason, message} | null, buffered}
Napi::Value RespReplayJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    throw Napi::TypeError::New(env, "respReplay(chunks, options?): chunks must be an array of Uint8Arrays");
  }
  auto chunks = info[0].As<Napi::Array>();
  std::string stream;
  std::vector<size_t> cuts;
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    Napi::Value c = chunks.Get(i);
    if (!c.IsTypedArray()) throw Napi::TypeError::New(env, "respReplay: every chunk must be a Uint8Array");
    auto a = c.As<Napi::Uint8Array>();
    stream.append(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
    cuts.push_back(stream.size());
  }
  ParserLimits limits;
  bool authenticated = true;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    limits.max_args = static_cast<uint32_t>(LimitArg(o, "maxArgs", limits.max_args, 1, 1u << 24));
    limits.max_bulk_bytes = LimitArg(o, "maxBulkBytes", limits.max_bulk_bytes, 0, 1ull << 40);
    limits.max_query_buffer_bytes = LimitArg(o, "maxQueryBufferBytes", limits.max_query_buffer_bytes, 0, 1ull << 40);
    Napi::Value a = o.Get("authenticated");
    if (!a.IsUndefined()) authenticated = a.ToBoolean().Value();
  }
  Replayed r = Replay(stream, limits, authenticated, cuts);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array cmds = Napi::Array::New(env, r.commands.size());
  for (uint32_t i = 0; i < r.commands.size(); i++) {
    const auto& cmd = r.commands[i];
    Napi::Array args = Napi::Array::New(env, cmd.size());
    for (uint32_t j = 0; j < cmd.size(); j++) args.Set(j, Napi::Buffer<char>::Copy(env, cmd[j].data(), cmd[j].size()));
    cmds.Set(i, args);
  }
  out.Set("commands", cmds);
  if (r.failed) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("reason", r.error.reason);
    e.Set("message", r.error.message);
    out.Set("error", e);
  } else {
    out.Set("error", env.Null());
  }
  out.Set("buffered", Napi::Number::New(env, static_cast<double>(r.buffered)));
  return out;
}

}  // namespace weightcache::resp
