#include "tools/lab/apiserver/calico.h"

#include <set>
#include <string_view>

#include "common/ip.h"

namespace terway::lab {
namespace {

constexpr const char* kTierLabel = "projectcalico.org/tier";
constexpr const char* kNamespaceLabel = "projectcalico.org/namespace";
// The CRD's maxItems of nets.
constexpr size_t kMaxNets = 256;

std::string NameOf(const Json& obj) {
  const Json& m = obj.contains("metadata") ? obj["metadata"] : Json();
  return m.is_object() && m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
}

// `<Kind>.projectcalico.org "<name>" is invalid: <field>: <detail>`, as the
// API server words a refused write (HTTP 422).
Error Invalid(const ResourceType& t, const std::string& name, const std::string& field, const std::string& detail) {
  return Errorf(ErrorCode::kInvalidArgument, "{}.{} \"{}\" is invalid: {}: {}", t.kind, t.group, name, field,
                detail);
}

const Json& At(const Json& obj, const char* a, const char* b) {
  static const Json kNull;
  if (!obj.is_object() || !obj.contains(a) || !obj[a].is_object() || !obj[a].contains(b)) return kNull;
  return obj[a][b];
}

// A DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDnsLabel(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return n.front() != '-' && n.back() != '-';
}

// Policy names (validator.go networkPolicyNameRegex /
// globalNetworkPolicyNameRegex): one DNS label, or two joined by a dot
// (the `<tier>.<name>` form of Calico 3.29-3.31), at most 253 characters.
// A NetworkPolicy may also carry the prefixes Calico gives the policies it
// derives (`knp.default.`, `ossg.default.`); the store has already checked
// the general DNS-subdomain form.
Status CheckPolicyName(const ResourceType& t, const std::string& name) {
  std::string_view rest = name;
  if (t.kind == "NetworkPolicy") {
    for (std::string_view prefix : {"knp.default.", "ossg.default."}) {
      if (rest.substr(0, prefix.size()) == prefix) return Ok();
    }
  }
  const size_t dot = rest.find('.');
  const bool ok = name.size() <= 253 && (dot == std::string_view::npos
                                             ? IsDnsLabel(rest)
                                             : IsDnsLabel(rest.substr(0, dot)) && IsDnsLabel(rest.substr(dot + 1)));
  if (ok) return Ok();
  return Invalid(t, name, "metadata.name",
                 fmt::format("Invalid value: \"{}\": a {} name is a DNS label (lower case letters, digits and '-', "
                             "at most 63 characters), optionally `<tier>.<label>`",
                             name, t.kind));
}

// An entry of a network set's nets: a CIDR of either family (host bits
// allowed, as Calico's ParseCIDROrIP takes them) or a bare address, which
// means /32 or /128.
Status CheckNet(const std::string& text) {
  if (text.find('/') == std::string::npos) {
    if (Ipv4Addr::Parse(text).ok() || Ipv6Addr::Parse(text).ok()) return Ok();
    return MakeError(ErrorCode::kInvalidArgument,
                     "not an IP address or CIDR (want e.g. 192.0.2.0/24 or 2001:db8::/32)");
  }
  if (text.find(':') == std::string::npos) {
    auto v4 = Ipv4Cidr::Parse(text, /*allow_host_bits=*/true);
    return v4.ok() ? Ok() : Status(v4.error());
  }
  auto v6 = Ipv6Cidr::Parse(text);
  return v6.ok() ? Ok() : Status(v6.error());
}

bool IsPolicy(const ResourceType& t) { return t.kind == "NetworkPolicy" || t.kind == "GlobalNetworkPolicy"; }
bool IsNetworkSet(const ResourceType& t) { return t.kind == "NetworkSet" || t.kind == "GlobalNetworkSet"; }

// spec as an object (created when absent), or an error naming the object.
Result<Json*> SpecOf(const ResourceType& t, Json& obj) {
  if (!obj.contains("spec") || obj["spec"].is_null()) obj["spec"] = Json::object();
  if (!obj["spec"].is_object()) return Invalid(t, NameOf(obj), "spec", "Invalid value: must be an object");
  return &obj["spec"];
}

size_t RuleCount(const Json& spec, const char* direction) {
  return spec.contains(direction) && spec[direction].is_array() ? spec[direction].size() : 0;
}

// Calico's types defaulting (api/pkg/defaults/networkpolicy.go): absent or
// empty types become Ingress when there are no egress rules (also with no
// rules at all), Egress with only egress rules, both with both. Given types
// must be Ingress/Egress without repeats (the Go validator's rule).
Status DefaultPolicyTypes(const ResourceType& t, const std::string& name, Json& spec) {
  Json& types = spec["types"];
  if (types.is_null() || (types.is_array() && types.empty())) {
    if (RuleCount(spec, "egress") == 0) {
      types = Json::array({"Ingress"});
    } else if (RuleCount(spec, "ingress") == 0) {
      types = Json::array({"Egress"});
    } else {
      types = Json::array({"Ingress", "Egress"});
    }
    return Ok();
  }
  if (!types.is_array()) return Invalid(t, name, "spec.types", "Invalid value: must be a list of Ingress, Egress");
  std::set<std::string> seen;
  for (const auto& v : types) {
    if (!v.is_string() || (v != "Ingress" && v != "Egress")) {
      return Invalid(t, name, "spec.types",
                     fmt::format("Unsupported value: {}: supported values: \"Ingress\", \"Egress\"", v.dump()));
    }
    if (!seen.insert(v.get<std::string>()).second) {
      return Invalid(t, name, "spec.types", fmt::format("Duplicate value: {}", v.dump()));
    }
  }
  return Ok();
}

// A policy's tier: `default` when empty, mirrored into the
// projectcalico.org/tier label on every write (setTierLabel), and, on
// create, a tier that exists (clientv3's NetworkPolicies().Create gets the
// tier first and fails without it).
Status AdmitPolicy(WriteOp op, const ResourceType& t, Json& obj, const Json* old, const StoreView& view) {
  const std::string name = NameOf(obj);
  if (op == WriteOp::kCreate) TERWAY_TRY(CheckPolicyName(t, name));
  TERWAY_ASSIGN_OR_RETURN(Json * spec, SpecOf(t, obj));
  if (spec->contains("order") && !(*spec)["order"].is_null() && !(*spec)["order"].is_number()) {
    return Invalid(t, name, "spec.order", fmt::format("Invalid value: {}: must be a number", (*spec)["order"].dump()));
  }
  Json& tier = (*spec)["tier"];
  if (tier.is_null() || (tier.is_string() && tier.get<std::string>().empty())) tier = kDefaultTier;
  if (!tier.is_string()) return Invalid(t, name, "spec.tier", "Invalid value: must be a tier's name");
  const std::string tier_name = tier.get<std::string>();
  TERWAY_TRY(DefaultPolicyTypes(t, name, *spec));
  Json& meta = obj["metadata"];
  if (!meta.contains("labels") || !meta["labels"].is_object()) meta["labels"] = Json::object();
  meta["labels"][kTierLabel] = tier_name;
  // Calico checks on create; an update that moves the policy to another
  // tier is held to the same rule, so no write can leave a policy in a tier
  // that does not exist (the lab fails closed where Calico is silent).
  const bool tier_changed = op == WriteOp::kCreate || !old || At(*old, "spec", "tier") != tier;
  if (tier_changed && !view.Get(std::string(kCalicoGroup) + "/tiers", "", tier_name)) {
    return Invalid(t, name, "spec.tier",
                   fmt::format("Not found: \"{}\": the tier does not exist; create the Tier first "
                               "(kubectl get tiers lists them)",
                               tier_name));
  }
  return Ok();
}

// Tier defaulting (DefaultTierFields: order 1000000, defaultAction Deny) and
// the constraints Calico's schema and CEL rules put on tiers.
Status AdmitTier(WriteOp op, const ResourceType& t, Json& obj) {
  const std::string name = NameOf(obj);
  if (op == WriteOp::kCreate && !IsDnsLabel(name)) {
    return Invalid(t, name, "metadata.name",
                   "Invalid value: a tier's name must be a DNS label without dots, at most 63 characters");
  }
  TERWAY_ASSIGN_OR_RETURN(Json * spec, SpecOf(t, obj));
  Json& order = (*spec)["order"];
  if (order.is_null()) order = static_cast<int64_t>(kDefaultTierOrder);
  if (!order.is_number()) return Invalid(t, name, "spec.order", "Invalid value: must be a number");
  Json& action = (*spec)["defaultAction"];
  if (action.is_null()) action = "Deny";
  if (action != "Deny" && action != "Pass") {
    return Invalid(t, name, "spec.defaultAction",
                   fmt::format("Unsupported value: {}: supported values: \"Deny\", \"Pass\"", action.dump()));
  }
  if (name == kDefaultTier && (order.get<double>() != kDefaultTierOrder || action != "Deny")) {
    return Invalid(t, name, "spec", "Forbidden: the default tier's order is 1000000 and its defaultAction Deny");
  }
  return Ok();
}

// Deleting a tier: never the built-in one (Calico's protect-builtin-tiers
// admission policy), nor one that policies still name (clientv3 tiers
// Delete: "Cannot delete a non-empty tier").
Status AdmitTierDelete(const ResourceType& t, const Json& old, const StoreView& view) {
  const std::string name = NameOf(old);
  if (name == kDefaultTier) {
    return Errorf(ErrorCode::kPermission,
                  "{}.{} \"{}\" is forbidden: the built-in tier {} cannot be deleted (it holds every policy "
                  "that names no tier)",
                  t.plural, t.group, name, name);
  }
  for (const char* plural : {"networkpolicies", "globalnetworkpolicies"}) {
    for (const Json* p : view.List(std::string(kCalicoGroup) + "/" + plural)) {
      const Json& spec = p->contains("spec") ? (*p)["spec"] : Json();
      if (spec.is_object() && spec.value("tier", "") == name) {
        const Json& m = (*p)["metadata"];
        std::string who = m.contains("namespace") ? m.value("namespace", "") + "/" + NameOf(*p) : NameOf(*p);
        return Errorf(ErrorCode::kConflict,
                      "{}.{} \"{}\" cannot be deleted: Cannot delete a non-empty tier ({} {} is in it; delete or "
                      "move its policies first)",
                      t.plural, t.group, name, plural, who);
      }
    }
  }
  return Ok();
}

// Network sets: Calico adds projectcalico.org/namespace itself (a NetworkSet
// is matched by selectors with it), so a user may not set it
// (validator.go validateNetworkSet / validateGlobalNetworkSet).
Status AdmitNetworkSet(const ResourceType& t, Json& obj) {
  const std::string name = NameOf(obj);
  TERWAY_ASSIGN_OR_RETURN(Json * spec, SpecOf(t, obj));
  if (spec->contains("nets") && !(*spec)["nets"].is_null()) {
    const Json& nets = (*spec)["nets"];
    if (!nets.is_array()) return Invalid(t, name, "spec.nets", "Invalid value: must be a list of CIDRs");
    if (nets.size() > kMaxNets) {
      return Invalid(t, name, "spec.nets",
                     fmt::format("Too many: {}: must have at most {} items; split the set", nets.size(), kMaxNets));
    }
    for (size_t i = 0; i < nets.size(); i++) {
      const std::string field = fmt::format("spec.nets[{}]", i);
      if (!nets[i].is_string()) {
        return Invalid(t, name, field, fmt::format("Invalid value: {}: must be a CIDR", nets[i].dump()));
      }
      if (Status st = CheckNet(nets[i].get<std::string>()); !st.ok()) {
        return Invalid(t, name, field, fmt::format("Invalid value: \"{}\": {}", nets[i].get<std::string>(),
                                                   st.error().message));
      }
    }
  }
  const Json& meta = obj["metadata"];
  if (meta.contains("labels") && meta["labels"].is_object() && meta["labels"].contains(kNamespaceLabel)) {
    return Invalid(t, NameOf(obj), "metadata.labels",
                   fmt::format("Invalid value: \"{}\": the label is reserved for Calico (it sets it on every "
                               "namespaced NetworkSet); use another label key",
                               kNamespaceLabel));
  }
  return Ok();
}

}  // namespace

Status AdmitCalico(WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view) {
  if (t.group != kCalicoGroup) return Ok();
  if (op == WriteOp::kDelete) {
    return t.kind == "Tier" && old ? AdmitTierDelete(t, *old, view) : Ok();
  }
  if (!obj) return Ok();
  if (IsPolicy(t)) return AdmitPolicy(op, t, *obj, old, view);
  if (t.kind == "Tier") return AdmitTier(op, t, *obj);
  if (IsNetworkSet(t)) return AdmitNetworkSet(t, *obj);
  return Ok();
}

Json DefaultTierObject() {
  return {{"apiVersion", std::string(kCalicoGroup) + "/v3"},
          {"kind", "Tier"},
          {"metadata", {{"name", kDefaultTier}}},
          {"spec", {{"order", static_cast<int64_t>(kDefaultTierOrder)}, {"defaultAction", "Deny"}}}};
}

}  // namespace terway::lab
