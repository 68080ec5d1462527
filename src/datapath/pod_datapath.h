// What terwayd asks of the kernel datapath for one pod (this folder
// implements it per mode: shared ENI with veth + policy routing, exclusive
// ENI). The daemon is the single owner of kernel state: the plugin never
// touches the kernel, so a restart of the daemon can verify and repair
// everything from its database.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cni/config.h"
#include "cni/result.h"
#include "common/ip.h"
#include "common/result.h"
#include "common/strings.h"
#include "ipam/types.h"

namespace terway::datapath {

// Which shared-ENI datapath serves the pod, from its network's
// eniip_virtual_type: veth + policy routing, or the eBPF datapath on top of
// it (IPVlan / datapathv2). kUnknown: the pod was rebuilt from its
// allocation record (restart repair, teardown), which does not say; the
// datapath tells from the kernel (ebpf_eni.h).
enum class VirtualType { kUnknown, kVeth, kEbpf };

// A dual-stack pod's IPv6 side: an IPv6 address of the same ENI as the
// pod's IPv4 (PodNetwork::ip), and that ENI's vSwitch IPv6 gateway as the
// metadata service reports it (network/interfaces/macs/<mac>/ipv6-gateway;
// a link-local or a global address). Text, as the allocation record keeps
// addresses: the pool fills it from the record (next to IpAllocation::ip)
// and the ENI's metadata; the datapath parses it and refuses a malformed one
// with an error naming the pod (ParsePodAddrs).
struct PodIpv6 {
  std::string ip;       // "2001:db8:1::10", no prefix: the pod holds a /128
  std::string gateway;  // "fe80::1" or "2001:db8:1::fffd"
  bool operator==(const PodIpv6&) const = default;
};

struct PodNetwork {
  std::string container_id;
  std::string netns;   // path of the pod's network namespace
  std::string ifname;  // CNI_IFNAME
  std::string pod_namespace;
  std::string pod_name;
  ipam::IpAllocation ip;
  // Set: dual stack (IPv4 stays required). Unset: IPv4 only, and the pod
  // can send no IPv6 but link-local (anti_spoof.h).
  std::optional<PodIpv6> ipv6;
  int mtu = 0;
  std::optional<cni::Bandwidth> bandwidth;
  // The pod's Kubernetes annotations (empty without an API server), for
  // what the datapath derives from them (bandwidth annotations).
  std::map<std::string, std::string> annotations;
  // The network's host_stack_cidrs: an exclusive-ENI pod reaches them
  // through its veth and the node (node-local DNS, say), not its ENI.
  // Shared-ENI pods need nothing: all their traffic crosses the node.
  std::vector<Ipv4Cidr> host_stack_cidrs;
  // The pod's traffic to the ECS metadata service (100.100.100.200) goes
  // through the node, where the metadata guard filters it. Shared-ENI pods'
  // traffic crosses the node anyway; an exclusive-ENI pod gets a route
  // through its veth (unless it is exempt, and then it uses its own ENI).
  bool metadata_via_node = false;
  // The host-side veth when it is not the one the datapath derives from the
  // container id: a pod wired by upstream Terway (`cali` + 11 hex) that this
  // terwayd adopted at start. Remove deletes it; Ensure/Check never rebuild
  // such a pod (its wiring is not ours to redo).
  std::string host_veth;
  VirtualType virtual_type = VirtualType::kUnknown;
  // The network's service_cidr (CNI conf) when the request carried one: an
  // eBPF-mode pod's packets to it must take the host stack (kube-proxy).
  std::optional<Ipv4Cidr> service_cidr;
};

// host_stack_cidrs as text (the CNI config's strings, or the comma-joined
// form recorded with an allocation) to prefixes. The plugin refused bad
// entries at ADD; any that still fail to parse are skipped.
inline std::vector<Ipv4Cidr> ParseHostStackCidrs(const std::vector<std::string>& texts) {
  std::vector<Ipv4Cidr> out;
  for (const auto& t : texts) {
    if (auto c = Ipv4Cidr::Parse(t); c.ok()) out.push_back(*c);
  }
  return out;
}
inline std::vector<Ipv4Cidr> ParseRecordedHostStackCidrs(const std::string& joined) {
  return ParseHostStackCidrs(Split(joined, ',', /*skip_empty=*/true));
}

class PodDatapath {
 public:
  virtual ~PodDatapath() = default;
  // Idempotent: makes the pod's network exactly as it should be and returns
  // the interfaces/IPs/routes to report.
  virtual Result<cni::CniResult> Ensure(const PodNetwork& pod) = 0;
  // Idempotent: removes everything of the pod; success when already gone
  // (netns deleted, link missing).
  virtual Status Remove(const PodNetwork& pod) = 0;
  // Verifies without changing anything; an error names what is wrong. On
  // success, what Ensure reported (CNI CHECK compares it with prevResult).
  virtual Result<cni::CniResult> Check(const PodNetwork& pod) = 0;
  // A pod adopted at start with another plugin's wiring (host_veth set):
  // leaves the wiring as it is, and puts it under the same anti-spoofing
  // as ours (its host veth may send only with the pod's address).
  virtual Status GuardAdopted(const PodNetwork& pod) = 0;
  // Removes what containers not in live_container_ids left in the kernel
  // (a pod whose netns was destroyed while the daemon was down). Objects of
  // adopted_ips (live pods wired by another plugin, adopted at start) are
  // kept. Returns one line per removed object, for the log. Call it before
  // serving: a concurrent Ensure's objects could look orphaned.
  virtual Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>& live_container_ids,
                                                          const std::set<Ipv4Addr>& adopted_ips = {}) = 0;
};

}  // namespace terway::datapath
