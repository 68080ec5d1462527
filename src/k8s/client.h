// The Kubernetes REST client: CRUD, patch and watch on any resource named by
// a ResourceRef, with errors mapped from the API's Status objects and every
// request passing the client-side rate limiter.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "k8s/rate_limiter.h"
#include "k8s/transport.h"
#include "k8s/types.h"
#include "k8s/watch.h"

namespace terway::k8s {

// Which collection a request addresses.
struct ResourceRef {
  std::string group_version;  // "v1" (core) or "networking.k8s.io/v1"
  std::string plural;         // "pods"
  std::string kind;           // "Pod"
  bool namespaced = true;
};

namespace resources {
extern const ResourceRef kPods;
extern const ResourceRef kNamespaces;
extern const ResourceRef kNodes;
extern const ResourceRef kConfigMaps;
extern const ResourceRef kEvents;
extern const ResourceRef kNetworkPolicies;
// Calico's policies as its API server serves them (calicoctl's and
// kubectl's view when the Calico API server is installed) ...
extern const ResourceRef kCalicoNetworkPolicies;
extern const ResourceRef kCalicoGlobalNetworkPolicies;
// ... and as Calico stores them without it (Kubernetes datastore CRDs).
extern const ResourceRef kCalicoCrdNetworkPolicies;
extern const ResourceRef kCalicoCrdGlobalNetworkPolicies;
// Calico's other objects policy reads: tiers and labelled address sets ...
extern const ResourceRef kCalicoTiers;
extern const ResourceRef kCalicoNetworkSets;
extern const ResourceRef kCalicoGlobalNetworkSets;
extern const ResourceRef kCalicoCrdTiers;
extern const ResourceRef kCalicoCrdNetworkSets;
extern const ResourceRef kCalicoCrdGlobalNetworkSets;
// ... and the Kubernetes objects its rules match (serviceAccounts, services).
extern const ResourceRef kServiceAccounts;
extern const ResourceRef kEndpointSlices;
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int timeout_seconds = 0;
  bool allow_watch_bookmarks = false;
  int64_t limit = 0;
};

enum class PatchType {
  kMerge,           // application/merge-patch+json (RFC 7386)
  kStrategicMerge,  // application/strategic-merge-patch+json
  kJsonPatch,       // application/json-patch+json (RFC 6902)
};

// True for 410 Gone: the resourceVersion is too old; the caller must relist.
bool IsGone(const Error& e);

// The path of a collection or object: /api/v1/namespaces/ns/pods/name/sub.
std::string ResourcePath(const ResourceRef& r, const std::string& ns, const std::string& name = "",
                         const std::string& subresource = "");

class RestClient {
 public:
  RestClient(std::shared_ptr<Transport> transport, std::shared_ptr<RateLimiter> limiter);
  // Transport and token bucket from the config.
  static std::unique_ptr<RestClient> FromConfig(const RestConfig& cfg);

  Result<Json> Get(const ResourceRef& r, const std::string& ns, const std::string& name);
  // The whole List object ({items: [...], metadata: {resourceVersion}}).
  Result<Json> List(const ResourceRef& r, const std::string& ns, const ListOptions& opts = {});
  Result<Json> Create(const ResourceRef& r, const std::string& ns, const Json& obj);
  // PUT; the object's metadata.resourceVersion makes it conditional (409 on
  // a stale version).
  Result<Json> Update(const ResourceRef& r, const std::string& ns, const Json& obj,
                      const std::string& subresource = "");
  Result<Json> Patch(const ResourceRef& r, const std::string& ns, const std::string& name,
                     PatchType type, const Json& patch, const std::string& subresource = "");
  Status Delete(const ResourceRef& r, const std::string& ns, const std::string& name);

  // Opens a watch and calls on_event for each event until the server ends
  // the stream (Ok), on_event returns false (Ok), *cancel is set (Ok), or an
  // error (connection failure; HTTP error status, e.g. 410 -> IsGone).
  Status Watch(const ResourceRef& r, const std::string& ns, const ListOptions& opts,
               const std::function<bool(WatchEvent)>& on_event, const std::atomic<bool>* cancel);

  // Any path (discovery, /version).
  Result<Json> GetPath(const std::string& path);

 private:
  Result<Json> Call(HttpRequest req);

  std::shared_ptr<Transport> transport_;
  std::shared_ptr<RateLimiter> limiter_;
};

}  // namespace terway::k8s
