// PolicyCompiler: pods + namespaces + policies (+ Calico's tiers, network
// sets, service accounts and services) -> per-pod, per-direction ordered
// rule lists whose peers are resolved to shared sets. The nft renderer
// programs exactly this model and Explain evaluates exactly this model, so
// what Explain says is what the kernel does.
//
// Evaluation of one direction of one pod, as Calico evaluates a workload
// endpoint (docs/calico-semantics.md 4):
//   - only tiers holding a policy that selects the pod for that direction
//     take part, in tier order (Kubernetes policies: tier `default`, order
//     1000); none: the pod is not isolated in that direction: allow;
//   - in a tier, its policies by (order, then name/namespace/kind), their
//     rules in order: the first matching Allow or Deny decides; Log
//     matches are counted (and logged by the kernel) and evaluation goes
//     on; Pass ends the tier and goes on with the next tier taking part;
//   - a tier that ends with no verdict applies its defaultAction: Deny
//     drops, Pass goes on to the next tier;
//   - past the last tier the pod's profile decides, and the Kubernetes
//     namespace profile allows.
// A connection needs the source pod's egress and the destination pod's
// ingress to allow it; replies of allowed connections pass (conntrack).
#pragma once

#include <compare>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/ip_ranges.h"
#include "policy/model.h"

namespace terway::policy {

struct PolicyInputs {
  std::vector<PodInfo> pods;
  std::vector<NamespaceInfo> namespaces;
  std::vector<Policy> policies;
  // Node name -> its addresses. Traffic from a pod's own node is always
  // allowed: the kernel sends it through the output hook, which we never
  // filter; Explain answers the same from these addresses.
  std::map<std::string, std::vector<Ipv4Addr>> node_ips;
  // Calico's other objects (see model.h); empty when the cluster has none.
  // A tier named by a policy but absent here sorts after every tier and
  // denies at its end (as Felix does); `default` is at order 1,000,000
  // with defaultAction Deny unless given here.
  std::vector<TierInfo> tiers;
  std::vector<NetworkSetInfo> network_sets;
  std::vector<ServiceAccountInfo> service_accounts;
  std::vector<ServiceBackends> services;
};

// A pod's addresses as set keys: its IPv4, and its IPv6 when dual stack
// (none before it has an IPv4: such a pod is no peer and has no chain).
std::vector<IpKey> AddressesOf(const PodInfo& p);

struct CompileOptions {
  // Only pods on this node get chains (all pods are still peers). Empty:
  // every pod (tests, and a cluster-wide Explain).
  std::string node;
};

// (address, protocol, port): an element of a named-port or service set.
struct AddressPortTuple {
  IpKey address = 0;  // ip_ranges.h: IPv4 at its IPv4-mapped key
  uint8_t protocol = 0;
  uint16_t port = 0;
  auto operator<=>(const AddressPortTuple&) const = default;
};

// A set the rules reference: addresses (nft interval set of ipv4_addr,
// named s_<hash>), or (address, protocol, port) tuples (nft set of
// ipv4_addr . inet_proto . inet_service, named t_<hash>) for named ports
// and Calico services.
struct IpSet {
  std::string name;  // stable across compiles: a hash of key
  std::string key;   // what it was built from
  IpRangeSet addresses;
  bool is_tuples = false;
  std::set<AddressPortTuple> tuples;
  bool Contains(IpKey a) const { return addresses.Contains(a); }
  bool Contains(IpKey a, Protocol p, uint16_t port) const { return tuples.count({a, p.number(), port}) > 0; }
};

using PortRanges = std::vector<std::pair<uint16_t, uint16_t>>;  // inclusive

// One alternative of a compiled rule's layer-4 match: every term present
// must hold. A rule's alternatives are disjoint (a packet matches at most
// one), so the kernel counts and logs a packet once, as Explain does.
// Port ranges only ever appear with a protocol that has ports.
struct PortMatch {
  std::optional<Protocol> protocol;     // none: any protocol ...
  std::vector<Protocol> not_protocols;  // ... but these
  std::optional<uint8_t> icmp_type;     // ICMP terms imply protocol ICMP
  std::optional<uint8_t> icmp_code;
  std::optional<uint8_t> not_icmp_type;
  std::optional<uint8_t> not_icmp_code;
  PortRanges ranges;             // destination port in one (empty: any)
  PortRanges not_ranges;         // destination port in none
  PortRanges source_ranges;      // source port in one (empty: any)
  PortRanges not_source_ranges;  // source port in none
  // (peer address, protocol, peer's port) in this tuple set: the peer's
  // port is the destination port for egress, the source port for ingress.
  std::optional<size_t> tuple_set;
  bool Matches(const std::vector<IpSet>& sets, Direction d, IpKey peer, const Packet& pkt) const;
};

struct CompiledRule {
  size_t policy = 0;  // index into CompiledPolicy::policies()
  Direction direction = Direction::kIngress;
  size_t rule_index = 0;  // index in the policy's ingress/egress list
  Action action = Action::kAllow;
  std::optional<size_t> peer_set;      // the peer's address is in it (none: any)
  std::optional<size_t> peer_not_set;  // ... and not in this one
  std::vector<size_t> tuple_sets;      // (peer address, protocol, peer port) in each
  std::vector<size_t> not_tuple_sets;  // ... and in none of these
  std::vector<PortMatch> ports;        // OR (disjoint); empty: any protocol and port
  std::string counter;                 // nft named counter: c<hash of identity>
  // Packets of this IP family only (4 or 6): Calico's ipVersion, or a local
  // side (nets, notSelector) that admits only one of a dual-stack pod's
  // addresses. None: both.
  std::optional<int> ip_version;
  bool Matches(const std::vector<IpSet>& sets, IpKey peer, const Packet& pkt) const;
};

// One tier's share of a pod's chain: the rules of its policies that select
// the pod, then the tier's default action. Each is one nft chain; Pass and
// a Pass default action continue in the next part's chain.
struct TierPart {
  std::string tier;
  std::string chain;  // the first part's chain is the PodChain's `name`
  bool default_pass = false;
  bool known = true;  // false: no such Tier among the inputs (ends in deny)
  size_t first_rule = 0;  // its rules: PodChain::rules[first_rule, end_rule)
  size_t end_rule = 0;
  std::vector<size_t> policies;  // selecting policies, in evaluation order
};

struct PodChain {
  size_t pod = 0;
  Direction direction = Direction::kIngress;
  std::string name;              // nft chain name (the map jumps here)
  std::vector<size_t> policies;  // selecting policies, in evaluation order
  std::vector<CompiledRule> rules;
  std::vector<TierPart> tiers;  // in tier order; at least one
};

struct Decision {
  bool allowed = true;
  // False when this model does not hold the pod's chain (it runs on another
  // node, compiled there): `allowed` then only means "not decided here".
  bool evaluated = true;
  bool isolated = false;  // some policy selects the pod in this direction
  std::optional<size_t> policy;
  std::optional<size_t> rule_index;
  Action action = Action::kAllow;
  std::string counter;
  std::vector<std::string> logged;  // Log rules that matched on the way
  std::vector<std::string> passed;  // tiers left by a Pass (rule or default action)
  std::string tier;                 // the tier that decided ("": none, or the profile)
  std::string reason;
};

struct Explanation {
  bool allowed = true;
  Decision egress;   // of the source pod
  Decision ingress;  // of the destination pod
  std::string summary;
  std::string ToString() const;
};

class CompiledPolicy {
 public:
  const std::vector<Policy>& policies() const { return policies_; }
  const std::vector<PodInfo>& pods() const { return pods_; }
  const std::vector<IpSet>& sets() const { return sets_; }
  const std::vector<PodChain>& chains() const { return chains_; }

  std::optional<size_t> FindPod(const std::string& ns_slash_name) const;
  std::optional<size_t> FindPodByIp(IpKey ip) const;
  std::optional<size_t> FindPodByIp(Ipv4Addr ip) const { return FindPodByIp(KeyOf(ip)); }
  const PodChain* Chain(size_t pod, Direction d) const;

  // One direction of one pod against the other end's address (of either
  // family: the packet is of that family).
  Decision Evaluate(size_t pod, Direction d, IpKey peer, const Packet& packet) const;
  Decision Evaluate(size_t pod, Direction d, Ipv4Addr peer, const Packet& packet) const {
    return Evaluate(pod, d, KeyOf(peer), packet);
  }
  Decision Evaluate(size_t pod, Direction d, const Ipv6Addr& peer, const Packet& packet) const {
    return Evaluate(pod, d, KeyOf(peer), packet);
  }
  Decision Evaluate(size_t pod, Direction d, Ipv4Addr peer, Protocol proto, uint16_t port) const {
    return Evaluate(pod, d, peer, Packet::Of(proto, port));
  }
  // from/to: "namespace/name" of a pod, or an IPv4 or IPv6 address. The
  // packet is IPv6 when either end is an IPv6 address (pods then stand at
  // their IPv6 address) or packet.ip_version is 6; else IPv4.
  Result<Explanation> Explain(const std::string& from, const std::string& to, const Packet& packet) const;
  Result<Explanation> Explain(const std::string& from, const std::string& to, Protocol proto, uint16_t port) const {
    return Explain(from, to, Packet::Of(proto, port));
  }
  // "Allow by k8s:x/p ingress[0]" style name of a compiled rule.
  std::string DescribeRule(const CompiledRule& r) const;

 private:
  friend class PolicyCompiler;
  // In evaluation order: by tier, then order, then Calico's tie-break.
  // Copies of the inputs, with the compiler's own fail_closed notes added
  // (a tier that does not exist): read the notes from here.
  std::vector<Policy> policies_;
  std::vector<PodInfo> pods_;
  std::vector<IpSet> sets_;
  std::vector<PodChain> chains_;
  std::map<std::string, std::vector<Ipv4Addr>> node_ips_;
  std::unordered_map<std::string, size_t> pod_by_key_;
  std::map<IpKey, size_t> pod_by_ip_;  // both families
  std::map<std::pair<size_t, int>, size_t> chain_index_;
  std::string local_node_;
};

class PolicyCompiler {
 public:
  explicit PolicyCompiler(CompileOptions options = {}) : options_(std::move(options)) {}
  CompiledPolicy Compile(PolicyInputs inputs) const;

 private:
  CompileOptions options_;
};

}  // namespace terway::policy
