// projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy (JSON, as the
// API or calicoctl serve them) -> Policy.
//
// Supported: spec.order, selector, namespaceSelector (global), types,
// ingress/egress rules with action Allow/Deny/Log/Pass, protocol
// (TCP/UDP/SCTP/ICMP, names or numbers 6/17/132/1), ipVersion 4,
// source/destination selector, namespaceSelector, nets, notNets, and
// destination ports (numbers, "80:90" ranges, names). Fields we cannot
// enforce (notProtocol, notPorts, notSelector, source ports,
// serviceAccountSelector, services, http, icmp, doNotTrack, preDNAT,
// applyOnForward) fail the policy with an error naming the field, so a
// policy is never enforced half-understood.
#pragma once

#include <nlohmann/json.hpp>

#include "policy/model.h"

namespace terway::policy {

Result<Policy> PolicyFromCalico(const nlohmann::json& object);

}  // namespace terway::policy
