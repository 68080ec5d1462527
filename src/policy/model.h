// The policy model both front ends feed: Kubernetes networking.k8s.io/v1
// NetworkPolicy (k8s_policy.h) and Calico projectcalico.org/v3
// NetworkPolicy / GlobalNetworkPolicy (calico_policy.h) become `Policy`,
// evaluated in one ordered tier (Calico's default tier, where Kubernetes
// policies sit at order 1000). The compiler turns it into per-pod rule lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "k8s/selector.h"
#include "k8s/types.h"
#include "policy/calico_selector.h"

namespace terway::policy {

enum class Protocol { kTCP, kUDP, kSCTP, kICMP };
enum class Action { kAllow, kDeny, kLog, kPass };
enum class Direction { kIngress, kEgress };

const char* ProtocolName(Protocol p);  // "TCP", "UDP", "SCTP", "ICMP"
Result<Protocol> ParseProtocol(std::string_view text);  // case-insensitive
const char* ActionName(Action a);
const char* DirectionName(Direction d);

// A pod as policy sees it.
struct PodInfo {
  std::string namespace_;
  std::string name;
  k8s::Labels labels;
  std::optional<Ipv4Addr> ip;  // none yet: not a peer and no chain
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
struct NetworkSetInfo {
  std::string namespace_;  // "" for a GlobalNetworkSet
  std::string name;
  k8s::Labels labels;
  std::vector<Ipv4Cidr> nets;
  bool has_ipv6 = false;  // IPv6 nets, which this IPv4 datapath never sees
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
struct ServiceBackends {
  std::string namespace_;
  std::string name;
  std::vector<Ipv4Addr> addresses;
  struct Port {
    uint8_t protocol = 6;  // IP protocol number; a slice port without one is TCP
    uint16_t port = 0;
  };
  std::vector<Port> ports;
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
// labels; Calico selectors also see the labels Calico adds
// (projectcalico.org/namespace and /orchestrator on pods,
// projectcalico.org/name on namespaces), so migrated selectors keep working.
struct EndpointSelector {
  std::optional<k8s::LabelSelector> k8s;  // exactly one of k8s / calico
  std::optional<CalicoSelector> calico;

  static EndpointSelector FromK8s(const k8s::LabelSelectorSpec& spec);
  static EndpointSelector FromCalico(CalicoSelector s);
  bool Matches(const k8s::Labels& plain, const k8s::Labels& calico_view) const;
  std::string Key() const;
};

// One peer of a rule (the other end: source for ingress, destination for
// egress). Every constraint present must hold (AND); a peer with none
// matches every address.
struct Peer {
  std::optional<EndpointSelector> pods;        // pods whose labels match
  std::optional<EndpointSelector> namespaces;  // ... in namespaces whose labels match
  // With pod constraints but no namespace selector: the pods' namespace.
  // Empty means every namespace (Calico GlobalNetworkPolicy).
  std::string scope_namespace;
  std::optional<std::vector<Ipv4Cidr>> nets;  // the address is in one of these
  std::vector<Ipv4Cidr> not_nets;             // ... and in none of these
  // IPv6 CIDRs cannot match our IPv4 pod traffic; a peer made only of them
  // matches nothing (rather than everything).
  bool matches_nothing = false;

  bool SelectsPods() const { return pods.has_value() || namespaces.has_value(); }
  std::string Key() const;
};

// One port clause. No protocol: any protocol (Calico rules without one).
// first==last==0 and empty name: every port of the protocol.
struct PortSpec {
  std::optional<Protocol> protocol;
  uint16_t first = 0;
  uint16_t last = 0;
  std::string name;  // named port, resolved on the destination pod
};

struct Rule {
  Action action = Action::kAllow;
  std::vector<Peer> peers;      // OR; empty: any peer
  std::vector<PortSpec> ports;  // OR; empty: any protocol and port
  // Calico only: constraints on our own pod (destination of an ingress rule,
  // source of an egress rule), decided per pod at compile time.
  std::optional<Peer> local;
};

struct Policy {
  enum class Kind { kK8s, kCalico, kCalicoGlobal };
  Kind kind = Kind::kK8s;
  std::string namespace_;  // empty for global policies
  std::string name;
  // Calico: absent order sorts after every ordered policy.
  std::optional<double> order;
  EndpointSelector subject;                           // which pods it applies to
  std::optional<EndpointSelector> subject_namespaces;  // GlobalNetworkPolicy namespaceSelector
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
};

// Kubernetes policies rank as Calico ranks them.
constexpr double kK8sPolicyOrder = 1000;

}  // namespace terway::policy
