// PolicyCompiler: pods + namespaces + policies -> per-pod, per-direction
// ordered rule lists whose peers are resolved to shared IP sets. The nft
// renderer programs exactly this model and Explain evaluates exactly this
// model, so what Explain says is what the kernel does.
//
// Evaluation of one direction of one pod (Calico's default tier, which also
// holds the Kubernetes policies at order 1000):
//   - policies that select the pod for that direction, by (order, id);
//     none: the pod is not isolated in that direction and everything passes;
//   - their rules in order; the first matching Allow or Deny decides; Log
//     matches are counted (and logged by the kernel) and evaluation goes on;
//     Pass ends the tier: the pod's profile decides, and the Kubernetes
//     namespace profile allows (we implement one tier, so Pass == allow
//     after skipping every later policy, Kubernetes ones included);
//   - no rule matched: deny.
// A connection needs the source pod's egress and the destination pod's
// ingress to allow it; replies of allowed connections pass (conntrack).
#pragma once

#include <map>
#include <optional>
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
  std::vector<TierInfo> tiers;
  std::vector<NetworkSetInfo> network_sets;
  std::vector<ServiceAccountInfo> service_accounts;
  std::vector<ServiceBackends> services;
};

struct CompileOptions {
  // Only pods on this node get chains (all pods are still peers). Empty:
  // every pod (tests, and a cluster-wide Explain).
  std::string node;
};

struct IpSet {
  std::string name;  // nft set name: s_<hash of key>, stable across compiles
  std::string key;   // the peer definition it was built from
  Ipv4RangeSet addresses;
};

struct PortMatch {
  std::optional<Protocol> protocol;  // none: any protocol (then all_ports)
  bool all_ports = false;
  std::vector<std::pair<uint16_t, uint16_t>> ranges;  // inclusive
  bool Matches(Protocol p, uint16_t port) const;
};

struct CompiledRule {
  size_t policy = 0;  // index into CompiledPolicy::policies()
  Direction direction = Direction::kIngress;
  size_t rule_index = 0;  // index in the policy's ingress/egress list
  Action action = Action::kAllow;
  std::optional<size_t> peer_set;  // none: any address
  std::vector<PortMatch> ports;    // empty: any protocol and port
  std::string counter;             // nft named counter: c<hash of identity>
  bool Matches(const std::vector<IpSet>& sets, Ipv4Addr peer, Protocol p, uint16_t port) const;
};

struct PodChain {
  size_t pod = 0;
  Direction direction = Direction::kIngress;
  std::string name;                    // nft chain name
  std::vector<size_t> policies;        // selecting policies, in evaluation order
  std::vector<CompiledRule> rules;
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
  std::optional<size_t> FindPodByIp(Ipv4Addr ip) const;
  const PodChain* Chain(size_t pod, Direction d) const;

  // One direction of one pod against the other end's address.
  Decision Evaluate(size_t pod, Direction d, Ipv4Addr peer, Protocol proto, uint16_t port) const;
  // from/to: "namespace/name" of a pod or an IPv4 address.
  Result<Explanation> Explain(const std::string& from, const std::string& to, Protocol proto, uint16_t port) const;
  // "Allow by k8s:x/p ingress[0]" style name of a compiled rule.
  std::string DescribeRule(const CompiledRule& r) const;

 private:
  friend class PolicyCompiler;
  std::vector<Policy> policies_;  // sorted by (order, id)
  std::vector<PodInfo> pods_;
  std::vector<IpSet> sets_;
  std::vector<PodChain> chains_;
  std::map<std::string, std::vector<Ipv4Addr>> node_ips_;
  std::unordered_map<std::string, size_t> pod_by_key_;
  std::map<uint32_t, size_t> pod_by_ip_;
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
