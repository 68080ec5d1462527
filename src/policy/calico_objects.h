// Calico's other inputs as the API serves them -> the model's TierInfo,
// NetworkSetInfo, ServiceAccountInfo and ServiceBackends (model.h), and the
// words terwayd uses to say what a policy enforces on the safe side. Pure:
// the daemon's caches feed these, the compiler gives them meaning.
//
// Shapes (docs/calico-semantics.md sections 2.5, 4, 5, 10): projectcalico.org/v3
// Tier, NetworkSet and GlobalNetworkSet, and the crd.projectcalico.org/v1
// objects Calico stores them as without its API server (same spec, same
// names); Kubernetes ServiceAccount and discovery.k8s.io/v1 EndpointSlice.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "k8s/types.h"
#include "policy/model.h"

namespace terway::policy {

// NetworkSet (namespaced) and GlobalNetworkSet (cluster-wide: no
// namespace). The caller says which, from the collection it listed: items of
// a list need not carry their kind. spec.nets: IPv4 and IPv6 CIDRs or bare
// addresses (/32, /128); IPv6 ones set has_ipv6 (this datapath never sees
// them). An entry that is not an address, or the label Calico reserves for
// itself (projectcalico.org/namespace), is an error naming the set and field.
Result<NetworkSetInfo> NetworkSetFromCalico(const nlohmann::json& object);
Result<NetworkSetInfo> GlobalNetworkSetFromCalico(const nlohmann::json& object);
// The same, always giving a set: one that cannot be read whole comes back
// with no addresses, `read` saying what was read (its labels, only its
// scope, nothing) and `unreadable` the error above. The daemon feeds these
// to the compiler, which enforces the rules that could select such a set on
// the safe side, instead of dropping the set (a Deny selecting it would
// then deny less).
NetworkSetInfo NetworkSetOrUnreadable(const nlohmann::json& object);
NetworkSetInfo GlobalNetworkSetOrUnreadable(const nlohmann::json& object);

// Tier: spec.order (a number; absent = 1,000,000, as Calico's API defaults
// it since v3.29, the same as tier `default`) and spec.defaultAction (Deny
// when absent, or Pass). Anything else is an error naming the tier.
Result<TierInfo> TierFromCalico(const nlohmann::json& object);

ServiceAccountInfo ServiceAccountFromK8s(const k8s::ServiceAccount& sa);

// Each Service's backends from its EndpointSlices (label
// kubernetes.io/service-name; slices without it belong to no Service and are
// skipped), per slice as Felix pairs them: a slice's endpoint addresses
// (ready or not: Calico does not look at readiness) with that slice's ports
// that have a number, as (IP protocol, port) with TCP when the slice names
// no protocol; a port without a number contributes nothing. Slices listing
// the same ports share one group (the same tuples); groups come sorted by
// ports, addresses sorted and once each; Services sorted by
// namespace/name. IPv6 slices add their addresses to `addresses6` (a
// dual-stack Service has a slice per family). FQDN slices, and slices
// without endpoints, add nothing but the Service still exists.
std::vector<ServiceBackends> ServicesFromEndpointSlices(const std::vector<k8s::EndpointSlice>& slices);

// --- Telling users what is enforced on the safe side (Policy::fail_closed);
// `terway-cli policy show` lists them itself (policy_show.h).

// "spec.ingress[0].http: <why>; enforced as: <enforced_as>".
std::string DescribeFailClosed(const FailClosed& f);

// The message of the Warning Event on the policy object: every entry, the
// message cut at max_bytes (on an entry boundary when one fits) with a
// pointer to `terway-cli policy show`, which lists them all.
inline constexpr size_t kEventMessageLimit = 1024;
std::string FailClosedMessage(const std::vector<FailClosed>& entries, size_t max_bytes = kEventMessageLimit);

}  // namespace terway::policy
