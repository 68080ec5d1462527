// The policy controller's inputs, and the pure decisions on them: what the
// API's objects become for the compiler (PolicySources -> PolicyInputs),
// and which changes of them can change policy. Unit-tested without an API.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/ip.h"
#include "daemon/policy_fail_closed.h"
#include "k8s/types.h"
#include "policy/compiler.h"

namespace terway::daemon {

// Which of Calico's APIs a cluster serves (checked once at start).
enum class CalicoApi { kNone, kV3, kCrdV1 };
const char* CalicoApiName(CalicoApi a);

// A crd.projectcalico.org/v1 policy as the v3 API would show it: Calico
// stores default-tier policies as "default.<name>". Other objects unchanged.
k8s::Json CalicoCrdToV3(const k8s::Json& crd);

struct PolicySources {
  std::vector<k8s::Pod> pods;  // all pods of the cluster
  std::vector<k8s::Namespace> namespaces;
  std::vector<k8s::Node> nodes;
  std::vector<k8s::NetworkPolicy> network_policies;
  // NetworkPolicies whose spec did not parse: enforced on the safe side.
  std::vector<k8s::ObjectOrError<k8s::NetworkPolicy>> unreadable_network_policies;
  // Calico's objects as the API stores them: projectcalico.org/v3, or with
  // kCrdV1 the crd.projectcalico.org/v1 objects (policies are read as v3
  // here, CalicoCrdToV3; their Events name the stored object).
  CalicoApi calico_api = CalicoApi::kV3;
  std::vector<k8s::Json> calico_policies;  // NetworkPolicy or GlobalNetworkPolicy, kind set
  std::vector<k8s::Json> tiers;
  std::vector<k8s::Json> network_sets;
  std::vector<k8s::Json> global_network_sets;
  std::vector<k8s::ServiceAccount> service_accounts;
  std::vector<k8s::EndpointSlice> endpoint_slices;
  // This node: pods on it take their address from `local_ips` (what terwayd
  // allocated, keyed "ns/name"), never from the API.
  std::string node_name;
  std::map<std::string, Ipv4Addr> local_ips;
  // Their IPv6 addresses when dual stack. A local pod in local_ips but not
  // here takes its IPv6 from status.podIPs (until every ADD passes its
  // IPv6 to PodStarting, that is the only source; the status is written
  // from the CNI result, so it lags but names the pod's own address).
  std::map<std::string, Ipv6Addr> local_ips6;
  std::vector<Ipv4Addr> node_ips;  // this node's own addresses
};

struct BuiltInputs {
  policy::PolicyInputs inputs;
  // Objects that could not be read, one line each ("networkset x/name:
  // why"): a Tier with an unknown defaultAction takes no part (its policies
  // fail closed); a NetworkSet with a bad CIDR takes part with unknown
  // addresses (the rules that could select it fail closed). Never
  // policies: those are enforced on the safe side instead.
  std::vector<std::string> rejected;
  // Where each policy came from (its Event goes there).
  PolicyObjects policy_objects;
};
// Every policy is fed to the compiler: one that cannot be read (the object,
// a selector, a field), or whose tier cannot be read, as the fail-closed
// policy of src/policy (FailClosedK8sPolicy, FailClosedCalicoPolicy), which
// isolates its pods.
BuiltInputs BuildPolicyInputs(const PolicySources& s);

// Whether an update of these objects can change policy: EndpointSlices by
// their Service, addresses and ports (not readiness, which Calico ignores
// and which churns); ServiceAccounts by labels; Calico's Tiers and network
// sets by labels or spec.
bool EndpointSliceChangeMatters(const k8s::EndpointSlice& before, const k8s::EndpointSlice& after);
bool CalicoObjectChangeMatters(const k8s::RawObject& before, const k8s::RawObject& after);

// Whether a pod change can change policy (labels, IPs, node, ports,
// host network, existence); status churn such as conditions cannot.
bool PodChangeMatters(const k8s::Pod& before, const k8s::Pod& after);

}  // namespace terway::daemon
