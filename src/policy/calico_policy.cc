#include "policy/calico_policy.h"

#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "policy/calico_rule.h"
#include "policy/endpoint_labels.h"

namespace terway::policy {

namespace {

using Json = nlohmann::json;

bool Present(const Json& obj, const char* key) { return obj.contains(key) && !obj[key].is_null(); }

Error Invalid(const std::string& field, const std::string& why) {
  return Errorf(ErrorCode::kInvalidArgument, "{}: {}", field, why);
}

Result<std::string> OptString(const Json& obj, const char* key, const std::string& field) {
  if (!Present(obj, key)) return std::string();
  if (!obj[key].is_string()) return Invalid(field + "." + key, "want a string");
  return obj[key].get<std::string>();
}

const Json& Section(const Json& obj, const char* key) {
  static const Json empty = Json::object();
  return obj.contains(key) && obj[key].is_object() ? obj[key] : empty;
}

// Tier names are DNS labels (no dots, <= 63).
bool IsTierName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

// Which pods the policy applies to, as Calico translates spec.selector,
// namespaceSelector and serviceAccountSelector (docs 1): a NetworkPolicy
// only ever selects pods of its namespace; a GlobalNetworkPolicy's
// namespaceSelector sees pcns.* labels (all(): any pod), its
// serviceAccountSelector pcsa.* labels (all(): pods that name one).
CalicoSelector Subject(Policy::Kind kind, const std::string& ns, const std::optional<CalicoSelector>& selector,
                       const std::optional<CalicoSelector>& namespace_selector,
                       const std::optional<CalicoSelector>& sa_selector) {
  CalicoSelector s = selector ? *selector : CalicoSelector::All();
  if (kind == Policy::Kind::kCalico) {
    s = CalicoSelector::And(CalicoSelector::Equals(kCalicoNamespaceLabel, ns), s);
  } else if (namespace_selector) {
    s = CalicoSelector::And(s, NamespaceScope(*namespace_selector));
  }
  if (sa_selector) {
    CalicoSelector sa = kind == Policy::Kind::kCalicoGlobal && sa_selector->IsAll()
                            ? CalicoSelector::Has(kCalicoServiceAccountLabel)
                            : sa_selector->WithKeyPrefix(kServiceAccountPrefix);
    s = CalicoSelector::And(s, sa);
  }
  return s;
}

// spec.types, or Calico's defaulting when absent or empty: Ingress unless
// there are only egress rules, plus Egress when there are egress rules.
Status ReadTypes(const Json& spec, Policy* p) {
  const bool has_in = spec.contains("ingress") && spec["ingress"].is_array() && !spec["ingress"].empty();
  const bool has_eg = spec.contains("egress") && spec["egress"].is_array() && !spec["egress"].empty();
  if (!Present(spec, "types") || (spec["types"].is_array() && spec["types"].empty())) {
    p->applies_egress = has_eg;
    p->applies_ingress = has_in || !has_eg;
    return Ok();
  }
  if (!spec["types"].is_array()) return Invalid("spec.types", "want a list of Ingress / Egress");
  for (const auto& t : spec["types"]) {
    std::string s = t.is_string() ? t.get<std::string>() : t.dump();
    bool* flag = s == "Ingress" ? &p->applies_ingress : s == "Egress" ? &p->applies_egress : nullptr;
    if (!flag) return Invalid("spec.types", fmt::format("unknown type {} (want Ingress or Egress)", s));
    if (*flag) return Invalid("spec.types", fmt::format("{} is listed twice", s));
    *flag = true;
  }
  return Ok();
}

// doNotTrack, preDNAT, applyOnForward: GlobalNetworkPolicy only, and only
// for host endpoints. Felix gives workload endpoints only the normal tiers,
// so such a policy neither filters pod traffic nor makes a tier take part.
Status ReadHostEndpointFields(const Json& spec, Policy* p) {
  bool flags[3] = {false, false, false};
  const char* keys[3] = {"doNotTrack", "preDNAT", "applyOnForward"};
  for (int i = 0; i < 3; i++) {
    if (!Present(spec, keys[i])) continue;
    if (!spec[keys[i]].is_boolean()) return Invalid(std::string("spec.") + keys[i], "want true or false");
    flags[i] = spec[keys[i]].get<bool>();
  }
  auto [untracked, pre_dnat, on_forward] = flags;
  if (untracked && pre_dnat) return Invalid("spec.doNotTrack", "cannot be combined with preDNAT");
  if ((untracked || pre_dnat) && !on_forward) {
    return Invalid(untracked ? "spec.doNotTrack" : "spec.preDNAT", "needs applyOnForward: true");
  }
  if (pre_dnat && (p->applies_egress || !p->egress.empty())) {
    return Invalid("spec.preDNAT", "a preDNAT policy has no egress rules and no Egress type");
  }
  if (untracked || pre_dnat) {
    p->applies_ingress = false;
    p->applies_egress = false;
  }
  return Ok();
}

Status ReadRules(const Json& spec, Policy* p) {
  for (Direction dir : {Direction::kIngress, Direction::kEgress}) {
    const char* key = dir == Direction::kIngress ? "ingress" : "egress";
    if (!Present(spec, key)) continue;
    if (!spec[key].is_array()) return Invalid(std::string("spec.") + key, "want a list of rules");
    CalicoRuleContext ctx;
    ctx.kind = p->kind;
    ctx.policy_namespace = p->namespace_;
    ctx.direction = dir;
    for (size_t i = 0; i < spec[key].size(); i++) {
      ctx.field = fmt::format("spec.{}[{}]", key, i);
      TERWAY_ASSIGN_OR_RETURN(Rule rule, ReadCalicoRule(spec[key][i], ctx, &p->fail_closed));
      (dir == Direction::kIngress ? p->ingress : p->egress).push_back(std::move(rule));
    }
  }
  return Ok();
}

Status ReadSpec(const Json& spec, Policy* p) {
  const bool global = p->kind == Policy::Kind::kCalicoGlobal;
  std::vector<const char*> known = {"order", "tier", "selector", "types", "ingress", "egress", "serviceAccountSelector",
                                    "performanceHints"};
  if (global) known.insert(known.end(), {"namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"});
  for (const auto& [k, v] : spec.items()) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok && !v.is_null()) {
      return Errorf(ErrorCode::kUnsupported, "spec.{}: not a field of a {} that terway knows", k,
                    global ? "GlobalNetworkPolicy" : "NetworkPolicy");
    }
  }
  TERWAY_ASSIGN_OR_RETURN(std::string tier, OptString(spec, "tier", "spec"));
  if (!tier.empty()) {
    if (!IsTierName(tier)) return Invalid("spec.tier", fmt::format("\"{}\" is not a tier name (a DNS label)", tier));
    p->tier = tier;
  }
  if (Present(spec, "order")) {
    if (!spec["order"].is_number()) return Invalid("spec.order", "want a number");
    p->order = spec["order"].get<double>();
  }
  if (Present(spec, "performanceHints")) {
    if (!spec["performanceHints"].is_array()) return Invalid("spec.performanceHints", "want a list");
    for (const auto& h : spec["performanceHints"]) {
      if (h != "AssumeNeededOnEveryNode") {
        return Invalid("spec.performanceHints",
                       fmt::format("unknown hint {} (want AssumeNeededOnEveryNode)", h.dump()));
      }
    }
  }
  TERWAY_ASSIGN_OR_RETURN(auto selector, ReadCalicoSelector(spec, "selector", "spec"));
  TERWAY_ASSIGN_OR_RETURN(auto sa_selector, ReadCalicoSelector(spec, "serviceAccountSelector", "spec"));
  std::optional<CalicoSelector> ns_selector;
  if (global) {
    TERWAY_ASSIGN_OR_RETURN(ns_selector, ReadCalicoSelector(spec, "namespaceSelector", "spec"));
  }
  p->subject = EndpointSelector::FromCalico(Subject(p->kind, p->namespace_, selector, ns_selector, sa_selector));
  TERWAY_TRY(ReadRules(spec, p));
  TERWAY_TRY(ReadTypes(spec, p));
  if (global) {
    TERWAY_TRY(ReadHostEndpointFields(spec, p));
  }
  return Ok();
}

// Kind, name and namespace: what every outcome (parsed or fail-closed)
// needs. The name is the object's, as Calico's v3.32 tie-break uses it.
Result<Policy> ReadIdentity(const Json& obj) {
  if (!obj.is_object()) return Invalid("Calico policy", "want a JSON object");
  TERWAY_ASSIGN_OR_RETURN(std::string kind, OptString(obj, "kind", "Calico policy"));
  Policy p;
  if (kind == "NetworkPolicy") p.kind = Policy::Kind::kCalico;
  else if (kind == "GlobalNetworkPolicy") p.kind = Policy::Kind::kCalicoGlobal;
  else return Invalid("kind", fmt::format("\"{}\" (want NetworkPolicy or GlobalNetworkPolicy)", kind));
  const Json& meta = Section(obj, "metadata");
  TERWAY_ASSIGN_OR_RETURN(p.name, OptString(meta, "name", "metadata"));
  if (p.kind == Policy::Kind::kCalico) {
    TERWAY_ASSIGN_OR_RETURN(p.namespace_, OptString(meta, "namespace", "metadata"));
    if (p.namespace_.empty()) p.namespace_ = "default";
  }
  return p;
}

std::string Context(const Policy& p) {
  return fmt::format("{} {}", p.CalicoKind(), p.namespace_.empty() ? p.name : p.namespace_ + "/" + p.name);
}

}  // namespace

Result<Policy> PolicyFromCalico(const Json& obj) {
  TERWAY_ASSIGN_OR_RETURN(Policy p, ReadIdentity(obj));
  if (p.name.empty()) return Invalid("metadata.name", "empty").Wrap(Context(p));
  Status st = ReadSpec(Section(obj, "spec"), &p);
  if (!st.ok()) return std::move(st).error().Wrap(Context(p));
  return p;
}

Policy FailClosedCalicoPolicy(const Json& obj, const Error& why) {
  Policy p;
  if (auto id = ReadIdentity(obj); id.ok()) {
    p = std::move(*id);
  } else {
    // Kind unreadable: namespaced when it names a namespace.
    const Json& meta = Section(obj, "metadata");
    p.kind = Present(meta, "namespace") ? Policy::Kind::kCalico : Policy::Kind::kCalicoGlobal;
    if (meta.contains("name") && meta["name"].is_string()) p.name = meta["name"].get<std::string>();
    if (meta.contains("namespace") && meta["namespace"].is_string()) {
      p.namespace_ = meta["namespace"].get<std::string>();
    }
  }
  if (p.name.empty()) p.name = "?";
  const Json& spec = Section(obj, "spec");
  if (spec.contains("tier") && spec["tier"].is_string() && IsTierName(spec["tier"].get<std::string>())) {
    p.tier = spec["tier"].get<std::string>();
  }
  if (spec.contains("order") && spec["order"].is_number()) p.order = spec["order"].get<double>();
  else if (Present(spec, "order")) p.order = -std::numeric_limits<double>::infinity();
  auto part = [&](const char* key) -> std::optional<CalicoSelector> {
    if (p.kind != Policy::Kind::kCalicoGlobal && std::string(key) == "namespaceSelector") return std::nullopt;
    auto s = ReadCalicoSelector(spec, key, "spec");
    return s.ok() ? *s : std::nullopt;
  };
  p.subject = EndpointSelector::FromCalico(
      Subject(p.kind, p.namespace_, part("selector"), part("namespaceSelector"), part("serviceAccountSelector")));
  if (!ReadTypes(spec, &p).ok()) p.applies_ingress = p.applies_egress = true;
  bool host_only = p.kind == Policy::Kind::kCalicoGlobal &&
                   ((spec.contains("doNotTrack") && spec["doNotTrack"] == true) ||
                    (spec.contains("preDNAT") && spec["preDNAT"] == true));
  if (host_only) p.applies_ingress = p.applies_egress = false;
  Rule deny;
  deny.action = Action::kDeny;
  if (p.applies_ingress) p.ingress = {deny};
  if (p.applies_egress) p.egress = {deny};
  std::string types = p.applies_ingress && p.applies_egress ? "ingress and egress"
                      : p.applies_ingress                  ? "ingress"
                      : p.applies_egress                   ? "egress"
                                                           : "no traffic (a host-endpoint-only policy)";
  p.fail_closed = {{"policy", why.ToString(),
                    fmt::format("denies all {} of the pods its readable selector parts select ({}), in tier {} "
                                "at order {}; fix the object to restore its rules",
                                types, p.subject.Key(), p.tier, p.order ? fmt::format("{}", *p.order) : "last")}};
  return p;
}

Policy CalicoPolicyOrFailClosed(const Json& obj) {
  auto p = PolicyFromCalico(obj);
  if (p.ok()) return std::move(*p);
  return FailClosedCalicoPolicy(obj, p.error());
}

}  // namespace terway::policy
