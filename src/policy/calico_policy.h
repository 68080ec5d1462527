// projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy (JSON, as the
// API or calicoctl serve them) -> Policy, with Calico's meaning
// (docs/calico-semantics.md; choices on its open questions in README.md).
//
// Every field of the v3 reference that applies to workload endpoints is
// read: tier, order, selector, namespaceSelector (global),
// serviceAccountSelector, types (defaulted as Calico defaults them),
// doNotTrack / preDNAT / applyOnForward (host endpoints only: a policy with
// doNotTrack or preDNAT applies to no pod, as in Felix), performanceHints,
// and every rule field (calico_rule.h). Input Calico's validator refuses is
// an error naming the field. What is valid but cannot be enforced exactly
// is enforced on the safe side and listed in Policy::fail_closed.
#pragma once

#include <nlohmann/json.hpp>

#include "policy/model.h"

namespace terway::policy {

Result<Policy> PolicyFromCalico(const nlohmann::json& object);

// The policy a Calico policy object becomes when it cannot be read at all
// (PolicyFromCalico failed with `why`): nothing is dropped whole, since a
// dropped policy fails open. It isolates the widest scope it can determine
// -- the parts of its selector that parse (spec.selector,
// namespaceSelector, serviceAccountSelector; a part that does not parse
// is left out, which widens it), so with no readable selector every pod of
// its namespace (NetworkPolicy) or every pod (GlobalNetworkPolicy) -- for
// the types it declares (defaulted from its rule lists when absent; both
// when unreadable), and denies all their traffic at its place in the
// order: its tier and order when readable (tier `default` otherwise; an
// unreadable order sorts first in the tier, since the policy could have
// been anywhere). One FailClosed note carries `why`.
Policy FailClosedCalicoPolicy(const nlohmann::json& object, const Error& why);

// PolicyFromCalico, or the fail-closed policy when it fails: what the
// daemon feeds the compiler for every Calico policy object.
Policy CalicoPolicyOrFailClosed(const nlohmann::json& object);

}  // namespace terway::policy
