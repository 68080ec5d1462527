#include "k8s/client.h"

#include <curl/curl.h>

#include "common/log.h"

namespace terway::k8s {

namespace resources {
const ResourceRef kPods{"v1", "pods", "Pod", true};
const ResourceRef kNamespaces{"v1", "namespaces", "Namespace", false};
const ResourceRef kNodes{"v1", "nodes", "Node", false};
const ResourceRef kConfigMaps{"v1", "configmaps", "ConfigMap", true};
const ResourceRef kEvents{"v1", "events", "Event", true};
const ResourceRef kNetworkPolicies{"networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", true};
const ResourceRef kCalicoNetworkPolicies{"projectcalico.org/v3", "networkpolicies", "NetworkPolicy", true};
const ResourceRef kCalicoGlobalNetworkPolicies{"projectcalico.org/v3", "globalnetworkpolicies",
                                               "GlobalNetworkPolicy", false};
const ResourceRef kCalicoCrdNetworkPolicies{"crd.projectcalico.org/v1", "networkpolicies", "NetworkPolicy", true};
const ResourceRef kCalicoCrdGlobalNetworkPolicies{"crd.projectcalico.org/v1", "globalnetworkpolicies",
                                                  "GlobalNetworkPolicy", false};
const ResourceRef kCalicoTiers{"projectcalico.org/v3", "tiers", "Tier", false};
const ResourceRef kCalicoNetworkSets{"projectcalico.org/v3", "networksets", "NetworkSet", true};
const ResourceRef kCalicoGlobalNetworkSets{"projectcalico.org/v3", "globalnetworksets", "GlobalNetworkSet", false};
const ResourceRef kCalicoCrdTiers{"crd.projectcalico.org/v1", "tiers", "Tier", false};
const ResourceRef kCalicoCrdNetworkSets{"crd.projectcalico.org/v1", "networksets", "NetworkSet", true};
const ResourceRef kCalicoCrdGlobalNetworkSets{"crd.projectcalico.org/v1", "globalnetworksets", "GlobalNetworkSet",
                                              false};
const ResourceRef kServiceAccounts{"v1", "serviceaccounts", "ServiceAccount", true};
const ResourceRef kEndpointSlices{"discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true};
}  // namespace resources

namespace {

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string Query(const ListOptions& o, bool watch) {
  std::vector<std::string> q;
  if (watch) q.push_back("watch=true");
  if (!o.label_selector.empty()) q.push_back("labelSelector=" + UrlEncode(o.label_selector));
  if (!o.field_selector.empty()) q.push_back("fieldSelector=" + UrlEncode(o.field_selector));
  if (!o.resource_version.empty()) q.push_back("resourceVersion=" + UrlEncode(o.resource_version));
  if (o.timeout_seconds > 0) q.push_back("timeoutSeconds=" + std::to_string(o.timeout_seconds));
  if (o.allow_watch_bookmarks) q.push_back("allowWatchBookmarks=true");
  if (o.limit > 0) q.push_back("limit=" + std::to_string(o.limit));
  std::string s;
  for (size_t i = 0; i < q.size(); i++) s += (i ? "&" : "?") + q[i];
  return s;
}

// Maps an HTTP error status and its Status body to our Error.
Error ErrorFromResponse(const HttpResponse& resp) {
  std::string reason, message;
  Json j = Json::parse(resp.body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("reason") && j["reason"].is_string()) reason = j["reason"];
    if (j.contains("message") && j["message"].is_string()) message = j["message"];
  }
  if (message.empty()) message = resp.body.substr(0, 200);
  ErrorCode code = ErrorCode::kInternal;
  bool retryable = false;
  switch (resp.status) {
    case 400: case 422: code = ErrorCode::kInvalidArgument; break;
    case 401: case 403: code = ErrorCode::kPermission; break;
    case 404: code = ErrorCode::kNotFound; break;
    case 409: code = reason == "AlreadyExists" ? ErrorCode::kAlreadyExists : ErrorCode::kConflict;
      retryable = code == ErrorCode::kConflict; break;
    case 410: code = ErrorCode::kConflict; break;  // Gone: see IsGone
    case 429: case 500: case 502: case 503: case 504:
      code = ErrorCode::kUnavailable; retryable = true; break;
    default: break;
  }
  Error e = Errorf(code, "{} {}: {}", resp.status, reason.empty() ? "error" : reason, message);
  e.http_status = resp.status;
  e.retryable = retryable;
  return e;
}

}  // namespace

bool IsGone(const Error& e) { return e.http_status == 410; }

std::string ResourcePath(const ResourceRef& r, const std::string& ns, const std::string& name,
                         const std::string& subresource) {
  std::string p = r.group_version.find('/') == std::string::npos ? "/api/" + r.group_version
                                                                  : "/apis/" + r.group_version;
  if (r.namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + r.plural;
  if (!name.empty()) p += "/" + name;
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

RestClient::RestClient(std::shared_ptr<Transport> transport, std::shared_ptr<RateLimiter> limiter)
    : transport_(std::move(transport)), limiter_(std::move(limiter)) {}

std::unique_ptr<RestClient> RestClient::FromConfig(const RestConfig& cfg) {
  return std::make_unique<RestClient>(NewCurlTransport(cfg),
                                      std::make_shared<TokenBucket>(cfg.qps, cfg.burst));
}

Result<Json> RestClient::Call(HttpRequest req) {
  if (limiter_) limiter_->Wait();
  const std::string what = req.method + " " + req.path;
  TERWAY_ASSIGN_OR_RETURN(HttpResponse resp, transport_->Do(req));
  if (resp.status < 200 || resp.status >= 300) return ErrorFromResponse(resp).Wrap(what);
  if (resp.body.empty()) return Json::object();
  Json j = Json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) {
    return MakeError(ErrorCode::kInvalidArgument, "response is not valid JSON").Wrap(what);
  }
  return j;
}

Result<Json> RestClient::Get(const ResourceRef& r, const std::string& ns, const std::string& name) {
  return Call({"GET", ResourcePath(r, ns, name), {}, "", std::chrono::seconds(30)});
}

Result<Json> RestClient::GetPath(const std::string& path) {
  return Call({"GET", path, {}, "", std::chrono::seconds(30)});
}

Result<Json> RestClient::List(const ResourceRef& r, const std::string& ns, const ListOptions& opts) {
  return Call({"GET", ResourcePath(r, ns) + Query(opts, false), {}, "", std::chrono::seconds(60)});
}

Result<Json> RestClient::Create(const ResourceRef& r, const std::string& ns, const Json& obj) {
  return Call({"POST", ResourcePath(r, ns), {{"Content-Type", "application/json"}}, obj.dump(),
               std::chrono::seconds(30)});
}

Result<Json> RestClient::Update(const ResourceRef& r, const std::string& ns, const Json& obj,
                                const std::string& subresource) {
  std::string name;
  if (obj.contains("metadata") && obj["metadata"].contains("name") && obj["metadata"]["name"].is_string()) {
    name = obj["metadata"]["name"];
  }
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "update: object has no metadata.name");
  return Call({"PUT", ResourcePath(r, ns, name, subresource), {{"Content-Type", "application/json"}},
               obj.dump(), std::chrono::seconds(30)});
}

Result<Json> RestClient::Patch(const ResourceRef& r, const std::string& ns, const std::string& name,
                               PatchType type, const Json& patch, const std::string& subresource) {
  const char* ct = type == PatchType::kMerge            ? "application/merge-patch+json"
                   : type == PatchType::kStrategicMerge ? "application/strategic-merge-patch+json"
                                                        : "application/json-patch+json";
  return Call({"PATCH", ResourcePath(r, ns, name, subresource), {{"Content-Type", ct}}, patch.dump(),
               std::chrono::seconds(30)});
}

Status RestClient::Delete(const ResourceRef& r, const std::string& ns, const std::string& name) {
  auto res = Call({"DELETE", ResourcePath(r, ns, name), {}, "", std::chrono::seconds(30)});
  if (!res.ok()) return std::move(res).error();
  return Ok();
}

Status RestClient::Watch(const ResourceRef& r, const std::string& ns, const ListOptions& opts,
                         const std::function<bool(WatchEvent)>& on_event,
                         const std::atomic<bool>* cancel) {
  if (limiter_) limiter_->Wait();
  // The server ends the watch after timeoutSeconds; the client gives it a
  // grace period on top before treating the stream as dead.
  auto limit = opts.timeout_seconds > 0 ? std::chrono::seconds(opts.timeout_seconds + 60) : std::chrono::seconds(0);
  HttpRequest req{"GET", ResourcePath(r, ns) + Query(opts, true), {}, "", limit};
  const std::string what = "watch " + req.path;
  WatchStreamSplitter splitter(on_event, [&](const Error& e) {
    log::Warn("k8s_watch_bad_event path={} err={}", req.path, e.ToString());
  });
  auto resp = transport_->Stream(
      req, [&](std::string_view data) { return splitter.Feed(data); }, cancel);
  if (!resp.ok()) {
    if (cancel && cancel->load()) return Ok();
    return std::move(resp).error().Wrap(what);
  }
  if (resp->status < 200 || resp->status >= 300) return ErrorFromResponse(*resp).Wrap(what);
  return Ok();
}

}  // namespace terway::k8s
