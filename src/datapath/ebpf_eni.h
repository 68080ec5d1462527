// EbpfEniDatapath: shared-ENI pods of networks asking eniip_virtual_type
// IPVlan / datapathv2, served by the eBPF programs of bpf/dp_*.c (loaded by
// src/ebpf) on top of the veth wiring of SharedEniDatapath:
//
//   the veth mode's wiring, unchanged     (addresses, routes, rules, neighbour,
//                                          anti-spoofing element, shaping)
//   + endpoint entry  podIP -> {host veth ifindex, ENI ifindex, vSwitch gateway,
//                               pod MAC, host veth MAC, policed}
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
// Thread-safety as SharedEniDatapath: calls for different pods may run
// concurrently; the maps are updated with single syscalls.
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
#include "datapath/pod_datapath.h"
#include "datapath/shared_eni.h"
#include "ebpf/endpoint.h"
#include "ebpf/programs.h"

namespace terway::datapath {

// ---- pure parts (unit-tested) ----

// A network's eniip_virtual_type as upstream Terway spells it ("Veth",
// "IPVlan", "Datapathv2", any case; "" is veth) to the flavour serving it.
// kInvalidArgument naming the value otherwise.
Result<VirtualType> ParseVirtualType(std::string_view text);
const char* VirtualTypeName(VirtualType t);

// Whether the pod's traffic must cross the host stack both ways (its entry's
// policed flag): network policy may select it (the nftables table decides in
// the stack, with conntrack), or it has a bandwidth limit (the IFB and TBF
// qdiscs on its host veth are in the stack's path only).
bool PodPoliced(const PodNetwork& pod, bool policy_may_select);

// What the pod's endpoint entry must hold, from what Ensure learnt.
struct EndpointFacts {
  int host_ifindex = 0;
  MacAddr host_mac;
  MacAddr pod_mac;
  int eni_ifindex = 0;
  Ipv4Addr gateway;
};
ebpf::Endpoint EndpointFor(Ipv4Addr pod_ip, const EndpointFacts& f, bool policed);
// "" when equal, else what differs ("host_ifindex 7, want 9; policed false, want true").
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

// ---- the datapath ----

struct EbpfEniOptions {
  SharedEniOptions shared;
  // Programs the caller loaded (not owned; outlive us), or null: then
  // `load` loads them at LoadPrograms() or at the first pod asking for the
  // eBPF mode. Loading lazily keeps nodes (and test daemons sharing one
  // machine's /sys/fs/bpf) without eBPF pods free of pins.
  ebpf::DatapathPrograms* programs = nullptr;
  std::function<Result<std::unique_ptr<ebpf::DatapathPrograms>>()> load;
  // Might a network policy isolate the pod with this address (its nftables
  // chain exists, or is about to)? Fail closed: unset means yes. Asked at
  // every Ensure/Check and by PolicyIsolationChanged.
  std::function<bool(Ipv4Addr)> policy_may_isolate;
  // The node's host-stack destinations known at start; each eBPF pod's
  // network adds its own (service_cidr, host_stack_cidrs) before its entry
  // is written.
  NodeStackFacts stack;
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

  // The policy controller's news: these addresses' isolation changed (it
  // calls this before it applies new isolation and after it removed old
  // isolation). Their entries, if any, get the policed flag Ensure would
  // write. Errors are logged: the callers have nobody to report them to.
  void PolicyIsolationChanged(const std::set<Ipv4Addr>& ips);

  // The flavour a pod is served with: its virtual_type, or for kUnknown
  // whether its endpoint entry exists.
  Result<VirtualType> FlavourOf(const PodNetwork& pod);

 private:
  // After a failed Ensure of an eBPF pod: removes its program and entry so
  // that only the veth wiring (the stack, with policy) carries it.
  void FallBackToTheStack(const PodNetwork& pod);
  // The entry Ensure writes for `pod`, given the CNI result of its veth wiring.
  Result<ebpf::Endpoint> WantedEndpoint(const PodNetwork& pod, const cni::CniResult& wired, netlink::Handle& host);
  // policed_mu_ held.
  bool Policed(Ipv4Addr ip) const;
  // Adds what the pod's network says belongs to the stack, syncing the map
  // when that is new.
  Status LearnStackPrefixes(const PodNetwork& pod);

  // LoadPrograms, then the programs.
  Result<ebpf::DatapathPrograms*> Programs();

  EbpfEniOptions opt_;
  std::mutex load_mu_;  // one load
  std::unique_ptr<ebpf::DatapathPrograms> owned_;
  std::atomic<ebpf::DatapathPrograms*> programs_{nullptr};
  // Serialises a pod's entry write in Ensure with PolicyIsolationChanged,
  // so a flag read before a change is never written after it.
  mutable std::mutex policed_mu_;
  std::set<Ipv4Addr> limited_;  // pods with a bandwidth limit (policed whatever policy says)
  std::mutex stack_mu_;  // guards opt_.stack and the map's writes
  std::set<ebpf::StackPrefix> synced_;
  SharedEniDatapath veth_;
};

}  // namespace terway::datapath
