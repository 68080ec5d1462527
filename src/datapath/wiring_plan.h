// A pod's wiring as data: every kernel object a mode wants, per namespace,
// named the way the kernel will know it. A planner (wiring_planner.h) computes
// the plan from the pod and the facts looked up about its node (a pure
// function, tested with exact expected plans); one engine (wiring_engine.h)
// applies it, diffs the kernel against it (CHECK) and removes what it owns.
// Ensure and Check read the same value, so they cannot drift apart.
//
// Objects refer to links by name, never by index: indexes are only known once
// the links exist, and differ between namespaces.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "netlink/types.h"

namespace terway::datapath {

// What the engine does with a link.
enum class LinkKind {
  // Exists already (lo, a shared ENI on the node): only its settings are ours.
  kExisting,
  // A veth pair created from this namespace, its peer directly in peer_ns;
  // the peer end is a kVethPeer link of the peer namespace's plan.
  kVeth,
  kVethPeer,
  // A link found by MAC, in this namespace or in `home_ns`, from where it is
  // moved here and renamed to `name` (an exclusive ENI). Removal parks it
  // back home as `parked_name`.
  kMovedByMac,
};

struct LinkPlan {
  LinkKind kind = LinkKind::kExisting;
  std::string name;
  int mtu = 0;             // 0: left as it is
  std::string alias;       // "": left as it is; else also the proof of ownership (a veth)
  bool up = true;
  // kVeth: the peer's name and namespace (an index into WiringPlan::namespaces).
  std::string peer_name;
  size_t peer_ns = 0;
  // kMovedByMac.
  MacAddr mac;
  size_t home_ns = 0;
  std::string parked_name;
  // Removal deletes it (a veth of ours) or parks it (kMovedByMac).
  bool owned = false;
  bool operator==(const LinkPlan&) const = default;
};

struct AddressPlan {
  std::string dev;
  netlink::InetPrefix local;
  bool nodad = false;  // IPv6: valid at once (IFA_F_NODAD), see netlink::Address
  bool operator==(const AddressPlan&) const = default;
};

struct RoutePlan {
  netlink::InetPrefix dst;
  uint32_t table = netlink::kMainTable;
  std::string dev;
  std::optional<netlink::InetAddr> via;
  std::optional<netlink::InetAddr> src;
  bool onlink = false;
  int scope = -1;  // -1: as `ip route` derives it
  bool operator==(const RoutePlan&) const = default;
};

// Matched by (priority, from, to); the table is what it points to, so a rule
// with the same selector and another table is "different" (and replaced).
struct RulePlan {
  uint32_t priority = 0;
  std::optional<netlink::InetPrefix> from;
  std::optional<netlink::InetPrefix> to;
  uint32_t table = netlink::kMainTable;
  bool owned = false;  // removal deletes it (whatever table it points to)
  bool operator==(const RulePlan&) const = default;
};

// A permanent neighbour. Its MAC is either known or the MAC of a link the
// plan creates (`mac_of`, in namespace `mac_of_ns`), read when applying.
struct NeighborPlan {
  std::string dev;
  netlink::InetAddr ip;
  std::optional<MacAddr> mac;
  std::string mac_of;
  size_t mac_of_ns = 0;
  bool operator==(const NeighborPlan&) const = default;
};

// A proxy neighbour (IPv6: the node answers neighbour solicitations for ip
// on dev, see netlink::ProxyNeighbor). Apply also deletes entries of the same
// IP on other links (an ENI re-attached, an IP moved: two links would answer
// for it); removal deletes the IP's entries on every link when owned, so it
// needs no ENI facts.
struct ProxyNeighborPlan {
  std::string dev;
  netlink::InetAddr ip;
  bool owned = false;
  bool operator==(const ProxyNeighborPlan&) const = default;
};

// A /proc/sys/net value. only_when: written (and diffed) only while the
// current value is this one (lowering a strict rp_filter, say).
struct SysctlPlan {
  std::string key;  // e.g. "net/ipv4/ip_forward"
  std::string value;
  std::optional<std::string> only_when;
  bool operator==(const SysctlPlan&) const = default;
};

// A qdisc by kind on a link's hook; today the engine knows "clsact" (the hook
// of tc BPF programs). Pod bandwidth stays with src/qos (pod_shaping.h).
struct QdiscPlan {
  std::string dev;
  std::string kind;
  bool operator==(const QdiscPlan&) const = default;
};

// Typed slots for the eBPF mode. The engine refuses a plan that fills them
// (kUnsupported) until it learns to load programs: a plan is applied whole or
// not at all.
enum class BpfDirection { kIngress, kEgress };
struct BpfAttachment {
  std::string dev;
  BpfDirection direction = BpfDirection::kIngress;
  std::string program;
  bool operator==(const BpfAttachment&) const = default;
};
struct BpfMapEntry {
  std::string map;
  std::vector<uint8_t> key;
  std::vector<uint8_t> value;
  bool operator==(const BpfMapEntry&) const = default;
};

struct NamespacePlan {
  std::string netns;  // "" = the namespace of the calling thread (the host)
  std::string label;  // "host", "pod": how differences name it
  std::vector<LinkPlan> links;
  std::vector<SysctlPlan> sysctls;
  std::vector<AddressPlan> addresses;
  std::vector<RoutePlan> routes;  // in order: a gateway's link route before routes via it
  std::vector<RulePlan> rules;
  std::vector<NeighborPlan> neighbors;
  std::vector<ProxyNeighborPlan> proxy_neighbors;
  std::vector<QdiscPlan> qdiscs;
  std::vector<BpfAttachment> bpf_programs;
  std::vector<BpfMapEntry> bpf_map_entries;
  bool operator==(const NamespacePlan&) const = default;
};

// What the runtime is told (CNI result), in terms of the plan's links.
struct CniReportPlan {
  struct Interface {
    size_t ns = 0;
    std::string name;
    bool in_sandbox = false;
    bool operator==(const Interface&) const = default;
  };
  std::vector<Interface> interfaces;
  netlink::InetPrefix ip;
  netlink::InetAddr gateway;
  int ip_interface = 0;  // index into interfaces
  // A dual-stack pod's IPv6 address and gateway (on the same interface).
  struct Ipv6 {
    netlink::InetPrefix ip;
    netlink::InetAddr gateway;
    bool operator==(const Ipv6&) const = default;
  };
  std::optional<Ipv6> ipv6;
  bool operator==(const CniReportPlan&) const = default;
};

struct WiringPlan {
  std::vector<NamespacePlan> namespaces;  // [0] is the host
  CniReportPlan report;
  // False for a plan made without the facts of a live ENI (DEL when the ENI
  // is gone): it can only be removed, never applied or diffed.
  bool complete = true;
  bool operator==(const WiringPlan&) const = default;
};

// Names of objects as differences and errors say them.
std::string Describe(const RoutePlan& r);
std::string Describe(const RulePlan& r);
std::string Describe(const NeighborPlan& n, const std::string& mac);
std::string Describe(const ProxyNeighborPlan& n);


}  // namespace terway::datapath
