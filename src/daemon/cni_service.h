// The daemon's handling of CNI requests: ADD -> an IP from the pool, then the
// pod's datapath; DEL -> the reverse, idempotently; CHECK -> verify; STATUS;
// GC -> free what the runtime no longer knows.
//
// ADD is a pipeline: admit (is the node and the pod served; labels,
// annotations, bandwidth) -> allocate (an address, recorded) -> enforce (the
// pod's policy in the kernel) -> wire (the datapath). Each step pushes its
// undo onto one UndoStack, so a failure anywhere takes back exactly what was
// done, newest first.
//
// Every path that frees an address -- DEL, CNI GC, pod GC, restart repair, an
// address the cloud took away, an undone ADD -- runs the same teardown:
// datapath removal, then the policy controller's stop, then the release. If
// the wiring cannot be removed the address is kept (a sandbox still holds it)
// and the next DEL / GC round tries again.
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
#include "common/undo.h"
#include "ipam/address_source.h"
#include "metadata/metadata_guard.h"
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
  // The datapath serves networks asking eniip_virtual_type IPVlan /
  // datapathv2 with the eBPF datapath (terwayd loaded its programs).
  bool ebpf_datapath = false;
  // Otherwise why such a network is served by the veth datapath (Terway
  // falls back the same way); said once.
  std::string ipvlan_fallback_reason = "the eBPF datapath is not loaded in this terwayd";
  // Dual stack: the vSwitch IPv6 gateway of an ENI (eni id, MAC), as the
  // metadata service reports it, for a pod's PodIpv6. Unset, or an error:
  // the pod's IPv6 gets no gateway, and its Ensure refuses it naming the
  // metadata path.
  std::function<Result<std::string>(const std::string& eni_id, const std::string& eni_mac)> ipv6_gateway;
};

// Why an address is being freed (logs, terway_address_teardowns_total).
enum class TeardownCause { kDel, kCniGc, kPodGc, kRestartRepair, kAddressLost, kSuperseded };
const char* TeardownCauseName(TeardownCause c);

// The pod's network as recorded with its allocation (restart repair, pod GC,
// bandwidth updates and teardown rebuild it from here).
PodNetwork PodNetworkFromRecord(const store::AllocationRecord& rec, const ipam::IpAllocation& ip);
// The pod's addresses as k8s.aliyun.com/pod-ips lists them: the IPv4, then
// the IPv6 on a dual-stack node.
std::vector<std::string> PodIps(const ipam::IpAllocation& ip);

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
  // With a metadata guard (eni_conf metadata_credentials_for_pods: deny),
  // the enforce step records the pod's exemption (or its absence) before it
  // is wired, and the teardown withdraws it before the address is released
  // (the next holder of the address must not inherit it). Set before serving.
  void SetMetadataGuard(metadata::MetadataGuard* guard) { metadata_guard_ = guard; }

  // A running pod's bandwidth annotations changed (KubeNode's listener):
  // its shaping follows them (updated, or removed with the annotations). A
  // malformed value keeps the current limit and raises a Warning Event.
  // Errors are logged; the caller has nobody to report them to.
  void UpdatePodBandwidth(const std::string& ns, const std::string& name,
                          const std::map<std::string, std::string>& annotations);

  // The pod's network as recorded, with what this node adds to every pod's
  // wiring (the metadata route of an exclusive-ENI pod the guard covers):
  // what restart repair, bandwidth updates and the teardown wire against.
  PodNetwork RecordedNetwork(const store::AllocationRecord& rec, const ipam::IpAllocation& ip) const;
  // A dual-stack pod's IPv6 gateway (its ENI's, from the metadata service,
  // cached) into pn, for wiring and checking; an error names the lookup.
  // Removal needs none, so RecordedNetwork does not look it up.
  Status FillIpv6Gateway(PodNetwork& pn) const;

  // The one teardown. `seen` is the allocation as the caller read it; if the
  // container's allocation is gone or now holds another address, nothing is
  // done (a concurrent DEL won). Error: the address is kept.
  Status Teardown(const store::AllocationRecord& seen, TeardownCause cause);
  // Allocations the pool dropped because the cloud no longer lists their
  // address: their sandboxes' wiring is removed (the release already
  // happened), so the address cannot live on in a sandbox.
  void AddressesLost(const std::vector<store::AllocationRecord>& lost);

 private:
  // What admission learnt about the pod, for the later steps.
  struct Admission {
    ipam::PodIdentity pod;
    std::optional<cni::Bandwidth> bandwidth_from_annotations;
    bool in_api = false;
    std::optional<std::map<std::string, std::string>> annotations_used;
  };
  // admit -> allocate -> enforce -> wire; see the file comment.
  Result<Admission> Admit(const cni::protocol::Request& req);
  Status AdmitApiPod(const cni::protocol::Request& req, const PodMetadata& m, Admission& adm);
  Result<ipam::IpAllocation> AllocateAddress(const cni::protocol::Request& req, const Admission& adm,
                                             UndoStack& undo);
  Status Enforce(const cni::protocol::Request& req, const Admission& adm, const ipam::IpAllocation& ip,
                 UndoStack& undo);
  Result<cni::CniResult> Wire(const cni::protocol::Request& req, const Admission& adm,
                              const ipam::IpAllocation& ip, UndoStack& undo);
  // The three steps of the teardown (and of ADD's undo).
  Status RemoveWiring(const PodNetwork& pn);
  // Policy stopped, metadata exemption withdrawn; an error keeps the address.
  Status StopEnforcing(const std::string& ns, const std::string& name, const std::string& ip);
  Status ReleaseAddress(const std::string& container_id);
  // Teardown under the container's lock.
  Status TeardownLocked(const store::AllocationRecord& seen, TeardownCause cause);
  // A DEL for a container we have no record of: the sandbox of a pod adopted
  // at start under a synthetic id (its real id was lost with the state).
  cni::protocol::Reply ReleaseRebuilt(const cni::protocol::Request& req);
  void SupersedeRebuilt(const cni::protocol::Request& req);

  cni::protocol::Reply Allocate(const cni::protocol::Request& req);
  // Allocate's work under the container's lock; *annotations_used: the
  // pod's annotations it read from the API (unset for pods the API lacks).
  cni::protocol::Reply AllocateLocked(const cni::protocol::Request& req,
                                      std::optional<std::map<std::string, std::string>>* annotations_used);
  cni::protocol::Reply Release(const cni::protocol::Request& req);
  cni::protocol::Reply Get(const cni::protocol::Request& req);
  cni::protocol::Reply StatusReply();
  cni::protocol::Reply Gc(const cni::protocol::Request& req);
  cni::protocol::Reply PolicyExplain(const cni::protocol::Request& req);
  cni::protocol::Reply PolicyShow();
  PodNetwork MakePodNetwork(const cni::protocol::Request& req, const ipam::IpAllocation& ip) const;
  void CountTeardown(TeardownCause cause, const char* result);
  bool MetadataViaNode(const std::string& ip) const;

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
  metadata::MetadataGuard* metadata_guard_ = nullptr;
  std::array<std::mutex, 64> container_locks_;
  std::once_flag ipvlan_warned_;
  std::atomic<bool> ready_{false};
  std::mutex why_mu_;
  std::string not_ready_why_ = "terwayd is starting";
};

}  // namespace terway::daemon
