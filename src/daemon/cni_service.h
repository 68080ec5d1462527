// The daemon's handling of CNI requests: ADD -> an IP from the pool, then the
// pod's datapath; DEL -> the reverse, idempotently; CHECK -> verify; STATUS;
// GC -> free what the runtime no longer knows.
//
// Without a PodDatapath (terwayd --datapath none) the daemon acts as IPAM
// only: it hands out addresses and reports them, and wires nothing.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>

#include "cni/protocol.h"
#include "daemon/metrics.h"
#include "daemon/pod_datapath.h"
#include "daemon/pod_directory.h"
#include "daemon/pod_policy.h"
#include "daemon/rpc_server.h"
#include "ipam/address_source.h"
#include "store/state_store.h"

namespace terway::daemon {

struct CniServiceOptions {
  // Used when the request carries no deadline.
  std::chrono::milliseconds default_deadline{60000};
  // Gateway the pod sees (shared ENI mode: a link-local next hop answered by
  // a permanent neighbour entry on the host side).
  std::string pod_gateway = "169.254.1.1";
  // Recorded with each allocation ("shared", "exclusive"; "" without a
  // datapath) so a restarted daemon knows how the pod was wired.
  std::string datapath_mode;
  // Why policy_explain/policy_show are refused when no PodPolicy is set
  // ("disabled in eni-config", "exclusive ENI pods are outside policy", ...).
  std::string policy_off_reason = "network policy is not enforced by this terwayd";
  // A malformed bandwidth annotation: refuse the pod's ADD (default; a pod
  // silently unlimited is worse than a clear error), or serve it without a
  // limit and say so in a Warning Event (eni_conf bandwidth_annotation_error
  // "ignore").
  bool refuse_bad_bandwidth_annotation = true;
  // Why a network asking eniip_virtual_type ipvlan/datapathv2 is served by
  // the veth datapath (Terway falls back the same way); said once.
  std::string ipvlan_fallback_reason = "the ipvlan datapath is not built in this terwayd";
};

class CniService : public RequestHandler {
 public:
  // addresses: the node's IpPool (shared ENI) or ExclusiveEniAllocator.
  CniService(CniServiceOptions opts, ipam::PodAddressSource* addresses, store::StateStore* store,
             PodDatapath* datapath, Metrics* metrics);

  cni::protocol::Reply Handle(const cni::protocol::Request& req) override;
  // Until set, STATUS reports not ready and ADD is refused as retryable.
  void SetReady(bool ready, std::string why = "");
  // With a directory (terwayd with a Kubernetes API), ADD reads the pod's
  // labels, annotations and owner from it, refuses pods and nodes labelled
  // ignore-by-terway, and reports results back. Set before serving.
  void SetPodDirectory(PodDirectory* directory) { directory_ = directory; }
  // With a policy (terwayd enforcing NetworkPolicy), ADD puts the pod's
  // rules in place before wiring it, DEL and undone ADDs drop them, and the
  // operator's policy requests are answered. Set before serving.
  void SetPodPolicy(PodPolicy* policy) { policy_ = policy; }

  // A running pod's bandwidth annotations changed (KubeNode's listener):
  // its shaping follows them (updated, or removed with the annotations). A
  // malformed value keeps the current limit and raises a Warning Event.
  // Errors are logged; the caller has nobody to report them to.
  void UpdatePodBandwidth(const std::string& ns, const std::string& name,
                          const std::map<std::string, std::string>& annotations);

 private:
  cni::protocol::Reply Allocate(const cni::protocol::Request& req);
  // Allocate's work under the container's lock; *annotations_used: the
  // pod's annotations it read from the API (unset for pods the API lacks).
  cni::protocol::Reply AllocateLocked(const cni::protocol::Request& req,
                                      std::optional<std::map<std::string, std::string>>* annotations_used);
  cni::protocol::Reply Release(const cni::protocol::Request& req);
  cni::protocol::Reply Get(const cni::protocol::Request& req);
  cni::protocol::Reply Status();
  cni::protocol::Reply Gc(const cni::protocol::Request& req);
  cni::protocol::Reply PolicyExplain(const cni::protocol::Request& req);
  cni::protocol::Reply PolicyShow();
  PodNetwork MakePodNetwork(const cni::protocol::Request& req, const ipam::IpAllocation& ip) const;
  // ADD, DEL and bandwidth updates of one container never interleave (an
  // update's Ensure must not rebuild a pod its DEL just removed). Striped:
  // unrelated containers rarely share a lock.
  std::mutex& ContainerLock(const std::string& container_id);
  cni::CniResult IpamResult(const ipam::IpAllocation& ip) const;

  CniServiceOptions opts_;
  ipam::PodAddressSource* addresses_;
  store::StateStore* store_;
  PodDatapath* datapath_;
  Metrics* metrics_;
  PodDirectory* directory_ = nullptr;
  PodPolicy* policy_ = nullptr;
  std::array<std::mutex, 64> container_locks_;
  std::once_flag ipvlan_warned_;
  std::atomic<bool> ready_{false};
  std::mutex why_mu_;
  std::string not_ready_why_ = "terwayd is starting";
};

}  // namespace terway::daemon
