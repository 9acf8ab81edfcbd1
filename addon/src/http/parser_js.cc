#include "http/parser_js.h"

#include <string>
#include <vector>

#include "http/replay.h"

namespace weightcache::http {

namespace {

// Header bytes are octets (obs-text included): latin1, as node:http's rawHeaders gives them.
Napi::Value Latin1(Napi::Env env, const std::string& s) {
  napi_value v;
  napi_status st = napi_create_string_latin1(env, s.data(), s.size(), &v);
  if (st != napi_ok) throw Napi::Error::New(env, "httpReplay: creating a string failed");
  return Napi::Value(env, v);
}

uint64_t LimitArg(Napi::Object o, const char* key, uint64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0) {
    throw Napi::TypeError::New(o.Env(), std::string("httpReplay: limits.") + key + " must be a number ≥ 0");
  }
  return static_cast<uint64_t>(v.As<Napi::Number>().DoubleValue());
}

const char* FormName(TargetForm f) {
  switch (f) {
    case TargetForm::kOrigin: return "origin";
    case TargetForm::kAbsolute: return "absolute";
    case TargetForm::kAsterisk: return "asterisk";
  }
  return "?";
}

const char* FramingName(Framing f) {
  switch (f) {
    case Framing::kNone: return "none";
    case Framing::kContentLength: return "content-length";
    case Framing::kChunked: return "chunked";
  }
  return "?";
}

}  // namespace

Napi::Value HttpReplayJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "httpReplay(bytes, limits?, cuts?, maxRequests?): bytes must be a Uint8Array");
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  ParserLimits limits;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    limits.max_request_line_bytes = static_cast<uint32_t>(LimitArg(o, "maxRequestLineBytes", limits.max_request_line_bytes));
    limits.max_header_count = static_cast<uint32_t>(LimitArg(o, "maxHeaderCount", limits.max_header_count));
    limits.max_header_bytes = static_cast<uint32_t>(LimitArg(o, "maxHeaderBytes", limits.max_header_bytes));
    limits.max_body_bytes = LimitArg(o, "maxBodyBytes", limits.max_body_bytes);
  }
  std::vector<size_t> cuts;
  if (info.Length() > 2 && info[2].IsArray()) {
    auto arr = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "httpReplay: cuts must be numbers");
      cuts.push_back(static_cast<size_t>(v.As<Napi::Number>().Int64Value()));
    }
  }
  size_t max_requests = SIZE_MAX;
  if (info.Length() > 3 && info[3].IsNumber()) max_requests = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());

  std::string_view stream(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  std::vector<ReplayedRequest> rs = Replay(stream, limits, cuts, max_requests);
  Napi::Array out = Napi::Array::New(env, rs.size());
  for (uint32_t i = 0; i < rs.size(); i++) {
    const ReplayedRequest& r = rs[i];
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    o.Set("complete", Napi::Boolean::New(env, r.complete));
    o.Set("error", r.error == Error::kNone ? env.Null() : Napi::String::New(env, NameOf(r.error)));
    num("status", StatusOf(r.error));
    num("errorOffset", static_cast<double>(r.error_offset));
    num("start", static_cast<double>(r.start));
    num("headBytes", static_cast<double>(r.head_bytes));
    num("end", static_cast<double>(r.end));
    o.Set("method", Latin1(env, r.method));
    o.Set("target", Latin1(env, r.target));
    o.Set("form", FormName(r.form));
    o.Set("scheme", Latin1(env, r.scheme));
    o.Set("authority", Latin1(env, r.authority));
    o.Set("host", Latin1(env, r.host));
    o.Set("hasHost", Napi::Boolean::New(env, r.has_host));
    o.Set("path", Latin1(env, r.path));
    o.Set("query", Latin1(env, r.query));
    o.Set("hasQuery", Napi::Boolean::New(env, r.has_query));
    num("versionMinor", r.version_minor);
    o.Set("keepAlive", Napi::Boolean::New(env, r.keep_alive));
    o.Set("expectContinue", Napi::Boolean::New(env, r.expect_continue));
    o.Set("framing", FramingName(r.framing));
    num("contentLength", static_cast<double>(r.content_length));
    Napi::Array headers = Napi::Array::New(env, r.headers.size());
    for (uint32_t h = 0; h < r.headers.size(); h++) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Latin1(env, r.headers[h].first));
      pair.Set(1u, Latin1(env, r.headers[h].second));
      headers.Set(h, pair);
    }
    o.Set("headers", headers);
    o.Set("body", Napi::Buffer<char>::Copy(env, r.body.data(), r.body.size()));
    out.Set(i, o);
  }
  return out;
}

Napi::Value HttpParserErrorsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (int i = 1; i < ErrorCount(); i++) {
    auto e = static_cast<Error>(i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", NameOf(e));
    o.Set("status", Napi::Number::New(env, StatusOf(e)));
    o.Set("description", DescribeError(e));
    out.Set(static_cast<uint32_t>(i - 1), o);
  }
  return out;
}

}  // namespace weightcache::http
