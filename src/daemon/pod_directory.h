// PodDirectory: what the CNI service learns about pods and this node from
// Kubernetes, and what it tells Kubernetes back. terwayd without an API
// server runs without one (the CNI service then serves every ADD with what
// CNI_ARGS carries); KubeNode (kube_node.h) implements it over the API.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/result.h"

namespace terway::daemon {

// Pod label that makes terwayd refuse the pod (on a pod) or the whole node
// (on the node), as in Terway.
inline constexpr char kIgnoreByTerwayLabel[] = "k8s.aliyun.com/ignore-by-terway";

// Terway's rule: the label's value is exactly "true".
inline bool IgnoredByTerway(const std::map<std::string, std::string>& labels) {
  auto it = labels.find(kIgnoreByTerwayLabel);
  return it != labels.end() && it->second == "true";
}

struct PodMetadata {
  std::string uid;
  // Kind of the pod's controller ("StatefulSet", "ReplicaSet", ...): the pool
  // keeps StatefulSet pods' IPs reserved across restarts.
  std::string owner_kind;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

class PodDirectory {
 public:
  virtual ~PodDirectory() = default;
  // Non-empty: why this node serves no pods (node labelled ignore-by-terway).
  virtual std::string NodeRefusal() = 0;
  // The pod as the API knows it; nullopt when the API has no such pod.
  virtual Result<std::optional<PodMetadata>> Lookup(const std::string& ns, const std::string& name) = 0;
  // The pod as the watch cache has it now, without asking the API; nullopt
  // when the cache does not have it.
  virtual std::optional<PodMetadata> Cached(const std::string& ns, const std::string& name) = 0;
  // An ADD is about to allocate for the pod: protects it from pod garbage
  // collection until the cache has certainly seen it.
  virtual void AllocationStarted(const std::string& ns, const std::string& name) = 0;
  // Best-effort writes (never fail the ADD): annotation pod-ips (only for a
  // pod the API has: in_api), node condition SufficientIP, Events.
  virtual void Allocated(const std::string& ns, const std::string& name, const std::vector<std::string>& ips,
                         bool in_api) = 0;
  // A pod's address went back to the pool: the node can serve again.
  virtual void Released(const std::string& ns, const std::string& name) = 0;
  virtual void AllocationFailed(const std::string& ns, const std::string& name, const std::string& uid,
                                const Error& e) = 0;
  // A Warning Event on the pod (best-effort), e.g. a malformed bandwidth
  // annotation the pod runs without.
  virtual void PodWarning(const std::string& ns, const std::string& name, const std::string& uid,
                          const std::string& reason, const std::string& message) = 0;
};

}  // namespace terway::daemon
