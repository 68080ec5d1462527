// State rebuild: before terwayd serves, whatever its database does not know
// is reconstructed from the node, the cloud and the Kubernetes API, so an
// address that a running sandbox or a live pod holds is never handed out.
// This is what makes a lost or corrupt database, or a node taken over from
// upstream Terway, safe: running pods keep their addresses and their traffic.
//
// Sources, in order of trust:
//   - the kernel: host veths of ours (alias "terway-pod:<ip>:<container id>")
//     and upstream Terway's ("cali" + 11 hex of sha1(namespace.name[ifname]))
//     with a /32 route to the pod in the main table; the pod's network
//     namespace is found among the named ones by the namespace id the veth
//     names for its peer (IFLA_LINK_NETNSID; indexes alone repeat across
//     namespaces). Dual stack: the pod's IPv6 is the /128 route through the
//     same veth in the main table (both datapaths and upstream Terway route
//     a pod's IPv6 so), else the one global /128 of the pod's namespace
//     (exclusive ENIs carry it there);
//   - the Kubernetes API: this node's pods that are not finished, with their
//     status.podIPs and Terway's k8s.aliyun.com/pod-ips annotation ("v4,v6");
//   - the cloud: only addresses of this node's ENIs can be adopted (the
//     address source checks; the pool listed them at its start).
// Decisions are a pure function (PlanRebuild); discovery and adoption are
// the effects around it.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "ipam/address_source.h"
#include "ipam/types.h"
#include "k8s/types.h"
#include "store/state_store.h"

namespace terway::daemon {

class Metrics;

// A pod's wiring found in the node's kernel.
struct HostSandbox {
  std::string host_veth;
  std::string ip;            // the pod's IPv4
  std::string container_id;  // from our alias; "" for another plugin's wiring
  std::string netns;         // the pod's namespace (a named one's path); "" if not found
  std::string ipv6 = "";     // dual stack: the pod's IPv6; "" if it has none (or IPv4 only)
};

// A pod of this node that the API says holds an address.
struct ApiPodAddress {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string ip;
  std::string ipv6 = "";  // the IPv6 the pod reports beside `ip` ("" if none)
};

struct Adoption {
  ipam::PodIdentity pod;  // container id (real, or synthetic "rebuilt-<ip>"), pod, netns, origin, host veth
  std::string ip;
  // Dual stack: the IPv6 the sandbox (or the pod) holds beside `ip`, which
  // the slot must be re-paired to; "" when none is known (the pool records
  // the slot's own pair).
  std::string ipv6;
  std::string found_by;   // "kernel", "kernel+api", "api": for the log
};

// The synthetic container id of an adopted address whose runtime id is not
// known (the DEL that comes for it is matched by pod name and namespace).
std::string RebuiltContainerId(const std::string& ip);

// What to adopt: every address a sandbox or a live pod holds that no
// allocation records. datapath_mode is this terwayd's ("shared",
// "exclusive", ""). *conflicts gets one line per address claimed twice
// (two sandboxes with one IP: reported, the first adopted).
//
// IPv6 (dual stack): an adoption carries the IPv6 its sandbox holds (the
// kernel's; the API's when the kernel shows none). Kernel and API
// disagreeing is reported and the kernel wins (it is what the pod uses).
// An IPv6 claimed twice -- by two sandboxes or pods, or by one and a
// recorded allocation -- is reported; the first claim keeps it and the
// others are adopted without it. Adoptions with an IPv6 come first, those
// without after them: the pool records the latter with the slot's own pair,
// which must not be an IPv6 a sandbox adopted later still holds.
std::vector<Adoption> PlanRebuild(const std::vector<store::AllocationRecord>& allocations,
                                  const std::vector<HostSandbox>& sandboxes,
                                  const std::vector<ApiPodAddress>& api_pods, const std::string& datapath_mode,
                                  std::vector<std::string>* conflicts);

// Carries the plan out through the address source, before serving: the
// adoptions that carry the sandbox's IPv6 first. One whose IPv6 the source
// refuses (held by a recorded pod, of another ENI, unknown to the cloud)
// still holds its IPv4: it is adopted without the IPv6 after them, like the
// others that have none, so its IPv4 is never handed out (restart repair
// then rewires our own pods with the recorded pair, which ends the doubled
// IPv6). Logged, and counted in terway_state_rebuild_adoptions_total.
void AdoptPlan(ipam::PodAddressSource* addresses, const std::vector<Adoption>& plan, Metrics* metrics);

// The API's view: pods bound to node_name that still run (not Succeeded or
// Failed), not host-network, with each IPv4 they hold (status.podIPs,
// status.podIP and the k8s.aliyun.com/pod-ips annotation). The pod's IPv6
// (the first one it reports, status before the annotation) goes with its
// first-reported IPv4: the pair one ADD gave it.
std::vector<ApiPodAddress> ApiPodAddresses(const std::vector<k8s::Pod>& pods, const std::string& node_name);

// Upstream Terway's host veth name for a pod: "cali" + the first 11 hex
// digits of sha1("<namespace>.<name>" + ifname, with ifname "" for eth0).
std::string UpstreamHostVethName(const std::string& ns, const std::string& name, const std::string& ifname);

// Kernel discovery in the calling thread's (the node's) namespace. Named
// namespaces under netns_dir are searched for each veth's peer. With ipv6
// (a dual-stack node) each sandbox's IPv6 is read too; an IPv4-only node
// does not need the kernel to have IPv6 at all.
Result<std::vector<HostSandbox>> DiscoverHostSandboxes(const std::string& netns_dir = "/var/run/netns",
                                                       bool ipv6 = true);

}  // namespace terway::daemon
