// EbpfEniDatapath: shared-ENI pods of networks asking eniip_virtual_type
// IPVlan / datapathv2, served by the eBPF programs of bpf/dp_*.c (loaded by
// src/ebpf) on top of the veth wiring of SharedEniDatapath:
//
//   the veth mode's wiring, unchanged     (addresses, routes, rules, neighbour,
//                                          anti-spoofing element, shaping)
//   + endpoint entry  podIP -> {host veth ifindex, ENI ifindex, vSwitch gateway,
//                               pod MAC, host veth MAC, shaped}
//   + policy entry    podIP, while a NetworkPolicy chain may isolate the pod
//   + terway_from_pod on the host veth's tc ingress
//   + terway_from_eni on the ENI's tc ingress
//
// The programs short-cut what the stack would do with the same wiring:
// pod -> pod on the node with bpf_redirect_peer, pod -> VPC with
// bpf_redirect_neigh to the gateway, ENI -> pod with bpf_redirect_peer.
// Everything else (Services, the node, the metadata address, policed pods)
// is handed to the stack, which routes it exactly as in veth mode. So a
// program detached, an entry missing, or the programs never loaded costs
// speed, never connectivity, and nftables' anti-spoofing holds either way.
//
// One object serves every shared-ENI pod of the node, in either flavour
// (PodNetwork::virtual_type): a veth pod gets SharedEniDatapath's wiring and
// no endpoint entry. A pod rebuilt from its allocation record (restart
// repair, teardown, bandwidth updates: kUnknown) is an eBPF pod iff it has an
// endpoint entry -- the entry is the record of the mode (no schema change).
//
// Who writes what (one writer per datum, so no lock is held across a
// syscall):
//   terway_dp_ep             Ensure/Remove/GC of the pod (the CNI service
//                            serialises calls per pod); its SHAPED flag is
//                            the pod's bandwidth limit, persisted in the pin.
//   terway_dp_policy(+state) the policy controller's apply path only
//                            (PolicyIsolating/PolicyIsolationApplied, one
//                            caller at a time: PolicyMapWriter), or the
//                            daemon when policy is off on the node (no
//                            controller). Ensure only reads them: a pod a
//                            chain may isolate gets the fast path only while
//                            the map polices it (ebpf_eni_policy.h).
//   terway_dp_stack          add-only after LoadPrograms: any caller adds the
//                            prefixes it needs before writing an entry
//                            (idempotent single-entry writes); only
//                            LoadPrograms deletes stale ones.
// Calls for different pods may run concurrently.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "datapath/ebpf_eni_policy.h"
#include "datapath/ebpf_entry_index.h"
#include "datapath/pod_datapath.h"
#include "datapath/shared_eni.h"
#include "ebpf/attach.h"
#include "ebpf/endpoint.h"
#include "ebpf/programs.h"

namespace terway::datapath {

// ---- pure parts (unit-tested) ----

// A network's eniip_virtual_type as upstream Terway spells it ("Veth",
// "IPVlan", "Datapathv2", any case; "" is veth) to the flavour serving it.
// kInvalidArgument naming the value otherwise.
Result<VirtualType> ParseVirtualType(std::string_view text);
const char* VirtualTypeName(VirtualType t);

// What the pod's endpoint entry must hold, from what Ensure learnt.
struct EndpointFacts {
  int host_ifindex = 0;
  MacAddr host_mac;
  MacAddr pod_mac;
  int eni_ifindex = 0;
  Ipv4Addr gateway;
};
// shaped: the pod has a bandwidth limit (HasBandwidthLimit): its IFB and TBF
// qdiscs are in the stack's path only.
ebpf::Endpoint EndpointFor(Ipv4Addr pod_ip, const EndpointFacts& f, bool shaped);
// "" when equal, else what differs ("host_ifindex 7, want 9; shaped false, want true").
std::string DescribeEndpointDifference(const ebpf::Endpoint& have, const ebpf::Endpoint& want);

// What terwayd knows about the node's host-stack destinations.
struct NodeStackFacts {
  std::optional<Ipv4Cidr> service_cidr;  // eni_conf / CNI conf service_cidr
  std::vector<Ipv4Cidr> host_stack_cidrs;
  // The node's own addresses: its primary IP (the primary ENI's). Not a
  // secondary ENI's primary IP: the pool hands that to a pod.
  std::vector<Ipv4Addr> node_ips;
};
// The stack prefixes of the loader's map (the builtins -- the metadata
// address -- the loader adds itself), each once, sorted.
std::vector<ebpf::StackPrefix> NodeStackPrefixes(const NodeStackFacts& f);
// What a restarted terwayd must keep of the prefixes an earlier run wrote:
// those it learned from pods' networks (their CNI conf's service_cidr and
// host_stack_cidrs), which terwayd does not record. Dropping them would send
// running pods' Service traffic out of their ENI until the next ADD taught
// them again. `configured` wins for the Service CIDR; host-stack prefixes
// are the union (one too many only costs the fast path for that prefix).
NodeStackFacts KeepLearnedStackPrefixes(NodeStackFacts configured, const std::vector<ebpf::StackPrefix>& in_map);
// What the pod's network adds to `known`: its service_cidr (unless one is
// known) and host_stack_cidrs not yet there.
NodeStackFacts WithPodStackPrefixes(NodeStackFacts known, const PodNetwork& pod);

// ---- the datapath ----

struct EbpfEniOptions {
  SharedEniOptions shared;
  // Programs the caller loaded (not owned; outlive us), or null: then
  // `load` loads them at LoadPrograms() or at the first pod asking for the
  // eBPF mode. Loading lazily keeps nodes (and test daemons sharing one
  // machine's /sys/fs/bpf) without eBPF pods free of pins.
  ebpf::DatapathPrograms* programs = nullptr;
  std::function<Result<std::unique_ptr<ebpf::DatapathPrograms>>()> load;
  // Called once, by the caller whose LoadPrograms loaded the programs, after
  // they are published (no lock held): a fresh policy map is not synced
  // (every pod policed) until its writer writes it, which may have run while
  // nothing was loaded (PolicyIsolating and co. are no-ops then). The daemon
  // asks the policy controller for a sync. Unset: nothing.
  std::function<void()> loaded;
  // The node's host-stack destinations known at start; each eBPF pod's
  // network adds its own (service_cidr, host_stack_cidrs) before its entry
  // is written.
  NodeStackFacts stack;
  // Whether a NetworkPolicy chain may isolate the pod with this address
  // (the policy controller's MayIsolate; unset: none can, policy is off).
  // Ensure gives such a pod the fast path only while the policy map polices
  // it (CheckIsolatedPodPoliced): after a write of the map and its
  // fail-closed mark both failed, the map may be authoritative and lack it.
  std::function<bool(Ipv4Addr)> may_isolate;
};

class EbpfEniDatapath : public PodDatapath {
 public:
  explicit EbpfEniDatapath(EbpfEniOptions options);

  Result<cni::CniResult> Ensure(const PodNetwork& pod) override;
  Status Remove(const PodNetwork& pod) override;
  Result<cni::CniResult> Check(const PodNetwork& pod) override;
  Status GuardAdopted(const PodNetwork& pod) override;
  Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>& live_container_ids,
                                                  const std::set<Ipv4Addr>& adopted_ips = {}) override;

  // Loads the programs now if they are not (idempotent) and writes the
  // stack-prefix map: terwayd's start when an earlier run left pins, so
  // restart repair finds the entries it wrote.
  Status LoadPrograms();
  // The programs, or null while none were loaded.
  ebpf::DatapathPrograms* Loaded() const { return programs_.load(); }
  // Runs fn with the programs (or null) while no load can start: a sweep of
  // an earlier run's filters that sees none loaded must not remove what a
  // concurrent first load attaches. fn is a sweep of the kernel's filters
  // (the load lock's second holder, same reason: its result decides).
  void WithoutConcurrentLoad(const std::function<void(const ebpf::DatapathPrograms*)>& fn) {
    std::lock_guard l(load_mu_);
    fn(programs_.load());
    eni_attached_.ForgetAll();  // fn may have removed filters: the next ADDs read the kernel
  }
  // The next ADD of each ENI's pods reads the ENI's filters again instead
  // of trusting that this process attached its program (the daemon's pod GC
  // round: a filter deleted alone, clsact left, is not seen otherwise).
  void RecheckEniPrograms() { eni_attached_.ForgetAll(); }

  // The policy controller's contract (its apply path is the one caller,
  // one call at a time; also the daemon's with policy off). `isolated`: the
  // full set of local addresses a chain may isolate, not a difference, so a
  // call after a failure repairs what any earlier one missed.
  //   PolicyIsolating: before the kernel gets the chains. Makes the policy
  //     map a superset of `isolated` (adds the missing).
  //   PolicyIsolationApplied: after the kernel has exactly the chains of
  //     `isolated` (with policy off: the empty set). Makes the map exactly
  //     `isolated` (deletes extras) and marks it authoritative.
  // Fail closed: on any failed write the map is marked not authoritative
  // (every pod policed; the stack's chains decide) and the error returned;
  // only a later successful PolicyIsolationApplied lifts that. When even
  // that mark fails the error is PolicyMapFailedOpen (kUnavailable), and
  // Ensure refuses the fast path to isolated pods the map lacks. No-ops
  // while nothing is loaded (a fresh map starts not authoritative; `loaded`
  // asks for a sync).
  Status PolicyIsolating(const std::set<Ipv4Addr>& isolated);
  Status PolicyIsolationApplied(const std::set<Ipv4Addr>& isolated);
  // For terway_ebpf_datapath_policy_synced: nullopt while nothing is loaded
  // (no map to be in sync); else whether the writer's last write left the
  // map exact and authoritative. Any thread.
  std::optional<bool> PolicyMapSynced() const;

  // The flavour a pod is served with: its virtual_type, or for kUnknown
  // whether its endpoint entry exists.
  Result<VirtualType> FlavourOf(const PodNetwork& pod);

 private:
  // After a failed Ensure of an eBPF pod: removes its program and entry so
  // that only the veth wiring (the stack, with policy) carries it.
  void FallBackToTheStack(const PodNetwork& pod);
  // The entry Ensure writes for `pod`, given the CNI result of its veth wiring
  // (Check: looked up through `host`).
  Result<ebpf::Endpoint> WantedEndpoint(const PodNetwork& pod, const cni::CniResult& wired, netlink::Handle& host);
  // The same from what Ensure's wiring found on the way (no kernel call).
  static Result<ebpf::Endpoint> EndpointOfWiring(const PodNetwork& pod, const WiredPod& wired);
  // Adds to the stack-prefix map what the pod's network says belongs to the
  // stack, if not yet known to be there. Returns once every such prefix is
  // in the map (written here or by an earlier call).
  Status LearnStackPrefixes(ebpf::DatapathPrograms& programs, const PodNetwork& pod);
  // Ok unless a chain may isolate the pod (opt_.may_isolate) and the policy
  // map does not police it (CheckIsolatedPodPoliced): before the pod's
  // entry and program give it the fast path.
  Status AdmitToFastPath(ebpf::DatapathPrograms& programs, const PodNetwork& pod, Ipv4Addr ip);
  // After `ep` is written: deletes the entries of other addresses that still
  // point at the pod's host veth (its former IPv4s; see ebpf_entry_index.h).
  Status DropFormerEntries(ebpf::DatapathPrograms& programs, const std::string& veth, const ebpf::Endpoint& ep,
                           const std::string& who);

  // load_mu_ held: the load itself.
  Status LoadProgramsLocked();
  // LoadPrograms, then the programs.
  Result<ebpf::DatapathPrograms*> Programs();

  EbpfEniOptions opt_;
  // The one lock held across syscalls, by design: the once-only load. Its
  // waiters (every Ensure of an eBPF pod) need its result, the programs, and
  // cannot proceed without them; nothing else is taken under it. Also held
  // by WithoutConcurrentLoad (the rare re-sweep of foreign filters).
  std::mutex load_mu_;
  std::unique_ptr<ebpf::DatapathPrograms> owned_;
  std::atomic<ebpf::DatapathPrograms*> programs_{nullptr};
  // Guards stack_ and stack_in_map_; never held across a syscall.
  std::mutex stack_mu_;
  NodeStackFacts stack_;                       // what terwayd knows belongs to the stack
  std::set<ebpf::StackPrefix> stack_in_map_;  // of those, what is known to be in the map
  EndpointEntryIndex entries_;  // which entries point at which host veth
  // The policy map's one writer (the policy path): PolicyIsolating and co.
  PolicyMapWriter policy_writer_;
  SharedEniDatapath veth_;
  // The ENIs this process attached terway_from_eni to (in the host namespace).
  ebpf::AttachRecord eni_attached_;
};

}  // namespace terway::datapath
