#include "policy/calico_policy.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::policy {

namespace {

using Json = nlohmann::json;

Result<std::string> OptString(const Json& obj, const char* key, const std::string& field) {
  if (!obj.contains(key) || obj[key].is_null()) return std::string();
  if (!obj[key].is_string()) return Errorf(ErrorCode::kInvalidArgument, "{}.{}: want a string", field, key);
  return obj[key].get<std::string>();
}

Status RejectUnsupported(const Json& obj, const std::string& field, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (obj.contains(k) && !obj[k].is_null()) {
      return Errorf(ErrorCode::kUnsupported, "{}.{} is not supported by terway's policy engine", field, k);
    }
  }
  return Ok();
}

Result<std::optional<EndpointSelector>> OptSelector(const Json& obj, const char* key, const std::string& field) {
  TERWAY_ASSIGN_OR_RETURN(std::string text, OptString(obj, key, field));
  if (!obj.contains(key) || obj[key].is_null()) return std::optional<EndpointSelector>();
  auto sel = CalicoSelector::Parse(text);
  if (!sel.ok()) return std::move(sel).error().Wrap(fmt::format("{}.{}", field, key));
  return std::optional<EndpointSelector>(EndpointSelector::FromCalico(std::move(*sel)));
}

// Reads nets/notNets: IPv4 CIDRs kept, IPv6 ones noted (they can never
// match this IPv4 datapath).
Status ReadNets(const Json& obj, const char* key, const std::string& field, std::vector<Ipv4Cidr>* out,
                bool* saw_v6) {
  if (!obj.contains(key) || obj[key].is_null()) return Ok();
  if (!obj[key].is_array()) return Errorf(ErrorCode::kInvalidArgument, "{}.{}: want a list", field, key);
  for (const auto& n : obj[key]) {
    if (!n.is_string()) return Errorf(ErrorCode::kInvalidArgument, "{}.{}: want CIDR strings", field, key);
    std::string text = n.get<std::string>();
    if (text.find('/') == std::string::npos) text += text.find(':') == std::string::npos ? "/32" : "/128";
    auto v4 = Ipv4Cidr::Parse(text, true);
    if (v4.ok()) {
      out->push_back(Ipv4Cidr(Ipv4Addr(v4->network().value() & v4->mask()), v4->prefix_len()));
    } else if (Ipv6Cidr::Parse(text).ok()) {
      *saw_v6 = true;
    } else {
      return Errorf(ErrorCode::kInvalidArgument, "{}.{}: \"{}\" is not a CIDR", field, key, text);
    }
  }
  return Ok();
}

// An EntityRule (source or destination) as a Peer; nullopt when it places no
// constraint on addresses.
Result<std::optional<Peer>> ReadEntity(const Json& rule, const char* key, const std::string& scope,
                                       const std::string& rule_field) {
  std::string field = rule_field + "." + key;
  if (!rule.contains(key) || rule[key].is_null()) return std::optional<Peer>();
  const Json& e = rule[key];
  if (!e.is_object()) return Errorf(ErrorCode::kInvalidArgument, "{}: want an object", field);
  TERWAY_TRY(RejectUnsupported(e, field, {"notSelector", "notPorts", "serviceAccounts", "services"}));
  Peer p;
  TERWAY_ASSIGN_OR_RETURN(auto sel, OptSelector(e, "selector", field));
  TERWAY_ASSIGN_OR_RETURN(auto ns_sel, OptSelector(e, "namespaceSelector", field));
  if (sel || ns_sel) {
    // A rule selector picks endpoints of the policy's namespace unless a
    // namespaceSelector widens it (global policies: every namespace).
    p.pods = sel ? *sel : EndpointSelector::FromCalico(CalicoSelector::All());
    if (ns_sel) p.namespaces = *ns_sel;
    else p.scope_namespace = scope;
  }
  bool v6 = false;
  std::vector<Ipv4Cidr> nets;
  TERWAY_TRY(ReadNets(e, "nets", field, &nets, &v6));
  if (e.contains("nets") && e["nets"].is_array() && !e["nets"].empty()) {
    p.nets = nets;
    if (nets.empty() && v6) p.matches_nothing = true;
  }
  bool v6_not = false;
  TERWAY_TRY(ReadNets(e, "notNets", field, &p.not_nets, &v6_not));
  if (!p.SelectsPods() && !p.nets && p.not_nets.empty() && !p.matches_nothing) return std::optional<Peer>();
  return std::optional<Peer>(std::move(p));
}

Result<PortSpec> ReadPort(const Json& port, Protocol proto, const std::string& field) {
  PortSpec ps;
  ps.protocol = proto;
  auto check = [&](int64_t a, int64_t b) -> Status {
    if (a < 1 || b > 65535 || b < a) return Errorf(ErrorCode::kInvalidArgument, "{}: bad port range {}:{}", field, a, b);
    ps.first = static_cast<uint16_t>(a);
    ps.last = static_cast<uint16_t>(b);
    return Ok();
  };
  if (port.is_number_integer()) {
    TERWAY_TRY(check(port.get<int64_t>(), port.get<int64_t>()));
    return ps;
  }
  if (!port.is_string()) return Errorf(ErrorCode::kInvalidArgument, "{}: want a number, \"a:b\" or a name", field);
  std::string s = port.get<std::string>();
  bool numeric = !s.empty();
  for (char c : s) numeric = numeric && (std::isdigit(static_cast<unsigned char>(c)) || c == ':');
  if (!numeric) {
    ps.name = s;  // a named port
    return ps;
  }
  size_t colon = s.find(':');
  std::string a = s.substr(0, colon), b = colon == std::string::npos ? a : s.substr(colon + 1);
  if (a.empty() || b.empty() || b.find(':') != std::string::npos || a.size() > 5 || b.size() > 5) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: bad port \"{}\"", field, s);
  }
  TERWAY_TRY(check(std::stoll(a), std::stoll(b)));
  return ps;
}

Result<std::optional<Rule>> ReadRule(const Json& r, Direction dir, const std::string& scope, const std::string& field) {
  if (!r.is_object()) return Errorf(ErrorCode::kInvalidArgument, "{}: want an object", field);
  TERWAY_TRY(RejectUnsupported(r, field, {"notProtocol", "http", "icmp", "notICMP", "metadata"}));
  Rule rule;
  TERWAY_ASSIGN_OR_RETURN(std::string action, OptString(r, "action", field));
  std::string a;
  for (char c : action) a += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (a == "allow") rule.action = Action::kAllow;
  else if (a == "deny") rule.action = Action::kDeny;
  else if (a == "log") rule.action = Action::kLog;
  else if (a == "pass") rule.action = Action::kPass;
  else return Errorf(ErrorCode::kInvalidArgument, "{}.action: \"{}\" (want Allow, Deny, Log or Pass)", field, action);

  if (r.contains("ipVersion") && !r["ipVersion"].is_null()) {
    if (!r["ipVersion"].is_number_integer()) return Errorf(ErrorCode::kInvalidArgument, "{}.ipVersion: want 4 or 6", field);
    if (r["ipVersion"].get<int>() == 6) return std::optional<Rule>();  // never matches IPv4 traffic
  }
  std::optional<Protocol> proto;
  if (r.contains("protocol") && !r["protocol"].is_null()) {
    const Json& p = r["protocol"];
    std::string text = p.is_number_integer() ? std::to_string(p.get<int>()) : p.is_string() ? p.get<std::string>() : "";
    auto pr = ParseProtocol(text);
    if (!pr.ok()) return std::move(pr).error().Wrap(field + ".protocol");
    proto = *pr;
  }
  if (r.contains("source") && r["source"].is_object()) {
    TERWAY_TRY(RejectUnsupported(r["source"], field + ".source", {"ports", "serviceAccounts"}));
  }
  // The other end is the source of an ingress rule, the destination of an
  // egress rule; the remaining side constrains our own pod.
  const char* peer_key = dir == Direction::kIngress ? "source" : "destination";
  const char* local_key = dir == Direction::kIngress ? "destination" : "source";
  TERWAY_ASSIGN_OR_RETURN(auto peer, ReadEntity(r, peer_key, scope, field));
  TERWAY_ASSIGN_OR_RETURN(auto local, ReadEntity(r, local_key, scope, field));
  if (peer) rule.peers.push_back(std::move(*peer));
  rule.local = std::move(local);

  const Json* ports = nullptr;
  if (r.contains("destination") && r["destination"].is_object() && r["destination"].contains("ports") &&
      !r["destination"]["ports"].is_null()) {
    ports = &r["destination"]["ports"];
    if (!ports->is_array()) return Errorf(ErrorCode::kInvalidArgument, "{}.destination.ports: want a list", field);
  }
  if (ports && !ports->empty()) {
    if (!proto || *proto == Protocol::kICMP) {
      return Errorf(ErrorCode::kInvalidArgument, "{}.destination.ports: needs protocol TCP, UDP or SCTP", field);
    }
    for (size_t i = 0; i < ports->size(); i++) {
      TERWAY_ASSIGN_OR_RETURN(PortSpec ps, ReadPort((*ports)[i], *proto, fmt::format("{}.destination.ports[{}]", field, i)));
      rule.ports.push_back(std::move(ps));
    }
  } else if (proto) {
    PortSpec ps;
    ps.protocol = proto;
    rule.ports.push_back(ps);
  }
  return std::optional<Rule>(std::move(rule));
}

}  // namespace

Result<Policy> PolicyFromCalico(const Json& obj) {
  if (!obj.is_object()) return Errorf(ErrorCode::kInvalidArgument, "Calico policy: want a JSON object");
  TERWAY_ASSIGN_OR_RETURN(std::string kind, OptString(obj, "kind", "Calico policy"));
  Policy p;
  if (kind == "NetworkPolicy") p.kind = Policy::Kind::kCalico;
  else if (kind == "GlobalNetworkPolicy") p.kind = Policy::Kind::kCalicoGlobal;
  else return Errorf(ErrorCode::kInvalidArgument, "Calico policy: kind \"{}\" (want NetworkPolicy or GlobalNetworkPolicy)", kind);
  const Json empty = Json::object();
  const Json& meta = obj.contains("metadata") && obj["metadata"].is_object() ? obj["metadata"] : empty;
  TERWAY_ASSIGN_OR_RETURN(p.name, OptString(meta, "name", "metadata"));
  if (p.kind == Policy::Kind::kCalico) {
    TERWAY_ASSIGN_OR_RETURN(p.namespace_, OptString(meta, "namespace", "metadata"));
    if (p.namespace_.empty()) p.namespace_ = "default";
  }
  std::string ctx = fmt::format("{} {}", kind, p.namespace_.empty() ? p.name : p.namespace_ + "/" + p.name);
  if (p.name.empty()) return Errorf(ErrorCode::kInvalidArgument, "metadata.name is empty").Wrap(ctx);
  const Json& spec = obj.contains("spec") && obj["spec"].is_object() ? obj["spec"] : empty;
  Status st = [&]() -> Status {
    TERWAY_TRY(RejectUnsupported(spec, "spec", {"serviceAccountSelector", "doNotTrack", "preDNAT", "applyOnForward"}));
    if (spec.contains("tier") && spec["tier"].is_string() && spec["tier"].get<std::string>() != "default") {
      return Errorf(ErrorCode::kUnsupported, "spec.tier \"{}\": only the default tier is supported",
                    spec["tier"].get<std::string>());
    }
    if (spec.contains("order") && !spec["order"].is_null()) {
      if (!spec["order"].is_number()) return Errorf(ErrorCode::kInvalidArgument, "spec.order: want a number");
      p.order = spec["order"].get<double>();
    }
    TERWAY_ASSIGN_OR_RETURN(auto sel, OptSelector(spec, "selector", "spec"));
    p.subject = sel ? *sel : EndpointSelector::FromCalico(CalicoSelector::All());
    if (p.kind == Policy::Kind::kCalicoGlobal) {
      TERWAY_ASSIGN_OR_RETURN(p.subject_namespaces, OptSelector(spec, "namespaceSelector", "spec"));
    }
    std::string scope = p.kind == Policy::Kind::kCalico ? p.namespace_ : "";
    for (Direction dir : {Direction::kIngress, Direction::kEgress}) {
      const char* key = dir == Direction::kIngress ? "ingress" : "egress";
      if (!spec.contains(key) || spec[key].is_null()) continue;
      if (!spec[key].is_array()) return Errorf(ErrorCode::kInvalidArgument, "spec.{}: want a list", key);
      for (size_t i = 0; i < spec[key].size(); i++) {
        TERWAY_ASSIGN_OR_RETURN(auto rule, ReadRule(spec[key][i], dir, scope, fmt::format("spec.{}[{}]", key, i)));
        // A dropped (IPv6-only) rule keeps its place in the numbering so
        // Explain's rule indexes match the object; store it as never matching.
        if (!rule) {
          Rule never;
          Peer none;
          none.matches_nothing = true;
          never.peers.push_back(none);
          rule = never;
        }
        (dir == Direction::kIngress ? p.ingress : p.egress).push_back(std::move(*rule));
      }
    }
    bool has_in = !p.ingress.empty(), has_eg = !p.egress.empty();
    if (spec.contains("types") && spec["types"].is_array() && !spec["types"].empty()) {
      for (const auto& t : spec["types"]) {
        std::string s = t.is_string() ? t.get<std::string>() : "";
        if (s == "Ingress") p.applies_ingress = true;
        else if (s == "Egress") p.applies_egress = true;
        else return Errorf(ErrorCode::kInvalidArgument, "spec.types: unknown type \"{}\"", s);
      }
    } else {
      // Calico's defaulting: Egress alone when only egress rules exist,
      // otherwise Ingress, plus Egress when egress rules exist.
      p.applies_egress = has_eg;
      p.applies_ingress = has_in || !has_eg;
    }
    return Ok();
  }();
  if (!st.ok()) return std::move(st).error().Wrap(ctx);
  return p;
}

}  // namespace terway::policy
