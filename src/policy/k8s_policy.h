// networking.k8s.io/v1 NetworkPolicy -> Policy.
#pragma once

#include "k8s/types.h"
#include "policy/model.h"

namespace terway::policy {

// policyTypes: as written if present (an explicit list wins); otherwise
// Ingress, plus Egress when egress rules exist. All rules are Allow; the
// policy sits at order 1000. Fails naming the field on a bad selector
// operator, CIDR, protocol or port.
Result<Policy> PolicyFromK8s(const k8s::NetworkPolicy& np);

// The policy a NetworkPolicy becomes when PolicyFromK8s refuses it (`why`):
// it isolates its podSelector's pods (every pod of its namespace when the
// selector is unreadable) for its policyTypes (both when unreadable) and
// denies all their traffic at order 1000, with one FailClosed note.
Policy FailClosedK8sPolicy(const k8s::NetworkPolicy& np, const Error& why);
Policy K8sPolicyOrFailClosed(const k8s::NetworkPolicy& np);

}  // namespace terway::policy
