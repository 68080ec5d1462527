#include "policy/calico_rule.h"

#include <cctype>
#include <set>

#include <fmt/format.h>

#include "common/strings.h"
#include "policy/endpoint_labels.h"

namespace terway::policy {

namespace {

using Json = nlohmann::json;

bool Present(const Json& obj, const char* key) { return obj.contains(key) && !obj[key].is_null(); }

Error Invalid(const std::string& field, const std::string& why) {
  return Errorf(ErrorCode::kInvalidArgument, "{}: {}", field, why);
}

// Keys of `obj` this engine does not know: criteria we cannot enforce.
std::vector<std::string> UnknownKeys(const Json& obj, std::initializer_list<const char*> known) {
  std::vector<std::string> out;
  for (const auto& [k, v] : obj.items()) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok && !v.is_null()) out.push_back(k);
  }
  return out;
}

// The nets of a rule, and which families they are in (Calico refuses a
// rule mixing IPv4 and IPv6, or disagreeing with its ipVersion).
struct Families {
  bool v4 = false;
  bool v6 = false;
};

// Calico's validator wants strictly masked CIDRs ("10.0.0.1/8" is
// refused); a bare address is one host (Felix's conversion accepts it; the
// validator's stance is an open question in the semantics document, and
// refusing would isolate pods over a harmless spelling).
Status ReadNets(const Json& e, const char* key, const std::string& field, std::optional<std::vector<Ipv4Cidr>>* out,
                std::vector<Ipv6Cidr>* out6, Families* fam, bool negated) {
  if (!Present(e, key)) return Ok();
  const std::string f = field + "." + key;
  if (!e[key].is_array()) return Invalid(f, "want a list of CIDRs");
  std::vector<Ipv4Cidr> v4;
  for (size_t i = 0; i < e[key].size(); i++) {
    const Json& n = e[key][i];
    if (!n.is_string()) return Invalid(fmt::format("{}[{}]", f, i), "want a CIDR string");
    std::string text = n.get<std::string>();
    bool bare = text.find('/') == std::string::npos;
    std::string cidr = bare ? text + (text.find(':') == std::string::npos ? "/32" : "/128") : text;
    if (auto c = Ipv4Cidr::Parse(cidr); c.ok()) {
      if (negated && c->prefix_len() == 0) {
        return Invalid(fmt::format("{}[{}]", f, i),
                       "a catch-all notNets (0.0.0.0/0) matches no packet; Calico refuses it");
      }
      v4.push_back(*c);
      fam->v4 = true;
    } else if (auto c6 = Ipv6Cidr::Parse(cidr); c6.ok()) {
      auto addr = Ipv6Addr::Parse(cidr.substr(0, cidr.find('/')));
      if (!addr.ok() || !(*addr == c6->network())) {
        return Invalid(fmt::format("{}[{}]", f, i), fmt::format("\"{}\" has host bits set (write the network)", text));
      }
      if (negated && c6->prefix_len() == 0) {
        return Invalid(fmt::format("{}[{}]", f, i), "a catch-all notNets (::/0) matches no packet; Calico refuses it");
      }
      out6->push_back(*c6);
      fam->v6 = true;
    } else if (Ipv4Cidr::Parse(cidr, true).ok()) {
      return Invalid(fmt::format("{}[{}]", f, i), fmt::format("\"{}\" has host bits set (write the network)", text));
    } else {
      return Invalid(fmt::format("{}[{}]", f, i), fmt::format("\"{}\" is not a CIDR", text));
    }
  }
  *out = std::move(v4);
  return Ok();
}

bool IsPortName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// One item of ports/notPorts: 80, "80", "6040:6050" (inclusive) or a name.
Result<PortSpec> ReadPort(const Json& port, const std::string& field) {
  PortSpec ps;
  auto range = [&](int64_t a, int64_t b) -> Result<PortSpec> {
    if (a < 1 || a > 65535 || b < 1 || b > 65535) {
      return Invalid(field, fmt::format("port {} is outside 1-65535", a < 1 || a > 65535 ? a : b));
    }
    if (b < a) return Invalid(field, fmt::format("bad port range {}:{} (min > max)", a, b));
    ps.first = static_cast<uint16_t>(a);
    ps.last = static_cast<uint16_t>(b);
    return ps;
  };
  if (port.is_number_integer()) return range(port.get<int64_t>(), port.get<int64_t>());
  if (!port.is_string()) return Invalid(field, "want a port number, \"min:max\" or a port name");
  const std::string s = port.get<std::string>();
  bool numeric = !s.empty();
  for (char c : s) numeric = numeric && (std::isdigit(static_cast<unsigned char>(c)) || c == ':');
  if (!numeric) {
    if (!IsPortName(s)) return Invalid(field, fmt::format("\"{}\" is not a port name ([a-zA-Z0-9_.-], 1-128)", s));
    ps.name = s;
    return ps;
  }
  size_t colon = s.find(':');
  std::string a = s.substr(0, colon), b = colon == std::string::npos ? a : s.substr(colon + 1);
  if (a.empty() || b.empty() || b.find(':') != std::string::npos || a.size() > 5 || b.size() > 5) {
    return Invalid(field, fmt::format("bad port \"{}\"", s));
  }
  return range(std::stoll(a), std::stoll(b));
}

Status ReadPorts(const Json& e, const char* key, const std::string& field, std::vector<PortSpec>* out) {
  if (!Present(e, key)) return Ok();
  const std::string f = field + "." + key;
  if (!e[key].is_array()) return Invalid(f, "want a list");
  for (size_t i = 0; i < e[key].size(); i++) {
    TERWAY_ASSIGN_OR_RETURN(PortSpec ps, ReadPort(e[key][i], fmt::format("{}[{}]", f, i)));
    out->push_back(std::move(ps));
  }
  return Ok();
}

Result<std::optional<IcmpMatch>> ReadIcmp(const Json& r, const char* key, const std::string& field,
                                          std::vector<std::string>* unknown) {
  if (!Present(r, key)) return std::optional<IcmpMatch>();
  const std::string f = field + "." + key;
  const Json& v = r[key];
  if (!v.is_object()) return Invalid(f, "want {type, code}");
  for (const auto& k : UnknownKeys(v, {"type", "code"})) unknown->push_back(std::string(key) + "." + k);
  if (!Present(v, "type")) {
    if (Present(v, "code")) {
      return Invalid(f + ".code", "a code needs a type (the kernel matches a code only with its type)");
    }
    return std::optional<IcmpMatch>();  // {}: no constraint
  }
  IcmpMatch m;
  if (!v["type"].is_number_integer() || v["type"].get<int64_t>() < 0 || v["type"].get<int64_t>() > 254) {
    return Invalid(f + ".type", "want an ICMP type 0-254");
  }
  m.type = static_cast<uint8_t>(v["type"].get<int64_t>());
  if (Present(v, "code")) {
    if (!v["code"].is_number_integer() || v["code"].get<int64_t>() < 0 || v["code"].get<int64_t>() > 255) {
      return Invalid(f + ".code", "want an ICMP code 0-255");
    }
    m.code = static_cast<uint8_t>(v["code"].get<int64_t>());
  }
  return std::optional<IcmpMatch>(m);
}

// A rule's EntityRule as read, before translation.
struct Entity {
  std::optional<CalicoSelector> selector, not_selector, namespace_selector;
  std::optional<std::vector<std::string>> sa_names;
  std::optional<CalicoSelector> sa_selector;
  std::optional<std::vector<ServiceRef>> services;
  std::optional<std::vector<Ipv4Cidr>> nets, not_nets;
  std::vector<Ipv6Cidr> nets6, not_nets6;
  std::vector<PortSpec> ports, not_ports;
  bool present = false;
};

Status ReadServiceAccounts(const Json& e, const std::string& field, Entity* out, std::vector<std::string>* unknown) {
  if (!Present(e, "serviceAccounts")) return Ok();
  const std::string f = field + ".serviceAccounts";
  const Json& v = e["serviceAccounts"];
  if (!v.is_object()) return Invalid(f, "want {names, selector}");
  for (const auto& k : UnknownKeys(v, {"names", "selector"})) unknown->push_back("serviceAccounts." + k);
  if (Present(v, "names")) {
    if (!v["names"].is_array()) return Invalid(f + ".names", "want a list of service account names");
    std::vector<std::string> names;
    for (const auto& n : v["names"]) {
      if (!n.is_string() || n.get<std::string>().empty()) return Invalid(f + ".names", "want non-empty strings");
      names.push_back(n.get<std::string>());
    }
    if (!names.empty()) out->sa_names = std::move(names);
  }
  TERWAY_ASSIGN_OR_RETURN(out->sa_selector, ReadCalicoSelector(v, "selector", f));
  return Ok();
}

Status ReadServices(const Json& e, const std::string& field, const CalicoRuleContext& ctx, Entity* out,
                    std::vector<std::string>* unknown) {
  if (!Present(e, "services")) return Ok();
  const std::string f = field + ".services";
  const Json& v = e["services"];
  if (!v.is_object()) return Invalid(f, "want {name, namespace}");
  for (const auto& k : UnknownKeys(v, {"name", "namespace"})) unknown->push_back("services." + k);
  ServiceRef ref;
  if (!Present(v, "name") || !v["name"].is_string() || v["name"].get<std::string>().empty()) {
    return Invalid(f + ".name", "want the Service's name");
  }
  ref.name = v["name"].get<std::string>();
  if (Present(v, "namespace")) {
    if (!v["namespace"].is_string()) return Invalid(f + ".namespace", "want a string");
    ref.namespace_ = v["namespace"].get<std::string>();
  }
  if (ref.namespace_.empty()) {
    if (ctx.kind == Policy::Kind::kCalicoGlobal) {
      return Invalid(f + ".namespace", "a GlobalNetworkPolicy must name the Service's namespace");
    }
    // The API documents an empty namespace as the policy's own (an open
    // question in the semantics document: Felix passes it on empty).
    ref.namespace_ = ctx.policy_namespace;
  }
  out->services = std::vector<ServiceRef>{ref};
  return Ok();
}

Result<Entity> ReadEntity(const Json& r, const char* key, const CalicoRuleContext& ctx, Families* fam,
                          std::vector<std::string>* unknown) {
  Entity out;
  if (!Present(r, key)) return out;
  const std::string f = ctx.field + "." + key;
  const Json& e = r[key];
  if (!e.is_object()) return Invalid(f, "want an object");
  out.present = true;
  for (const auto& k : UnknownKeys(e, {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports",
                                       "notPorts", "serviceAccounts", "services"})) {
    unknown->push_back(std::string(key) + "." + k);
  }
  TERWAY_TRY(ReadNets(e, "nets", f, &out.nets, &out.nets6, fam, false));
  TERWAY_TRY(ReadNets(e, "notNets", f, &out.not_nets, &out.not_nets6, fam, true));
  TERWAY_ASSIGN_OR_RETURN(out.selector, ReadCalicoSelector(e, "selector", f));
  TERWAY_ASSIGN_OR_RETURN(out.not_selector, ReadCalicoSelector(e, "notSelector", f));
  TERWAY_ASSIGN_OR_RETURN(out.namespace_selector, ReadCalicoSelector(e, "namespaceSelector", f, true));
  TERWAY_TRY(ReadPorts(e, "ports", f, &out.ports));
  TERWAY_TRY(ReadPorts(e, "notPorts", f, &out.not_ports));
  std::vector<std::string> inner;
  TERWAY_TRY(ReadServiceAccounts(e, f, &out, &inner));
  TERWAY_TRY(ReadServices(e, f, ctx, &out, &inner));
  for (auto& k : inner) unknown->push_back(std::string(key) + "." + k);
  if (out.services) {
    for (const char* other : {"selector", "notSelector", "namespaceSelector", "nets", "notNets", "serviceAccounts"}) {
      if (Present(e, other)) return Invalid(f + ".services", fmt::format("cannot be combined with {}", other));
    }
  }
  return out;
}

// The selector Calico matches an EntityRule's endpoints and network sets
// with (docs/calico-semantics.md 2.3): namespace part N, identity part S
// (serviceAccounts && selector); N && S when N exists and any selecting
// field is given; notSelector folded in as && !(...) when there is a
// positive selector, else left on its own, unscoped.
void TranslateSelectors(const Entity& e, const CalicoRuleContext& ctx, Peer* out) {
  std::optional<CalicoSelector> n;
  if (e.namespace_selector) n = NamespaceScope(*e.namespace_selector);
  else if (ctx.kind == Policy::Kind::kCalico) n = CalicoSelector::Equals(kCalicoNamespaceLabel, ctx.policy_namespace);
  std::optional<CalicoSelector> s;
  auto conj = [](std::optional<CalicoSelector>& acc, const CalicoSelector& x) {
    acc = acc ? CalicoSelector::And(*acc, x) : x;
  };
  if (e.sa_selector) conj(s, e.sa_selector->WithKeyPrefix(kServiceAccountPrefix));
  if (e.sa_names) conj(s, CalicoSelector::In(kCalicoServiceAccountLabel, *e.sa_names));
  if (e.selector) conj(s, *e.selector);
  bool selecting = e.selector || e.not_selector || e.sa_names || e.sa_selector || e.namespace_selector;
  std::optional<CalicoSelector> positive;
  if (n && selecting) {
    positive = *n;
    if (s) conj(positive, *s);
  } else if (!n) {
    positive = s;
  }
  if (e.not_selector) {
    if (positive) conj(positive, CalicoSelector::Not(*e.not_selector));
    else out->not_selector = e.not_selector;
  }
  out->selector = positive;
}

Peer TranslateEntity(const Entity& e, const CalicoRuleContext& ctx) {
  Peer p;
  TranslateSelectors(e, ctx, &p);
  p.services = e.services;
  p.nets = e.nets;
  if (p.nets) p.nets6 = e.nets6;
  if (e.not_nets) p.not_nets = *e.not_nets;
  p.not_nets6 = e.not_nets6;
  return p;
}

Status CheckPortsNeedProtocol(const Entity& src, const Entity& dst, const std::optional<Protocol>& proto,
                              const std::string& field) {
  for (const auto& [e, side] : {std::pair{&src, "source"}, {&dst, "destination"}}) {
    for (const auto& [list, key] : {std::pair{&e->ports, "ports"}, {&e->not_ports, "notPorts"}}) {
      for (const auto& ps : *list) {
        if (proto && !proto->HasPorts()) {
          return Invalid(fmt::format("{}.{}.{}", field, side, key),
                         fmt::format("protocol {} has no ports", ProtocolName(*proto)));
        }
        if (ps.name.empty() && !proto) {
          return Invalid(fmt::format("{}.{}.{}", field, side, key), "numeric ports need protocol TCP, UDP or SCTP");
        }
      }
    }
  }
  return Ok();
}

Status CheckHttp(const Json& r, Action action, const std::optional<Protocol>& proto, const CalicoRuleContext& ctx) {
  const std::string f = ctx.field + ".http";
  const Json& h = r["http"];
  if (!h.is_object()) return Invalid(f, "want {methods, paths}");
  if (action != Action::kAllow) return Invalid(f, "only Allow rules may match HTTP");
  if (ctx.direction != Direction::kIngress) return Invalid(f, "only ingress rules may match HTTP");
  if (proto && *proto != Protocol::kTCP) return Invalid(f, "HTTP needs protocol TCP (or none)");
  if (Present(h, "methods") && !h["methods"].is_array()) return Invalid(f + ".methods", "want a list");
  if (Present(h, "paths")) {
    if (!h["paths"].is_array()) return Invalid(f + ".paths", "want a list of {exact} or {prefix}");
    for (size_t i = 0; i < h["paths"].size(); i++) {
      const Json& p = h["paths"][i];
      if (!p.is_object() || Present(p, "exact") == Present(p, "prefix")) {
        return Invalid(fmt::format("{}.paths[{}]", f, i), "want exactly one of exact or prefix");
      }
    }
  }
  return Ok();
}

bool IsQualifiedName(const std::string& k) {
  // [prefix/]name: name 1-63 alphanumerics, '-', '_', '.', alphanumeric at
  // both ends; prefix a DNS subdomain.
  size_t slash = k.rfind('/');
  std::string name = slash == std::string::npos ? k : k.substr(slash + 1);
  std::string prefix = slash == std::string::npos ? "" : k.substr(0, slash);
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (name.empty() || name.size() > 63 || !alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  if (slash != std::string::npos) {
    if (prefix.empty() || prefix.size() > 253) return false;
    for (char c : prefix) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
            c == '.')) {
        return false;
      }
    }
  }
  return true;
}

// Rule metadata carries no matching meaning (iptables renders it as
// comments): validated, then ignored; keys other than annotations too.
Status CheckMetadata(const Json& r, const std::string& field) {
  const Json& m = r["metadata"];
  if (!m.is_object()) return Invalid(field + ".metadata", "want {annotations}");
  if (!Present(m, "annotations")) return Ok();
  if (!m["annotations"].is_object()) return Invalid(field + ".metadata.annotations", "want a map of strings");
  size_t total = 0;
  for (const auto& [k, v] : m["annotations"].items()) {
    if (!IsQualifiedName(k)) {
      return Invalid(field + ".metadata.annotations", fmt::format("\"{}\" is not a valid key", k));
    }
    if (!v.is_string()) return Invalid(fmt::format("{}.metadata.annotations.{}", field, k), "want a string");
    total += k.size() + v.get<std::string>().size();
  }
  if (total > 256 * 1024) return Invalid(field + ".metadata.annotations", "more than 256 KiB");
  return Ok();
}

// ICMP/ICMPv6 imply an IP version; both refuse the other one.
Status CheckIpVersion(const std::optional<int>& version, const std::optional<Protocol>& p, const char* key,
                      const std::string& field) {
  if (!version || !p) return Ok();
  const std::string f = field + "." + key;
  if (*p == Protocol::kICMP && *version == 6) return Invalid(f, "ICMP is IPv4; use ICMPv6 with ipVersion 6");
  if (*p == Protocol::kICMPv6 && *version == 4) return Invalid(f, "ICMPv6 is IPv6; use ICMP with ipVersion 4");
  return Ok();
}

// The criteria a rule carries that we cannot enforce, enforced on the safe
// side (see ReadCalicoRule).
void FailClosedCriteria(const std::vector<std::string>& what, const std::string& why, const CalicoRuleContext& ctx,
                        Rule* rule, std::vector<FailClosed>* notes) {
  if (what.empty()) return;
  std::string enforced;
  switch (rule->action) {
    case Action::kAllow:
      rule->matches_nothing = true;
      enforced = "the rule allows nothing; the policy still isolates the pods it selects";
      break;
    case Action::kLog:
      rule->matches_nothing = true;
      enforced = "the Log rule is dropped (nothing logged); evaluation goes on as if it were absent";
      break;
    case Action::kDeny:
      enforced = fmt::format("the rule is enforced without {} and so denies everything else it matches", Join(what, ", "));
      break;
    case Action::kPass:
      // Passing on more than written would let a later tier allow what this
      // tier denies after the Pass; without the criterion we cannot tell
      // what the Pass was meant to skip, so all it could match is denied.
      rule->action = Action::kDeny;
      enforced = fmt::format("the Pass is enforced as a Deny of everything it could match without {}", Join(what, ", "));
      break;
  }
  for (const auto& w : what) notes->push_back({ctx.field + "." + w, why, enforced});
}

}  // namespace

Result<Protocol> ReadCalicoProtocol(const Json& v, const std::string& field) {
  if (v.is_number_integer()) {
    int64_t n = v.get<int64_t>();
    if (n < 1 || n > 255) return Invalid(field, fmt::format("protocol number {} is outside 1-255", n));
    return Protocol(static_cast<uint8_t>(n));
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    bool digits = !s.empty() && s.size() <= 3;
    for (char c : s) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (digits) return ReadCalicoProtocol(Json(std::stoll(s)), field);
    for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kICMP, Protocol::kICMPv6, Protocol::kSCTP,
                       Protocol::kUDPLite}) {
      if (s == ProtocolName(p)) return p;
    }
    return Invalid(field, fmt::format("\"{}\" is not a Calico protocol (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite, "
                                      "written exactly so, or a number 1-255)",
                                      s));
  }
  return Invalid(field, "want a protocol name or number");
}

Result<std::optional<CalicoSelector>> ReadCalicoSelector(const Json& obj, const char* key, const std::string& field,
                                                         bool global_allowed) {
  if (!Present(obj, key)) return std::optional<CalicoSelector>();
  const std::string f = field + "." + key;
  if (!obj[key].is_string()) return Invalid(f, "want a selector string");
  const std::string text = obj[key].get<std::string>();
  if (Trim(text).empty()) return std::optional<CalicoSelector>();
  auto sel = CalicoSelector::Parse(text);
  if (!sel.ok()) return std::move(sel).error().Wrap(f);
  if (sel->UsesGlobal() && !(global_allowed && sel->IsGlobal())) {
    return Invalid(f, global_allowed ? "global() must be the whole namespaceSelector"
                                     : "global() is allowed only as a rule's whole namespaceSelector");
  }
  return std::optional<CalicoSelector>(std::move(*sel));
}

CalicoSelector NamespaceScope(const CalicoSelector& ns) {
  if (ns.IsGlobal()) return CalicoSelector::Not(CalicoSelector::Has(kCalicoNamespaceLabel));
  if (ns.IsAll()) return CalicoSelector::Has(kCalicoNamespaceLabel);
  return ns.WithKeyPrefix(kNamespacePrefix);
}

Result<Rule> ReadCalicoRule(const Json& r, const CalicoRuleContext& ctx, std::vector<FailClosed>* notes) {
  const std::string& field = ctx.field;
  if (!r.is_object()) return Invalid(field, "want an object");
  std::vector<std::string> unknown = UnknownKeys(
      r, {"action", "protocol", "notProtocol", "icmp", "notICMP", "ipVersion", "source", "destination", "http",
          "metadata"});
  Rule rule;
  if (!Present(r, "action") || !r["action"].is_string()) {
    return Invalid(field + ".action", "required: Allow, Deny, Log or Pass");
  }
  const std::string action = r["action"].get<std::string>();
  if (action == "Allow") rule.action = Action::kAllow;
  else if (action == "Deny") rule.action = Action::kDeny;
  else if (action == "Log") rule.action = Action::kLog;
  else if (action == "Pass") rule.action = Action::kPass;
  else return Invalid(field + ".action", fmt::format("\"{}\" (want Allow, Deny, Log or Pass)", action));

  std::optional<int> version;
  if (Present(r, "ipVersion")) {
    if (!r["ipVersion"].is_number_integer() || (r["ipVersion"] != 4 && r["ipVersion"] != 6)) {
      return Invalid(field + ".ipVersion", "want 4 or 6");
    }
    version = r["ipVersion"].get<int>();
  }
  if (Present(r, "protocol")) {
    TERWAY_ASSIGN_OR_RETURN(rule.protocol, ReadCalicoProtocol(r["protocol"], field + ".protocol"));
  }
  if (Present(r, "notProtocol")) {
    TERWAY_ASSIGN_OR_RETURN(rule.not_protocol, ReadCalicoProtocol(r["notProtocol"], field + ".notProtocol"));
  }
  TERWAY_TRY(CheckIpVersion(version, rule.protocol, "protocol", field));
  TERWAY_TRY(CheckIpVersion(version, rule.not_protocol, "notProtocol", field));
  TERWAY_ASSIGN_OR_RETURN(rule.icmp, ReadIcmp(r, "icmp", field, &unknown));
  TERWAY_ASSIGN_OR_RETURN(rule.not_icmp, ReadIcmp(r, "notICMP", field, &unknown));
  if (Present(r, "icmp") &&
      !(rule.protocol && (*rule.protocol == Protocol::kICMP || *rule.protocol == Protocol::kICMPv6))) {
    return Invalid(field + ".icmp", "needs protocol ICMP or ICMPv6");
  }

  Families fam;
  TERWAY_ASSIGN_OR_RETURN(Entity src, ReadEntity(r, "source", ctx, &fam, &unknown));
  TERWAY_ASSIGN_OR_RETURN(Entity dst, ReadEntity(r, "destination", ctx, &fam, &unknown));
  if (fam.v4 && fam.v6) return Invalid(field, "mixes IPv4 and IPv6 CIDRs");
  if (version && ((*version == 4 && fam.v6) || (*version == 6 && fam.v4))) {
    return Invalid(field, fmt::format("a CIDR of the other IP family than ipVersion {}", *version));
  }
  TERWAY_TRY(CheckPortsNeedProtocol(src, dst, rule.protocol, field));
  if (src.services && ctx.direction == Direction::kEgress) {
    return Invalid(field + ".source.services", "only ingress rules may match a source Service");
  }
  if (dst.services) {
    if (ctx.direction == Direction::kIngress) {
      return Invalid(field + ".destination.services", "only egress rules may match a destination Service");
    }
    if (!dst.ports.empty() || !dst.not_ports.empty()) {
      return Invalid(field + ".destination.services", "cannot be combined with destination ports (the Service's own)");
    }
  }
  bool http = Present(r, "http");
  if (http) {
    TERWAY_TRY(CheckHttp(r, rule.action, rule.protocol, ctx));
  }
  if (Present(r, "metadata")) {
    TERWAY_TRY(CheckMetadata(r, field));
  }

  // The other end is the source of an ingress rule, the destination of an
  // egress rule; the remaining side constrains our own pod.
  const bool ingress = ctx.direction == Direction::kIngress;
  const Entity& peer = ingress ? src : dst;
  const Entity& local = ingress ? dst : src;
  Peer p = TranslateEntity(peer, ctx);
  if (!p.IsAny()) rule.peers.push_back(std::move(p));
  if (local.present) {
    Peer l = TranslateEntity(local, ctx);
    if (!l.IsAny()) rule.local = std::move(l);
  }
  auto with_protocol = [&](std::vector<PortSpec> v) {
    for (auto& ps : v) ps.protocol = rule.protocol;
    return v;
  };
  rule.ports = with_protocol(dst.ports);
  rule.not_ports = with_protocol(dst.not_ports);
  rule.source_ports = with_protocol(src.ports);
  rule.not_source_ports = with_protocol(src.not_ports);

  // ipVersion restricts the rule to one family (as Felix renders it in
  // that family's tables only). ICMP / ICMPv6 and nets of one family need
  // no version: the kernel's match is of that family already (an IPv6 net
  // admits no IPv4 address, `icmpv6 type` no IPv4 packet). NotNets do: a
  // rule whose CIDRs are IPv6 applies to IPv6 packets only (and IPv4 ones
  // to IPv4 only), but the complement of an IPv6 notNets spans IPv4 too.
  auto has_not_nets = [](const Entity& e) { return (e.not_nets && !e.not_nets->empty()) || !e.not_nets6.empty(); };
  if (!version && (has_not_nets(src) || has_not_nets(dst)) && fam.v4 != fam.v6) version = fam.v6 ? 6 : 4;
  rule.ip_version = version;
  if (http) {
    FailClosedCriteria({"http"}, "HTTP matching needs an L7 proxy, which terway does not have", ctx, &rule, notes);
  }
  FailClosedCriteria(unknown, "terway's policy engine does not know this field", ctx, &rule, notes);
  return rule;
}

}  // namespace terway::policy
