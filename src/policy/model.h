// The policy model both front ends feed: Kubernetes networking.k8s.io/v1
// NetworkPolicy (k8s_policy.h) and Calico projectcalico.org/v3
// NetworkPolicy / GlobalNetworkPolicy (calico_policy.h) become `Policy`.
// Policies sit in Calico tiers (Kubernetes policies in tier `default` at
// order 1000); the compiler turns them into per-pod rule lists.
// docs/calico-semantics.md is the reference for every Calico meaning here.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "k8s/selector.h"
#include "k8s/types.h"
#include "policy/calico_selector.h"

namespace terway::policy {

// An IP protocol, by its IANA number: what the kernel matches. Named
// constants for the ones policies name; any number 1-255 is a protocol.
class Protocol {
 public:
  constexpr Protocol() = default;
  constexpr explicit Protocol(uint8_t number) : number_(number) {}
  constexpr uint8_t number() const { return number_; }
  // TCP, UDP and SCTP carry the ports a policy can match (Calico's
  // SupportsPorts; UDPLite is not among them).
  constexpr bool HasPorts() const { return number_ == 6 || number_ == 17 || number_ == 132; }
  constexpr auto operator<=>(const Protocol&) const = default;

  static const Protocol kTCP, kUDP, kSCTP, kICMP, kICMPv6, kUDPLite;

 private:
  uint8_t number_ = 6;
};
inline constexpr Protocol Protocol::kICMP{1};
inline constexpr Protocol Protocol::kTCP{6};
inline constexpr Protocol Protocol::kUDP{17};
inline constexpr Protocol Protocol::kICMPv6{58};
inline constexpr Protocol Protocol::kSCTP{132};
inline constexpr Protocol Protocol::kUDPLite{136};

enum class Action { kAllow, kDeny, kLog, kPass };
enum class Direction { kIngress, kEgress };

// "TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "UDPLite", else the number.
std::string ProtocolName(Protocol p);
// Names in any case, or a number 1-255 (operators and Kubernetes; the
// Calico front end applies Calico's stricter rule itself).
Result<Protocol> ParseProtocol(std::string_view text);
const char* ActionName(Action a);
const char* DirectionName(Direction d);

// One packet as Evaluate/Explain see it: its protocol, ports and ICMP
// type/code. The addresses are the two ends Explain is asked about.
struct Packet {
  Protocol protocol = Protocol::kTCP;
  // 0: not known. It is in no positive source-port list and in no
  // notPorts list (Calico ports start at 1).
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint8_t icmp_type = 8;  // ICMP and ICMPv6 only; 8 = echo request (ICMPv6: 128)
  uint8_t icmp_code = 0;
  // 6: Explain takes pods at their IPv6 address. 0 (or 4): IPv4 unless an
  // end is given as an IPv6 address.
  int ip_version = 0;
  // What the older (protocol, port) calls mean: that destination port, an
  // unknown source port; for ICMP and ICMPv6 an echo request (what ping
  // sends: type 8, ICMPv6 type 128).
  static Packet Of(Protocol p, uint16_t destination_port);
  // "80/TCP", "1234->80/TCP", "ICMP type 8 code 0", "47" (no ports).
  std::string ToString() const;
};

// A pod as policy sees it.
struct PodInfo {
  std::string namespace_;
  std::string name;
  k8s::Labels labels;
  std::optional<Ipv4Addr> ip;  // none yet: not a peer and no chain
  // A dual-stack pod's IPv6 address (status.podIPs): its traffic in either
  // family is the pod's, matched by the same chains and peer sets.
  std::optional<Ipv6Addr> ipv6;
  std::string node;
  std::vector<k8s::ContainerPort> ports;  // named ports resolve against these
  std::string service_account;            // spec.serviceAccountName ("" = default)
  // Pods outside policy: host-network pods (they are the node) and
  // exclusive-ENI pods (Terway does not enforce policy on them). Neither gets
  // a chain; host-network pods are also never selected as peers.
  bool host_network = false;
  bool exclusive_eni = false;

  std::string Key() const { return namespace_ + "/" + name; }
};

struct NamespaceInfo {
  std::string name;
  k8s::Labels labels;
};

// --- Calico's other inputs (projectcalico.org/v3 and the Kubernetes objects
// Calico reads). The daemon fills them from its caches; the compiler and the
// Calico front end give them Calico's meaning (docs/calico-semantics.md).

// A Tier: policies of lower-order tiers are evaluated first; Pass goes to
// the next tier that applies; a tier whose policies applied but decided
// nothing ends in default_action. Absent order: 1,000,000 (as `default`).
struct TierInfo {
  std::string name;
  std::optional<double> order;
  bool default_action_pass = false;  // spec.defaultAction: Deny (false) or Pass
};
inline constexpr const char* kDefaultTier = "default";
inline constexpr double kDefaultTierOrder = 1000000;

// NetworkSet (namespaced) and GlobalNetworkSet (namespace_ empty): labelled
// address sets that rule selectors match as Calico matches them.
//
// A set that cannot be read whole (a bad CIDR, a malformed spec, a reserved
// label, ...) still takes part, so that a Deny selecting it does not deny
// less: its addresses are unknown (nets empty) and `read` says what is known
// of it. The compiler gives the rules that could select it the safe meaning
// (README "What fails closed").
struct NetworkSetInfo {
  std::string namespace_;  // "" for a GlobalNetworkSet
  std::string name;
  k8s::Labels labels;
  std::vector<Ipv4Cidr> nets;
  std::vector<Ipv6Cidr> nets6;
  enum class Read {
    kAll,      // read whole
    kLabels,   // its labels and namespace, not its addresses
    kScope,    // only its scope (namespace_, or a GlobalNetworkSet): any labels
    kNothing,  // not even its namespace: any labels, any scope
  };
  Read read = Read::kAll;
  // With read != kAll: the error, which names the set (when its metadata
  // could be read) and the field; the compiler's notes quote it.
  std::string unreadable = {};

  bool Readable() const { return read == Read::kAll; }
};

// A ServiceAccount's labels (serviceAccountSelector and
// serviceAccounts.selector match them, as Calico's pcsa.* labels).
struct ServiceAccountInfo {
  std::string namespace_;
  std::string name;
  k8s::Labels labels;
};

// A Service's backends as its EndpointSlices list them (Calico's
// `services` match: backend addresses, and for a destination their ports).
// Kept per slice, as Felix builds its members (serviceindex
// membersFromEndpointSlice): a destination matches a slice's endpoints on
// that slice's ports only. Slices of one Service differ in ports when a
// named targetPort resolves to different numbers on different pods (the
// EndpointSlice controller groups pods by their resolved ports); the union
// of all addresses with all ports would let pod A be reached on pod B's port.
struct ServiceBackends {
  std::string namespace_;
  std::string name;
  struct Port {
    uint8_t protocol = 6;  // IP protocol number; a slice port without one is TCP
    uint16_t port = 0;
    auto operator<=>(const Port&) const = default;
  };
  // The endpoints of the slices that list exactly these ports (slices with
  // the same ports give the same tuples, so they share a group).
  struct PortGroup {
    std::vector<Ipv4Addr> addresses;
    std::vector<Port> ports;  // empty: the slices list no numbered port
    std::vector<Ipv6Addr> addresses6 = {};  // of the IPv6 slices with these ports
  };
  std::vector<PortGroup> groups;

  // Every backend address of every group, sorted, once each (a source
  // `services` match: addresses only).
  std::vector<Ipv4Addr> Addresses() const;
};

// Why (part of) a policy is not enforced as written, and what is enforced
// instead (always the safe side: an Allow that cannot be enforced allows
// nothing; a Deny or Pass that cannot be enforced denies all it could match;
// a policy that cannot be read isolates every pod it could select). The
// daemon turns these into a Warning Event on the policy object, the metric
// terway_policy_fail_closed and `terway-cli policy show`.
struct FailClosed {
  std::string where;        // "spec.ingress[2].source.services", "spec.selector", ...
  std::string why;          // what cannot be enforced exactly, and why
  std::string enforced_as;  // what the kernel does instead
};

// From the typed Kubernetes objects the daemon's caches hold.
PodInfo PodFromK8s(const k8s::Pod& pod);
NamespaceInfo NamespaceFromK8s(const k8s::Namespace& ns);

// A label selector in either dialect. Kubernetes selectors see the object's
// labels; Calico selectors see Calico's view of an endpoint (its labels,
// the projectcalico.org/* labels Calico adds, and the pcns.* / pcsa.*
// labels it inherits from its namespace and service account: see
// endpoint_labels.h), so migrated selectors keep working.
struct EndpointSelector {
  std::optional<k8s::LabelSelector> k8s;  // exactly one of k8s / calico
  std::optional<CalicoSelector> calico;

  static EndpointSelector FromK8s(const k8s::LabelSelectorSpec& spec);
  static EndpointSelector FromCalico(CalicoSelector s);
  bool Matches(const k8s::Labels& plain, const k8s::Labels& calico_view) const;
  std::string Key() const;
};

// A Kubernetes Service named by a Calico rule (`services`).
struct ServiceRef {
  std::string namespace_;
  std::string name;
  std::string Key() const { return namespace_ + "/" + name; }
};

// One peer of a rule (the other end: source for ingress, destination for
// egress). Every constraint present must hold (AND); a peer with none
// matches every address.
struct Peer {
  // Kubernetes: pods whose labels match, in namespaces whose labels match.
  std::optional<EndpointSelector> pods;
  std::optional<EndpointSelector> namespaces;
  // With pod constraints but no namespace selector: the pods' namespace.
  // Empty means every namespace.
  std::string scope_namespace;
  // Calico: the address of an endpoint (pod) or network set whose Calico
  // labels match. Already translated as Calico translates an EntityRule
  // (namespace scope, serviceAccounts, notSelector folded in: section 2.3).
  std::optional<CalicoSelector> selector;
  // Calico notSelector when there is no positive selector: the address of
  // no endpoint or network set whose labels match (unscoped, as Calico).
  std::optional<CalicoSelector> not_selector;
  // Calico services: for a source, the address of a backend of one of
  // them; for a destination, a backend's (address, protocol, port).
  std::optional<std::vector<ServiceRef>> services;
  // The address is in one of nets or nets6 (present: the list of both
  // families; an IPv4 address is in no IPv6 CIDR and the other way round) ...
  std::optional<std::vector<Ipv4Cidr>> nets;
  std::vector<Ipv6Cidr> nets6;  // only with nets present
  std::vector<Ipv4Cidr> not_nets;  // ... and in none of these
  std::vector<Ipv6Cidr> not_nets6;
  // Never matches.
  bool matches_nothing = false;

  bool SelectsPods() const { return pods.has_value() || namespaces.has_value(); }
  // True when it places no constraint at all.
  bool IsAny() const {
    return !matches_nothing && !SelectsPods() && !selector && !not_selector && !services && !nets &&
           not_nets.empty() && not_nets6.empty();
  }
  std::string Key() const;
};

// One port clause. No protocol: any protocol (Calico named ports without a
// rule protocol). first==last==0 and empty name: every port of the protocol.
struct PortSpec {
  std::optional<Protocol> protocol;
  uint16_t first = 0;
  uint16_t last = 0;
  std::string name;  // named port: a container port of the pod at that end
};

// Calico's icmp / notICMP: a type, and a code only with a type.
struct IcmpMatch {
  uint8_t type = 0;
  std::optional<uint8_t> code;
};

struct Rule {
  Action action = Action::kAllow;
  std::vector<Peer> peers;      // OR; empty: any peer
  std::vector<PortSpec> ports;  // destination ports, OR; empty: any protocol and port
  // Calico only: constraints on our own pod (destination of an ingress rule,
  // source of an egress rule), decided per pod at compile time.
  std::optional<Peer> local;
  // Calico only: the rest of a v3 rule (all ANDed with the above).
  std::optional<Protocol> protocol;
  std::optional<Protocol> not_protocol;
  std::optional<IcmpMatch> icmp;
  std::optional<IcmpMatch> not_icmp;
  std::vector<PortSpec> not_ports;         // destination notPorts
  std::vector<PortSpec> source_ports;      // source ports, OR
  std::vector<PortSpec> not_source_ports;  // source notPorts
  // Calico ipVersion (4 or 6): packets of that family only. Protocol ICMP
  // and ICMPv6 by name, and nets of one family, restrict the family by
  // themselves (the kernel's match does), so they need no version here.
  std::optional<int> ip_version;
  // Never matches: an Allow or Log we cannot enforce (fail_closed).
  bool matches_nothing = false;
};

struct Policy {
  enum class Kind { kK8s, kCalico, kCalicoGlobal };
  Kind kind = Kind::kK8s;
  std::string namespace_;  // empty for global policies
  std::string name;
  // Calico: absent order sorts after every ordered policy of the tier.
  std::optional<double> order;
  // Which pods it applies to. Calico: the whole translated selector
  // (namespace, namespaceSelector, serviceAccountSelector included).
  EndpointSelector subject;
  bool applies_ingress = false;
  bool applies_egress = false;
  std::vector<Rule> ingress;
  std::vector<Rule> egress;
  // Calico: spec.tier ("default" when absent; Kubernetes policies always).
  std::string tier = kDefaultTier;
  // What of it is enforced on the safe side instead of as written.
  std::vector<FailClosed> fail_closed;

  // "k8s:ns/name", "calico:ns/name", "global:name": how Explain and the nft
  // comments name it.
  std::string Id() const;
  // Calico's kind name for the equal-order tie-break: NetworkPolicy,
  // GlobalNetworkPolicy, KubernetesNetworkPolicy.
  const char* CalicoKind() const;
};

// Kubernetes policies rank as Calico ranks them.
constexpr double kK8sPolicyOrder = 1000;

}  // namespace terway::policy
