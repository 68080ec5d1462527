// The pure parts of the shared-ENI datapath: how kernel objects are named and
// numbered, how a pod's host link records whom it belongs to, and the CNI
// result's shape. No kernel access here, so all of it is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cni/result.h"
#include "common/ip.h"
#include "common/result.h"

namespace terway::datapath {

// The pod's next hop. A link-local address that exists on no link: the pod
// reaches it only through the permanent neighbour entry pointing at the host
// veth's MAC, so it never ARPs and needs no address on the host side.
inline constexpr const char* kPodGateway = "169.254.1.1";
// The IPv6 twin, for the same reasons: a fixed next hop that is the same in
// every pod (a host veth rebuilt with a new MAC changes only the neighbour
// entry, never the route), reached through a permanent neighbour (the pod
// never solicits it, the host needs no address for it). Link-local, so it is
// never routed and clashes with no vSwitch prefix; fe80::1 because the host
// veth's own link-local is derived from its MAC (EUI-64) and never is it. A
// route via a link-local next hop needs its device, which the pod's default
// route has.
inline constexpr const char* kPodGatewayV6 = "fe80::1";

// Route table of an ENI: 1000 + the ENI link's ifindex (Terway's convention).
// Derived, never stored: the same ENI link always maps to the same table, and
// a re-attached ENI (new ifindex) gets a new table that Ensure re-points the
// pod's rule to. 1000 keeps clear of the reserved tables (253-255) and of the
// small ids operators use by hand.
inline constexpr uint32_t kEniTableBase = 1000;
uint32_t EniTableId(int eni_ifindex);

// Rule priorities. "to podIP lookup main" must come before every "from podIP
// lookup <ENI table>": traffic between two pods of the node has a from-rule
// match too, and must stay on the node instead of leaving through the ENI.
// Both come before the kernel's main rule (32766).
inline constexpr uint32_t kToPodRulePriority = 512;
inline constexpr uint32_t kFromPodRulePriority = 2048;

// Host side of a pod's veth: "tw" + 13 hex digits of a stable hash of the
// container id (15 bytes, the kernel's limit). Stable across daemon restarts,
// so DEL and GC find the link from the container id alone. The anti-spoofing
// table guards every link with this prefix (anti_spoof.h): nothing else on a
// node of ours may be named "tw...".
inline constexpr const char* kHostVethPrefix = "tw";
std::string HostVethName(std::string_view container_id);

// The host veth's alias records its owner, so GC after a restart can tell
// which container (and pod IP) a link belongs to without any database:
// "terway-pod:<ip>:<container id>".
inline constexpr std::string_view kPodAliasPrefix = "terway-pod:";
std::string PodLinkAlias(const Ipv4Addr& pod_ip, std::string_view container_id);
struct PodLinkOwner {
  Ipv4Addr pod_ip;
  std::string container_id;
};
// nullopt for links that are not ours (other alias or none).
std::optional<PodLinkOwner> ParsePodLinkAlias(std::string_view alias);

// Name an exclusive ENI's link gets while parked in the node's namespace on
// its way back from a pod: "eni" + hash of the ENI id (15 bytes).
std::string ParkedEniLinkName(const std::string& eni_id);

// The IFB that shapes traffic out of a pod (src/qos): "tb" + the same 13 hex
// digits as its host veth, so DEL finds it from the container id alone. Its
// alias "terway-pod-ifb:<ip>:<container id>" tells GC whom it belongs to (a
// different prefix from the veth's, so veth GC never mistakes it for a veth).
std::string PodIfbName(std::string_view container_id);
inline constexpr std::string_view kPodIfbAliasPrefix = "terway-pod-ifb:";
std::string PodIfbAlias(const Ipv4Addr& pod_ip, std::string_view container_id);
std::optional<PodLinkOwner> ParsePodIfbAlias(std::string_view alias);

// What a pod was given, as the CNI result reports it: interfaces [host veth,
// pod interface], ips [podIP/32 via 169.254.1.1 on interface 1], routes
// [default via 169.254.1.1].
struct PodWiring {
  std::string host_veth;
  MacAddr host_mac;
  std::string pod_ifname;
  MacAddr pod_mac;
  std::string netns;
  Ipv4Addr pod_ip;
};
cni::CniResult BuildCniResult(const PodWiring& w);

}  // namespace terway::datapath
