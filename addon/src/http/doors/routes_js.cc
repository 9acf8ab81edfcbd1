#include "http/doors/routes_js.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "store/bindings.h"

namespace weightcache::http::doors {
namespace {

constexpr napi_type_tag kRoutesTag = {0x7763'5f64'6f6f'7273ull, 0x51ed'270b'2731'6a5full};
// Longest string a published revision carries (paths and names are bounded far below this by validateKey).
constexpr size_t kMaxString = 4096;
// Most files one published revision lists (listing.maxFiles is bounded below this by the schema).
constexpr uint32_t kMaxRevisionFiles = 1'000'000;

std::string Str(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string("NativeDoorRoutes: ") + what + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() > kMaxString) throw Napi::RangeError::New(env, std::string("NativeDoorRoutes: ") + what + " is too long");
  return s;
}

double Num(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("NativeDoorRoutes: ") + what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0) throw Napi::RangeError::New(env, std::string("NativeDoorRoutes: ") + what + " must be ≥ 0");
  return d;
}

// Header bytes the JavaScript door would send as they are: printable ASCII, no quote.
bool HeaderSafe(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u <= 0x7e && c != '"';
  });
}

class RoutesJs : public Napi::ObjectWrap<RoutesJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeDoorRoutes",
                       {InstanceMethod<&RoutesJs::PublishHub>("publishHubRevision"),
                        InstanceMethod<&RoutesJs::RemoveHub>("removeHubRevision"),
                        InstanceMethod<&RoutesJs::Stats>("stats")});
  }
  // new NativeDoorRoutes({hub: {path, container, maxFiles} | null, s3: {path, baseDomain, buckets, maxClockSkewMs} | null,
  //                      azure: {path, account, maxClockSkewMs} | null})
  explicit RoutesJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RoutesJs>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "new NativeDoorRoutes({hub})");
    routes_ = std::make_shared<DoorRoutes>();
    Napi::Value hub = info[0].As<Napi::Object>().Get("hub");
    if (hub.IsObject()) {
      auto o = hub.As<Napi::Object>();
      std::string path = Str(env, o.Get("path"), "hub.path");
      if (path.size() < 2 || path.front() != '/' || path.back() == '/') {
        throw Napi::TypeError::New(env, "NativeDoorRoutes: hub.path must be like /hf");
      }
      routes_->hub = std::make_unique<HubRoute>(path, Str(env, o.Get("container"), "hub.container"),
                                                static_cast<size_t>(Num(env, o.Get("maxFiles"), "hub.maxFiles")));
    } else if (!hub.IsNull() && !hub.IsUndefined()) {
      throw Napi::TypeError::New(env, "NativeDoorRoutes: hub must be an object or null");
    }
    Napi::Value s3 = info[0].As<Napi::Object>().Get("s3");
    if (s3.IsObject()) {
      auto o = s3.As<Napi::Object>();
      auto r = std::make_unique<S3Route>();
      r->path = Str(env, o.Get("path"), "s3.path");
      if (r->path.size() < 2 || r->path.front() != '/' || r->path.back() == '/') {
        throw Napi::TypeError::New(env, "NativeDoorRoutes: s3.path must be like /s3");
      }
      Napi::Value bd = o.Get("baseDomain"), buckets = o.Get("buckets");
      if (!bd.IsNull() && !bd.IsUndefined()) {
        r->base_domain = Str(env, bd, "s3.baseDomain");
        for (char& c : r->base_domain) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      }
      if (buckets.IsArray()) {
        auto list = buckets.As<Napi::Array>();
        if (list.Length() > 10'000) throw Napi::RangeError::New(env, "NativeDoorRoutes: more than 10000 buckets");
        r->any_bucket = false;
        for (uint32_t i = 0; i < list.Length(); i++) r->buckets.push_back(Str(env, list.Get(i), "a bucket"));
      } else if (!buckets.IsNull() && !buckets.IsUndefined()) {
        throw Napi::TypeError::New(env, "NativeDoorRoutes: s3.buckets must be a list or null (any)");
      }
      Napi::Value skew = o.Get("maxClockSkewMs");
      if (!skew.IsUndefined()) r->max_clock_skew_ms = static_cast<int64_t>(Num(env, skew, "s3.maxClockSkewMs"));
      routes_->s3 = std::move(r);
    } else if (!s3.IsNull() && !s3.IsUndefined()) {
      throw Napi::TypeError::New(env, "NativeDoorRoutes: s3 must be an object or null");
    }
    Napi::Value azure = info[0].As<Napi::Object>().Get("azure");
    if (azure.IsObject()) {
      auto o = azure.As<Napi::Object>();
      auto r = std::make_unique<AzureRoute>();
      r->path = Str(env, o.Get("path"), "azure.path");
      if (r->path.size() < 2 || r->path.front() != '/' || r->path.back() == '/') {
        throw Napi::TypeError::New(env, "NativeDoorRoutes: azure.path must be like /azure");
      }
      Napi::Value account = o.Get("account");
      if (!account.IsNull() && !account.IsUndefined()) {
        r->account = Str(env, account, "azure.account");
        if (r->account.empty()) throw Napi::TypeError::New(env, "NativeDoorRoutes: azure.account must be a name or null (any)");
      }
      Napi::Value skew = o.Get("maxClockSkewMs");
      if (!skew.IsUndefined()) r->max_clock_skew_ms = static_cast<int64_t>(Num(env, skew, "azure.maxClockSkewMs"));
      routes_->azure = std::move(r);
    } else if (!azure.IsNull() && !azure.IsUndefined()) {
      throw Napi::TypeError::New(env, "NativeDoorRoutes: azure must be an object or null");
    }
    info.This().As<Napi::Object>().TypeTag(&kRoutesTag);
  }
  const std::shared_ptr<DoorRoutes>& routes() const { return routes_; }

 private:
  // publishHubRevision({sha, prefix, files: [{path, etag, size, blobId, contentType}], validForMs}) -> installed
  Napi::Value PublishHub(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!routes_->hub) return Napi::Boolean::New(env, false);
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "NativeDoorRoutes.publishHubRevision(revision)");
    auto o = info[0].As<Napi::Object>();
    auto r = std::make_shared<HubRevision>();
    r->sha = Str(env, o.Get("sha"), "sha");
    r->prefix = Str(env, o.Get("prefix"), "prefix");
    Napi::Value files = o.Get("files");
    if (!files.IsArray()) throw Napi::TypeError::New(env, "NativeDoorRoutes: files must be an array");
    auto list = files.As<Napi::Array>();
    if (list.Length() > kMaxRevisionFiles) return Napi::Boolean::New(env, false);
    if (!IsSha(r->sha) || r->prefix.empty() || r->prefix.back() != '/') {
      throw Napi::TypeError::New(env, "NativeDoorRoutes: a revision needs a 40-hex sha and a prefix ending in /");
    }
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value fv = list.Get(i);
      if (!fv.IsObject()) throw Napi::TypeError::New(env, "NativeDoorRoutes: each file must be an object");
      auto fo = fv.As<Napi::Object>();
      HubFile f;
      std::string path = Str(env, fo.Get("path"), "file path");
      f.etag = Str(env, fo.Get("etag"), "etag");
      f.size = static_cast<uint64_t>(Num(env, fo.Get("size"), "size"));
      f.blob_id = Str(env, fo.Get("blobId"), "blobId");
      f.content_type = Str(env, fo.Get("contentType"), "contentType");
      // A file whose headers the fast path could not send as JavaScript does is left out: JavaScript answers it.
      if (!HeaderSafe(f.etag) || !HeaderSafe(f.blob_id) || !HeaderSafe(f.content_type)) continue;
      r->files.emplace(std::move(path), std::move(f));
    }
    double valid_ms = Num(env, o.Get("validForMs"), "validForMs");
    if (valid_ms <= 0) return Napi::Boolean::New(env, false);
    r->deadline_ns = store::MonotonicNs() + static_cast<int64_t>(std::min(valid_ms, 86'400'000.0) * 1e6);
    return Napi::Boolean::New(env, routes_->hub->revisions.Publish(std::move(r)));
  }
  Napi::Value RemoveHub(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "NativeDoorRoutes.removeHubRevision(sha)");
    if (!routes_->hub) return Napi::Boolean::New(info.Env(), false);
    return Napi::Boolean::New(info.Env(), routes_->hub->revisions.Remove(info[0].As<Napi::String>().Utf8Value()));
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("hubHits", static_cast<double>(routes_->stats.hub_hits.load()));
    o.Set("hubBodyHits", static_cast<double>(routes_->stats.hub_body_hits.load()));
    o.Set("s3Hits", static_cast<double>(routes_->stats.s3_hits.load()));
    o.Set("s3BodyHits", static_cast<double>(routes_->stats.s3_body_hits.load()));
    o.Set("s3SignedHits", static_cast<double>(routes_->stats.s3_signed_hits.load()));
    o.Set("s3SignedDeclined", static_cast<double>(routes_->stats.s3_signed_declined.load()));
    o.Set("hubNvmeBodyHits", static_cast<double>(routes_->stats.hub_nvme_body_hits.load()));
    o.Set("s3NvmeBodyHits", static_cast<double>(routes_->stats.s3_nvme_body_hits.load()));
    o.Set("azureHits", static_cast<double>(routes_->stats.azure_hits.load()));
    o.Set("azureBodyHits", static_cast<double>(routes_->stats.azure_body_hits.load()));
    o.Set("azureNvmeBodyHits", static_cast<double>(routes_->stats.azure_nvme_body_hits.load()));
    o.Set("azureSignedHits", static_cast<double>(routes_->stats.azure_signed_hits.load()));
    o.Set("azureSignedDeclined", static_cast<double>(routes_->stats.azure_signed_declined.load()));
    o.Set("hubRevisions", static_cast<double>(routes_->hub ? routes_->hub->revisions.size() : 0));
    return o;
  }

  std::shared_ptr<DoorRoutes> routes_;
};

}  // namespace

void InitDoorRoutesJs(Napi::Env env, Napi::Object exports) { exports.Set("NativeDoorRoutes", RoutesJs::Define(env)); }

std::shared_ptr<DoorRoutes> DoorRoutesOfJs(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kRoutesTag)) return nullptr;
  return RoutesJs::Unwrap(v.As<Napi::Object>())->routes();
}

}  // namespace weightcache::http::doors
