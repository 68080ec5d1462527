#include "policy/k8s_policy.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::policy {

namespace {

Status CheckSelector(const k8s::LabelSelectorSpec& spec, const std::string& field) {
  // k8s::LabelSelector::FromSpec reads an unknown operator as Exists; a
  // selector we misread would select the wrong pods, so refuse it here.
  for (const auto& e : spec.match_expressions) {
    if (e.op != "In" && e.op != "NotIn" && e.op != "Exists" && e.op != "DoesNotExist") {
      return Errorf(ErrorCode::kInvalidArgument, "{}: unknown matchExpressions operator \"{}\"", field, e.op);
    }
    if ((e.op == "In" || e.op == "NotIn") && e.values.empty()) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: operator {} needs values", field, e.op);
    }
  }
  return Ok();
}

Result<Peer> ConvertPeer(const k8s::NetworkPolicyPeer& in, const std::string& ns, const std::string& field) {
  Peer p;
  if (in.ip_block) {
    if (in.pod_selector || in.namespace_selector) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: ipBlock cannot be combined with selectors", field);
    }
    auto v4 = Ipv4Cidr::Parse(in.ip_block->cidr, true);
    if (!v4.ok()) {
      auto v6 = Ipv6Cidr::Parse(in.ip_block->cidr);
      if (!v6.ok()) {
        return Errorf(ErrorCode::kInvalidArgument, "{}.ipBlock.cidr: \"{}\" is not a CIDR", field, in.ip_block->cidr);
      }
      // An IPv6 block: no IPv4 address is in it (nets present, no IPv4 net).
      p.nets = std::vector<Ipv4Cidr>{};
      p.nets6 = {*v6};
    } else {
      // Host bits are tolerated as the API server tolerates them; the block
      // is the network they belong to.
      p.nets = std::vector<Ipv4Cidr>{Ipv4Cidr(Ipv4Addr(v4->network().value() & v4->mask()), v4->prefix_len())};
    }
    for (const auto& e : in.ip_block->except) {
      auto x = Ipv4Cidr::Parse(e, true);
      if (!x.ok()) {
        auto x6 = Ipv6Cidr::Parse(e);
        if (!x6.ok()) return Errorf(ErrorCode::kInvalidArgument, "{}.ipBlock.except: \"{}\" is not a CIDR", field, e);
        p.not_nets6.push_back(*x6);
        continue;
      }
      p.not_nets.push_back(Ipv4Cidr(Ipv4Addr(x->network().value() & x->mask()), x->prefix_len()));
    }
    return p;
  }
  if (!in.pod_selector && !in.namespace_selector) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: a peer needs podSelector, namespaceSelector or ipBlock", field);
  }
  // podSelector alone: pods of the policy's namespace. namespaceSelector
  // alone: every pod of the selected namespaces (an empty one: all
  // namespaces). Both: pods matching podSelector within those namespaces.
  if (in.pod_selector) {
    TERWAY_TRY(CheckSelector(*in.pod_selector, field + ".podSelector"));
    p.pods = EndpointSelector::FromK8s(*in.pod_selector);
  } else {
    p.pods = EndpointSelector::FromK8s({});
  }
  if (in.namespace_selector) {
    TERWAY_TRY(CheckSelector(*in.namespace_selector, field + ".namespaceSelector"));
    p.namespaces = EndpointSelector::FromK8s(*in.namespace_selector);
  } else {
    p.scope_namespace = ns;
  }
  return p;
}

Result<std::vector<Rule>> ConvertRules(const std::vector<k8s::NetworkPolicyRule>& rules, const std::string& ns,
                                       const std::string& field, const char* peers_key) {
  std::vector<Rule> out;
  for (size_t i = 0; i < rules.size(); i++) {
    std::string rf = fmt::format("{}[{}]", field, i);
    Rule r;
    r.action = Action::kAllow;
    for (size_t j = 0; j < rules[i].peers.size(); j++) {
      TERWAY_ASSIGN_OR_RETURN(Peer p, ConvertPeer(rules[i].peers[j], ns, fmt::format("{}.{}[{}]", rf, peers_key, j)));
      r.peers.push_back(std::move(p));
    }
    for (size_t j = 0; j < rules[i].ports.size(); j++) {
      const auto& in = rules[i].ports[j];
      std::string pf = fmt::format("{}.ports[{}]", rf, j);
      PortSpec ps;
      // Kubernetes names TCP, UDP and SCTP only (never numbers).
      auto proto = ParseProtocol(in.protocol);
      if (!proto.ok() || !proto->HasPorts() || std::isdigit(static_cast<unsigned char>(in.protocol[0]))) {
        return Errorf(ErrorCode::kInvalidArgument, "{}.protocol: \"{}\" (want TCP, UDP or SCTP)", pf, in.protocol);
      }
      ps.protocol = *proto;
      if (in.port) {
        if (in.port->is_string) {
          if (in.end_port) return Errorf(ErrorCode::kInvalidArgument, "{}: endPort needs a numeric port", pf);
          ps.name = in.port->str_value;
        } else {
          int32_t first = in.port->int_value, last = in.end_port.value_or(first);
          if (first < 1 || first > 65535 || last < first || last > 65535) {
            return Errorf(ErrorCode::kInvalidArgument, "{}: bad port range {}-{}", pf, first, last);
          }
          ps.first = static_cast<uint16_t>(first);
          ps.last = static_cast<uint16_t>(last);
        }
      } else if (in.end_port) {
        return Errorf(ErrorCode::kInvalidArgument, "{}: endPort without port", pf);
      }
      r.ports.push_back(std::move(ps));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<Policy> PolicyFromK8s(const k8s::NetworkPolicy& np) {
  std::string ctx = "NetworkPolicy " + np.metadata.Key();
  Policy p;
  p.kind = Policy::Kind::kK8s;
  p.namespace_ = np.metadata.namespace_;
  p.name = np.metadata.name;
  p.order = kK8sPolicyOrder;
  TERWAY_TRY_CTX(CheckSelector(np.pod_selector, "spec.podSelector"), ctx);
  p.subject = EndpointSelector::FromK8s(np.pod_selector);
  if (np.policy_types.empty() || np.policy_types_defaulted) {
    // The API server's defaulting: Ingress always, Egress only with egress rules.
    p.applies_ingress = true;
    p.applies_egress = !np.egress.empty();
  } else {
    for (const auto& t : np.policy_types) {
      if (t == "Ingress") p.applies_ingress = true;
      else if (t == "Egress") p.applies_egress = true;
      else return Errorf(ErrorCode::kInvalidArgument, "spec.policyTypes: unknown type \"{}\"", t).Wrap(ctx);
    }
  }
  // Rules of a direction the policy does not apply to are ignored, as in
  // Kubernetes (they could never take effect).
  if (p.applies_ingress) {
    TERWAY_ASSIGN_OR_RETURN_CTX(p.ingress, ConvertRules(np.ingress, p.namespace_, "spec.ingress", "from"), ctx);
  }
  if (p.applies_egress) {
    TERWAY_ASSIGN_OR_RETURN_CTX(p.egress, ConvertRules(np.egress, p.namespace_, "spec.egress", "to"), ctx);
  }
  return p;
}

Policy FailClosedK8sPolicy(const k8s::NetworkPolicy& np, const Error& why) {
  Policy p;
  p.kind = Policy::Kind::kK8s;
  p.namespace_ = np.metadata.namespace_;
  p.name = np.metadata.name;
  p.order = kK8sPolicyOrder;
  p.subject = CheckSelector(np.pod_selector, "spec.podSelector").ok() ? EndpointSelector::FromK8s(np.pod_selector)
                                                                      : EndpointSelector::FromK8s({});
  bool types_ok = !np.policy_types.empty() && !np.policy_types_defaulted;
  for (const auto& t : np.policy_types) {
    if (t == "Ingress") p.applies_ingress = true;
    else if (t == "Egress") p.applies_egress = true;
    else types_ok = false;
  }
  if (!types_ok) {
    bool defaulted = np.policy_types.empty() || np.policy_types_defaulted;
    p.applies_ingress = true;
    p.applies_egress = defaulted ? !np.egress.empty() : true;
  }
  Rule deny;
  deny.action = Action::kDeny;
  if (p.applies_ingress) p.ingress = {deny};
  if (p.applies_egress) p.egress = {deny};
  p.fail_closed = {{"policy", why.ToString(),
                    fmt::format("denies all {} of the pods its podSelector selects ({}) at order 1000",
                                p.applies_egress && p.applies_ingress ? "ingress and egress"
                                : p.applies_egress                    ? "egress"
                                                                      : "ingress",
                                p.subject.Key())}};
  return p;
}

Policy K8sPolicyOrFailClosed(const k8s::NetworkPolicy& np) {
  auto p = PolicyFromK8s(np);
  if (p.ok()) return std::move(*p);
  return FailClosedK8sPolicy(np, p.error());
}

}  // namespace terway::policy
