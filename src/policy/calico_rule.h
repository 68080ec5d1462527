// One projectcalico.org/v3 rule (spec.ingress[i] / spec.egress[i]) read,
// validated as Calico's validator validates it, and translated into the
// model as Calico translates it for Felix (docs/calico-semantics.md 2).
// Internal to calico_policy.cc; pure.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/model.h"

namespace terway::policy {

struct CalicoRuleContext {
  Policy::Kind kind = Policy::Kind::kCalico;
  std::string policy_namespace;  // a NetworkPolicy's namespace; "" for a GlobalNetworkPolicy
  Direction direction = Direction::kIngress;
  std::string field;  // "spec.ingress[2]"
};

// Invalid input: an error naming the field. What is valid but cannot be
// enforced exactly (http, fields this engine does not know) is enforced on
// the safe side and recorded in *notes: an Allow allows nothing, a Log is
// dropped, a Deny or Pass drops the criterion and so matches more.
Result<Rule> ReadCalicoRule(const nlohmann::json& rule, const CalicoRuleContext& ctx, std::vector<FailClosed>* notes);

// A Calico protocol: a name exactly as Calico writes it (TCP, UDP, ICMP,
// ICMPv6, SCTP, UDPLite) or a number 1-255, also as a numeric string.
Result<Protocol> ReadCalicoProtocol(const nlohmann::json& value, const std::string& field);

// A selector field, or nullopt when absent or empty. global() is refused
// unless `global_allowed` (only an EntityRule's namespaceSelector), and
// then only as the whole expression.
Result<std::optional<CalicoSelector>> ReadCalicoSelector(const nlohmann::json& obj, const char* key,
                                                         const std::string& field, bool global_allowed = false);

// namespaceSelector as Calico evaluates it on endpoints: all() = any
// namespaced endpoint, global() = only non-namespaced ones, else the
// expression over the endpoint's pcns.* labels.
CalicoSelector NamespaceScope(const CalicoSelector& namespace_selector);

}  // namespace terway::policy
